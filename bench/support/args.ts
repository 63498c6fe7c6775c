/** Command-line values every benchmark reads the same way. */
import type { DialectName } from '../../src/store/database.ts';

/** `text` as a positive integer, or an error naming the option. */
export function positiveInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${text}`);
  return n;
}

/** A comma-separated list of dialects (`sqlite,postgres`), each checked. */
export function dialectList(text: string): DialectName[] {
  return text.split(',').map((d) => {
    if (d !== 'sqlite' && d !== 'postgres') throw new Error(`--dialects takes sqlite and/or postgres, got ${d}`);
    return d;
  });
}
