import type { EnsTables } from './schema-ens.ts';
import type { FleetTables } from './schema-fleet.ts';
import type { IdentityTables } from './schema-identity.ts';
import type { MoveTables } from './schema-moves.ts';
import type { SmcTables } from './schema-smc.ts';
import type { Generated } from 'kysely';

/** Timestamps are integer milliseconds since the epoch on both dialects. */
export interface MetaTable {
  key: string;
  value: string;
}

export interface AccountTable {
  id: string;
  name: string;
  project_id: string;
  created_at: number;
}

export interface AccessKeyTable {
  id: string;
  account_id: string;
  /** AES-256-GCM ciphertext of the secret under the master key: `v1:<iv>:<tag>:<data>` in base64. */
  secret_enc: string;
  status: string;
  created_at: number;
}

export interface JobTable {
  id: string;
  kind: string;
  payload: string;
  state: string;
  attempts: number;
  max_attempts: number;
  run_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  fencing_token: number;
  checkpoint: string | null;
  result: string | null;
  error: string | null;
  cancel_requested: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface ProbeCounterTable {
  job_id: string;
  completions: number;
}

interface FoundationTables {
  meta: MetaTable;
  accounts: AccountTable;
  access_keys: AccessKeyTable;
  jobs: JobTable;
  probe_counters: ProbeCounterTable;
}

/** Every table, composed from one interface per area so areas can grow independently. */
export interface DatabaseSchema extends FoundationTables, IdentityTables, FleetTables, SmcTables, EnsTables, MoveTables {}

export type Generate<T> = Generated<T>;
