/**
 * Run a block of tests once per dialect, as Kysely does: every store and engine test
 * runs on SQLite and on PostgreSQL through this one loop.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { type Database, type DialectName, openDatabase } from '../../src/store/database.ts';
import { freshPostgresDatabase } from './postgres.ts';

export const dialects = ['sqlite', 'postgres'] as const satisfies readonly DialectName[];

export interface DialectContext {
  readonly dialect: DialectName;
  /** A URL for a new, empty database of this dialect (migrations not yet applied). */
  newDatabaseUrl(): Promise<string>;
  /** Open a new, migrated database; closed when the suite ends. */
  open(): Promise<Database>;
}

export function tempDir(prefix = 'ferry-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function forEachDialect(name: string, body: (ctx: DialectContext) => void): void {
  for (const dialect of dialects) {
    void describe(`${name} [${dialect}]`, () => {
      const opened: Database[] = [];
      const newDatabaseUrl = async (): Promise<string> =>
        dialect === 'postgres' ? freshPostgresDatabase() : `sqlite:${join(tempDir(), 'ferry.db')}`;
      after(async () => {
        for (const database of opened) await database.close();
      });
      body({
        dialect,
        newDatabaseUrl,
        open: async () => {
          const database = await openDatabase({ url: await newDatabaseUrl(), poolSize: 8 });
          opened.push(database);
          return database;
        },
      });
    });
  }
}
