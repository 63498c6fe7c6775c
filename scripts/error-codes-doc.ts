/**
 * Writes docs/error-codes.md from the code catalogue in src/core/errors.ts, so the documented
 * codes are always the ones the server answers with. `--check` fails when the file is stale.
 * Usage: tsx scripts/error-codes-doc.ts [--check]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorCatalogue } from '../src/core/errors.ts';

export function renderErrorCodes(): string {
  const rows = Object.entries(errorCatalogue)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, e]) => `| ${code} | ${e.httpStatus} | ${e.alibabaCode} | ${e.huaweiCode} | ${e.message.replace(/\|/g, '\\|')} |`);
  return [
    '# Error codes',
    '',
    'Generated from `src/core/errors.ts` by `npx tsx scripts/error-codes-doc.ts`; a test fails when it is stale.',
    'Each code answers with its HTTP status; the Alibaba door puts the Alibaba `Code` in its body, the Huawei door',
    'the Huawei `error_code`, and the native API the code name. `{name}` slots are filled per request.',
    '',
    '| code | HTTP | Alibaba Code | Huawei error_code | message |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

const path = join(import.meta.dirname, '..', 'docs', 'error-codes.md');
if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  if (process.argv.includes('--check')) {
    if (readFileSync(path, 'utf8') !== renderErrorCodes()) {
      console.error('docs/error-codes.md is stale: run npx tsx scripts/error-codes-doc.ts');
      process.exit(1);
    }
  } else {
    writeFileSync(path, renderErrorCodes());
  }
}
