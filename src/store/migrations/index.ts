import type { Kysely, Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001-foundation.ts';
import * as m0002 from './0002-identity.ts';
import * as m0003 from './0003-fleet.ts';
import * as m0004 from './0004-access-tokens.ts';
import * as m0005 from './0005-job-claim-index.ts';
import * as m0007 from './0007-smc-replication.ts';
import * as m0010 from './0010-instance-moves.ts';
import * as m0015 from './0015-ens-events.ts';
import * as m0020 from './0020-replication-transfer.ts';
import * as m0021 from './0021-instance-moves-by-instance.ts';
import * as m0025 from './0025-replication-transfer-times.ts';
import * as m0030 from './0030-stream-tickets.ts';

/**
 * Numbered, append-only: a released migration is never edited, a change is a new file.
 * The list is static so bundling or a read-only install cannot lose one.
 */
const migrations: Record<string, Migration> = {
  '0001-foundation': m0001,
  '0002-identity': m0002,
  '0003-fleet': m0003,
  '0004-access-tokens': m0004,
  '0005-job-claim-index': m0005,
  '0007-smc-replication': m0007,
  '0010-instance-moves': m0010,
  '0015-ens-events': m0015,
  '0020-replication-transfer': m0020,
  '0021-instance-moves-by-instance': m0021,
  '0025-replication-transfer-times': m0025,
  '0030-stream-tickets': m0030,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};

export type AnyKysely = Kysely<unknown>;
