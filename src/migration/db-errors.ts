/**
 * Whether `err` is a unique-constraint violation of the index `indexName`. PostgreSQL names the
 * constraint (code 23505); SQLite names the columns, so callers pass them too.
 */
export function isUniqueViolation(err: unknown, indexName: string, sqliteColumns: readonly string[]): boolean {
  const e = err as { code?: unknown; constraint?: unknown; message?: unknown };
  if (e.code === '23505') return e.constraint === indexName;
  if (typeof e.code === 'string' && e.code.startsWith('SQLITE_CONSTRAINT') && typeof e.message === 'string') {
    const failed = /UNIQUE constraint failed: (.*)$/.exec(e.message)?.[1];
    return failed !== undefined && failed.split(',').map((c) => c.trim().replace(/^\w+\./, '')).join(',') === sqliteColumns.join(',');
  }
  return false;
}
