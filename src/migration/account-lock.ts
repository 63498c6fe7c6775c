import type { Trx } from '../engine/job-store.ts';
import type { DialectName } from '../store/database.ts';

/**
 * Serialise the account's quota-checked writes (job and workgroup counts, names) inside `trx`.
 * PostgreSQL: a row lock on the account; FOR NO KEY UPDATE so that inserts referencing the account
 * (their foreign-key checks take KEY SHARE) are not blocked. SQLite: BEGIN IMMEDIATE already holds
 * the only write lock, so there is nothing to take.
 */
export async function lockAccount(trx: Trx, dialect: DialectName, accountId: string): Promise<void> {
  if (dialect !== 'postgres') return;
  await trx.selectFrom('accounts').select('id').where('id', '=', accountId).forNoKeyUpdate().execute();
}
