import { resolve } from 'node:path';
import { systemClock } from '../core/clock.ts';
import { readFileSync } from 'node:fs';
import { createAccessKey, setAccessKeyStatus } from '../identity/access-keys.ts';
import { attachPolicy, detachPolicy, parsePolicy } from '../identity/policies.ts';
import type { Database } from '../store/database.ts';
import { ensureAccount } from '../identity/accounts.ts';
import { loadMasterKey, openSecretBox } from '../identity/master-key.ts';
import { openDatabase } from '../store/database.ts';

export interface DatabaseOptions {
  readonly data: string;
  readonly db?: string;
}

export interface CreateKeyOptions extends DatabaseOptions {
  readonly account: string;
}

/** Open the node's database the way `ferry serve` does, run `work`, close it. */
async function withDatabase<T>(options: DatabaseOptions, work: (database: Database, dataDir: string) => Promise<T>): Promise<T> {
  const dataDir = resolve(options.data);
  const database = await openDatabase({ url: options.db, dataDir });
  try {
    return await work(database, dataDir);
  } finally {
    await database.close();
  }
}

export interface CreatedKey {
  readonly accountId: string;
  readonly projectId: string;
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
}

/**
 * Create the account if needed and a new access key for it. Talks to the database directly,
 * so it works with or without a server running on the same data dir.
 */
export function createKey(options: CreateKeyOptions): Promise<CreatedKey> {
  return withDatabase(options, async (database, dataDir) => {
    const box = await openSecretBox(database.db, loadMasterKey(dataDir));
    const account = await ensureAccount(database.db, systemClock, options.account);
    const key = await createAccessKey(database.db, box, systemClock, account.id);
    return { accountId: account.id, projectId: account.projectId, accessKeyId: key.id, accessKeySecret: key.secret };
  });
}

/** Attach the policy in `file` (JSON) to a key, replacing any earlier one; `-` reads stdin. */
export function attachPolicyFile(options: DatabaseOptions, accessKeyId: string, file: string): Promise<void> {
  const document = parsePolicy(readFileSync(file === '-' ? 0 : file, 'utf8'));
  return withDatabase(options, (database) => attachPolicy(database.db, systemClock, accessKeyId, document));
}

export function detachPolicyFromKey(options: DatabaseOptions, accessKeyId: string): Promise<void> {
  return withDatabase(options, (database) => detachPolicy(database.db, accessKeyId));
}

export function setKeyEnabled(options: DatabaseOptions, accessKeyId: string, enabled: boolean): Promise<void> {
  return withDatabase(options, (database) => setAccessKeyStatus(database.db, accessKeyId, enabled ? 'Active' : 'Inactive'));
}
