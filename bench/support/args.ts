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

/**
 * A benchmark's command line read by `parse`: with --help or -h it prints `usage` and exits 0; an
 * option `parse` refuses (unknown, malformed, out of range) prints the reason and `usage` on
 * stderr and exits 2, instead of a stack trace.
 */
export function benchOptions<T>(usage: string, parse: () => T): T {
  if (process.argv.slice(2).some((arg) => arg === '--help' || arg === '-h')) {
    console.log(usage);
    process.exit(0);
  }
  try {
    return parse();
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${usage}`);
    process.exit(2);
  }
}
