/**
 * `npm run lint` is what holds the layers of DESIGN.md in place: this plants small files that
 * break (or keep) a rule inside the real tree, lints only them with the project's own
 * eslint.config.js, and checks that each breach fails with the rule that guards it.
 * Planted files are type-correct and live only while ESLint reads them.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ESLint, type Linter } from 'eslint';

const root = join(import.meta.dirname, '..');
const tag = `__planted_${process.pid}`;

interface Plant {
  readonly title: string;
  /** Path from the repo root. */
  readonly path: string;
  readonly code: string;
  /** Rule ids that must fail, and no others; empty means the file lints clean. */
  readonly rules: readonly string[];
  /** Text every boundary message must contain (the layer or door it names). */
  readonly mentions?: string;
}

const boundary = 'no-restricted-imports';

const plants: readonly Plant[] = [
  {
    title: 'core importing store fails',
    path: `src/core/${tag}_violation__.ts`,
    code: "import type { Database } from '../store/database.ts';\nexport type Planted = Database;\n",
    rules: [boundary],
    mentions: 'src/store',
  },
  {
    title: 'core reaching store through a non-normal path fails',
    path: `src/core/${tag}_detour__.ts`,
    code: "import type { Database } from '../core/../store/database.ts';\nexport type Planted = Database;\n",
    rules: [boundary],
  },
  {
    title: 'agent importing store fails',
    path: `src/agent/${tag}__.ts`,
    code: "import { openDatabase } from '../store/database.ts';\nexport const planted = openDatabase;\n",
    rules: [boundary],
    mentions: 'src/store',
  },
  {
    title: 'agent importing store from a nested folder fails',
    path: `src/agent/${tag}__/deep.ts`,
    code: "import { openDatabase } from '../../store/database.ts';\nexport const planted = openDatabase;\n",
    rules: [boundary],
    mentions: 'src/store',
  },
  {
    title: 'dataplane importing store fails',
    path: `src/dataplane/${tag}__.ts`,
    code: "import type { Db } from '../store/database.ts';\nexport type Planted = Db;\n",
    rules: [boundary],
    mentions: 'src/store',
  },
  {
    title: 'fleet importing its sibling engine fails',
    path: `src/fleet/${tag}__.ts`,
    code: "import { backoffDelayMs } from '../engine/backoff.ts';\nexport const planted = backoffDelayMs;\n",
    rules: [boundary],
    mentions: 'src/engine',
  },
  {
    title: 'a front door importing another front door fails',
    path: `src/api/alibaba/${tag}_door__.ts`,
    code: `import { planted as other } from '../huawei/${tag}_target__.ts';\nexport const planted = other;\n`,
    rules: [boundary],
    mentions: 'src/api/huawei',
  },
  {
    title: 'a front door file that decodes with `any` passes',
    path: `src/api/huawei/${tag}_target__.ts`,
    code: 'export function planted(body: any): unknown {\n  return body;\n}\n',
    rules: [],
  },
  {
    title: 'src code importing test/ fails',
    path: `src/engine/${tag}_test_import__.ts`,
    code: "import { dialects } from '../../test/support/dialects.ts';\nexport const planted = dialects.length;\n",
    rules: [boundary],
    mentions: 'test/',
  },
  {
    title: 'a *.test.ts file in src importing test/ passes',
    path: `src/engine/${tag}__.test.ts`,
    code: "import { dialects } from '../../test/support/dialects.ts';\nexport const planted = dialects.length;\n",
    rules: [],
  },
  {
    title: 'a floating promise fails',
    path: `src/core/${tag}_floating__.ts`,
    code: 'function work(): Promise<void> {\n  return Promise.resolve();\n}\nexport function planted(): void {\n  work();\n}\n',
    rules: ['@typescript-eslint/no-floating-promises'],
  },
  {
    title: 'a promise passed where a void callback is expected fails',
    path: `src/engine/${tag}_misused__.ts`,
    code: 'export function planted(run: () => Promise<void>): void {\n  setTimeout(run, 10);\n}\n',
    rules: ['@typescript-eslint/no-misused-promises'],
  },
  {
    title: '`any` outside src/api fails',
    path: `src/core/${tag}_any__.ts`,
    code: 'export function planted(body: any): unknown {\n  return body;\n}\n',
    rules: ['@typescript-eslint/no-explicit-any'],
  },
  {
    title: 'engine importing core and store passes',
    path: `src/engine/${tag}_clean__.ts`,
    code: "import { AppError } from '../core/errors.ts';\nimport type { Db } from '../store/database.ts';\nexport type Planted = Db;\nexport const planted = AppError;\n",
    rules: [],
  },
  {
    title: 'migration importing engine passes',
    path: `src/migration/${tag}__.ts`,
    code: "import { backoffDelayMs } from '../engine/backoff.ts';\nexport const planted = backoffDelayMs;\n",
    rules: [],
  },
];

/** Write every plant, creating only the folders that were missing; returns an undo. */
function plantAll(): () => void {
  const createdDirs: string[] = [];
  const writtenFiles: string[] = [];
  const undo = (): void => {
    for (const file of writtenFiles) rmSync(file, { force: true });
    for (const dir of createdDirs.reverse()) rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const plant of plants) {
      const file = join(root, plant.path);
      const missing: string[] = [];
      for (let dir = dirname(file); !existsSync(dir); dir = dirname(dir)) missing.push(dir);
      mkdirSync(dirname(file), { recursive: true });
      createdDirs.push(...missing.reverse());
      writeFileSync(file, plant.code, { flag: 'wx' });
      writtenFiles.push(file);
    }
  } catch (err) {
    undo();
    throw err;
  }
  return undo;
}

describe('lint enforces the layer boundaries and promise rules', () => {
  const messages = new Map<string, Linter.LintMessage[]>();

  before(async () => {
    const undo = plantAll();
    try {
      // The config reads src/api's folders when loaded, so load it after planting.
      const eslint = new ESLint({ cwd: root });
      const results = await eslint.lintFiles(plants.map((plant) => plant.path));
      for (const result of results) messages.set(result.filePath, result.messages);
    } finally {
      undo();
    }
  });

  for (const plant of plants) {
    it(plant.title, () => {
      const found = messages.get(join(root, plant.path));
      assert.ok(found !== undefined, `${plant.path} was not linted`);
      const summary = found.map((m) => `${m.line}:${m.column} ${m.ruleId ?? '(no rule)'} ${m.message}`).join('\n');
      assert.deepEqual([...new Set(found.map((m) => m.ruleId))].sort(), [...plant.rules].sort(), summary);
      if (plant.mentions !== undefined) {
        for (const m of found) assert.ok(m.message.includes(plant.mentions), `expected "${plant.mentions}" in: ${m.message}`);
      }
    });
  }

  it('leaves no planted file behind', () => {
    for (const plant of plants) assert.equal(existsSync(join(root, plant.path)), false, plant.path);
  });
});
