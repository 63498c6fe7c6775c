import { resolve } from 'node:path';
import { systemClock } from '../core/clock.ts';
import { createAccessKey } from '../identity/access-keys.ts';
import { ensureAccount } from '../identity/accounts.ts';
import { loadMasterKey, openSecretBox } from '../identity/master-key.ts';
import { openDatabase } from '../store/database.ts';

export interface CreateKeyOptions {
  readonly data: string;
  readonly db?: string;
  readonly account: string;
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
export async function createKey(options: CreateKeyOptions): Promise<CreatedKey> {
  const dataDir = resolve(options.data);
  const database = await openDatabase({ url: options.db, dataDir });
  try {
    const box = await openSecretBox(database.db, loadMasterKey(dataDir));
    const account = await ensureAccount(database.db, systemClock, options.account);
    const key = await createAccessKey(database.db, box, systemClock, account.id);
    return { accountId: account.id, projectId: account.projectId, accessKeyId: key.id, accessKeySecret: key.secret };
  } finally {
    await database.close();
  }
}
