import type { Kysely, Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001-foundation.ts';

/**
 * Numbered, append-only: a released migration is never edited, a change is a new file.
 * The list is static so bundling or a read-only install cannot lose one.
 */
const migrations: Record<string, Migration> = {
  '0001-foundation': m0001,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};

export type AnyKysely = Kysely<unknown>;
