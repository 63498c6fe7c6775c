/**
 * Runs the whole suite with node's test runner: unit tests beside the code (src/**\/*.test.ts)
 * and integration tests (test/**\/*.test.ts). Starts one throwaway PostgreSQL for the run.
 * Fails when the patterns match no file, so a broken glob can never pass as green.
 * Usage: tsx scripts/run-tests.ts [FILTER...]  (a filter keeps files whose path contains it)
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { startPostgres } from '../test/support/postgres.ts';

const root = join(import.meta.dirname, '..');

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

const filters = process.argv.slice(2);
const files = ['src', 'test']
  .flatMap((dir) => findTests(join(root, dir)))
  .filter((f) => filters.length === 0 || filters.some((flt) => f.includes(flt)))
  .sort();
if (files.length === 0) {
  console.error(`run-tests: no test files match ${filters.length > 0 ? filters.join(', ') : 'src/**/*.test.ts, test/**/*.test.ts'}`);
  process.exit(1);
}
console.log(`run-tests: ${files.length} test files`);

const pg = await startPostgres();
let code = 1;
try {
  code = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${process.env['FERRY_TEST_CONCURRENCY'] ?? '2'}`, ...files],
      { cwd: root, stdio: 'inherit', env: { ...process.env, FERRY_TEST_PG_URL: pg.url } },
    );
    child.on('exit', (status, signal) => resolve(status ?? (signal === null ? 1 : 128)));
  });
} finally {
  pg.stop();
}
process.exit(code);
