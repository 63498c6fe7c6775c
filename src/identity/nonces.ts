import type { Clock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import type { Db } from '../store/database.ts';

/** Nonces are remembered for the whole timestamp window, so a replay inside it is always caught. */
export const nonceWindowMs = 15 * 60_000;

/**
 * Record a signature nonce for an access key, refusing one seen before. Stored in the database
 * so every node sees it. Expired nonces are swept now and then by the same call.
 */
export async function rememberNonce(db: Db, clock: Clock, accessKeyId: string, nonce: string): Promise<void> {
  const now = clock.nowMs();
  // Entries live two windows: a request stamped at the window's far edge is still covered.
  const result = await db
    .insertInto('signature_nonces')
    .values({ access_key_id: accessKeyId, nonce, expires_at: now + 2 * nonceWindowMs })
    .onConflict((oc) => oc.columns(['access_key_id', 'nonce']).doNothing())
    .executeTakeFirst();
  if (Number(result.numInsertedOrUpdatedRows ?? 0n) !== 1) throw new AppError('SignatureNonceUsed');
  if (Math.random() < 0.01) await sweepNonces(db, clock);
}

export async function sweepNonces(db: Db, clock: Clock): Promise<number> {
  const result = await db.deleteFrom('signature_nonces').where('expires_at', '<', clock.nowMs()).executeTakeFirst();
  return Number(result.numDeletedRows);
}
