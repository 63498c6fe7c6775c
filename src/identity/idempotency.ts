import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import type { ExpressionBuilder } from 'kysely';
import type { Db } from '../store/database.ts';
import type { DatabaseSchema } from '../store/schema.ts';

/** A ClientToken is honoured for this long, as the clouds document. */
export const idempotencyWindowMs = 24 * 60 * 60_000;
/** A `pending` record older than this belongs to a request that died; a retry may take it over. */
const pendingStaleMs = 5 * 60_000;

export function hashParams(params: Readonly<Record<string, unknown>>): string {
  const sorted = Object.keys(params)
    .sort()
    .map((k) => [k, params[k]]);
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
}

export interface IdempotencyKey {
  readonly accountId: string;
  readonly action: string;
  readonly clientToken: string;
  readonly paramsHash: string;
}

/**
 * Run `work` at most once per (account, action, ClientToken) within 24 h. The same token with the
 * same params returns the first response; with other params it is IdempotentParameterMismatch.
 * A failed first attempt leaves nothing behind, so the client may retry with the same token.
 */
export async function withIdempotency<T>(db: Db, clock: Clock, key: IdempotencyKey, work: () => Promise<T>): Promise<T> {
  const claimed = await claimToken<T>(db, clock, key).catch((err: unknown) => {
    // Two first requests raced on PostgreSQL: the loser sees the winner's row on a second look.
    if ((err as { code?: string }).code === '23505') return claimToken<T>(db, clock, key);
    throw err;
  });
  if (claimed !== undefined) return claimed.replay;
  let response: T;
  try {
    response = await work();
  } catch (err) {
    await db.deleteFrom('idempotency_records').where(matchesKey(key)).execute();
    throw err;
  }
  await db.updateTable('idempotency_records').set({ state: 'done', response: JSON.stringify(response) }).where(matchesKey(key)).execute();
  return response;
}

function matchesKey(key: IdempotencyKey) {
  return (eb: ExpressionBuilder<DatabaseSchema, 'idempotency_records'>) =>
    eb.and([eb('account_id', '=', key.accountId), eb('action', '=', key.action), eb('client_token', '=', key.clientToken)]);
}

/** Take the token for a first request (undefined), or find the stored response to replay. */
async function claimToken<T>(db: Db, clock: Clock, key: IdempotencyKey): Promise<{ replay: T } | undefined> {
  const now = clock.nowMs();
  return db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('idempotency_records').selectAll().where(matchesKey(key)).executeTakeFirst();
    const expired = existing !== undefined && Number(existing.created_at) < now - idempotencyWindowMs;
    const stalePending = existing !== undefined && existing.state === 'pending' && Number(existing.created_at) < now - pendingStaleMs;
    if (existing !== undefined && !expired && !stalePending) {
      if (existing.params_hash !== key.paramsHash) throw new AppError('IdempotentParameterMismatch', { clientToken: key.clientToken });
      if (existing.state === 'pending') throw new AppError('IdempotentRequestInProgress', { clientToken: key.clientToken });
      return { replay: JSON.parse(existing.response ?? 'null') as T };
    }
    if (existing !== undefined) await trx.deleteFrom('idempotency_records').where(matchesKey(key)).execute();
    await trx
      .insertInto('idempotency_records')
      .values({ account_id: key.accountId, action: key.action, client_token: key.clientToken, params_hash: key.paramsHash, state: 'pending', response: null, created_at: now })
      .execute();
    return undefined;
  });
}
