import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { AccessTokenTable } from '../store/schema-smc.ts';
import type { Trx } from '../engine/job-store.ts';
import type { ServiceContext } from './service-context.ts';
import { checkDescription, checkName, intFromString, isoUtc } from './validation.ts';

const dayMs = 24 * 60 * 60_000;

export type AccessTokenStatus = 'activated' | 'unactivated' | 'expired';

export interface AccessTokenView {
  readonly accessTokenId: string;
  readonly name: string;
  readonly description: string;
  readonly count: number;
  readonly registeredCount: number;
  readonly timeToLiveInDays: number;
  readonly creationTime: string;
  readonly status: AccessTokenStatus;
}

/** A disabled or timed-out code is expired; a used one is activated; else unactivated. */
export function tokenStatus(row: AccessTokenTable, nowMs: number): AccessTokenStatus {
  if (Number(row.disabled) === 1 || nowMs >= Number(row.expires_at)) return 'expired';
  return Number(row.registered_count) > 0 ? 'activated' : 'unactivated';
}

function view(row: AccessTokenTable, nowMs: number): AccessTokenView {
  return {
    accessTokenId: row.id,
    name: row.name,
    description: row.description,
    count: Number(row.max_count),
    registeredCount: Number(row.registered_count),
    timeToLiveInDays: Number(row.ttl_days),
    creationTime: isoUtc(Number(row.created_at)),
    status: tokenStatus(row, nowMs),
  };
}

function hashCode(code: string): string {
  return createHash('sha256').update(code).digest('hex');
}

export interface CreateAccessTokenInput {
  readonly name?: string | undefined;
  readonly description?: string | undefined;
  /** How many source servers may register with the code: 1–1000, default 100 (a string on the wire). */
  readonly count?: string | undefined;
  readonly timeToLiveInDays?: string | undefined;
}

/** Create an activation code; the code is returned here once and only its hash is kept. */
export async function createAccessToken(ctx: ServiceContext, input: CreateAccessTokenInput): Promise<{ accessTokenId: string; accessTokenCode: string }> {
  if (input.name !== undefined) checkName('Name', input.name);
  if (input.description !== undefined) checkDescription('Description', input.description);
  const count = intFromString('Count', input.count, 100, 1, 1000);
  const ttlDays = intFromString('TimeToLiveInDays', input.timeToLiveInDays, 30, 1, 90);
  const now = ctx.clock.nowMs();
  const id = newId('at');
  const code = randomBytes(24).toString('base64url');
  await ctx.database.db
    .insertInto('access_tokens')
    .values({
      id,
      account_id: ctx.accountId,
      name: input.name ?? id,
      description: input.description ?? '',
      code_hash: hashCode(code),
      max_count: count,
      registered_count: 0,
      ttl_days: ttlDays,
      disabled: 0,
      created_at: now,
      expires_at: now + ttlDays * dayMs,
    })
    .execute();
  return { accessTokenId: id, accessTokenCode: code };
}

async function requireToken(ctx: ServiceContext, id: string): Promise<AccessTokenTable> {
  const row = await ctx.database.db.selectFrom('access_tokens').selectAll().where('id', '=', id).where('account_id', '=', ctx.accountId).executeTakeFirst();
  if (row === undefined) throw new AppError('AccessTokenNotFound', { accessTokenId: id });
  return row;
}

export async function disableAccessToken(ctx: ServiceContext, id: string): Promise<void> {
  await requireToken(ctx, id);
  await ctx.database.db.updateTable('access_tokens').set({ disabled: 1 }).where('id', '=', id).where('account_id', '=', ctx.accountId).execute();
}

export async function deleteAccessToken(ctx: ServiceContext, id: string): Promise<void> {
  await requireToken(ctx, id);
  await ctx.database.db.deleteFrom('access_tokens').where('id', '=', id).where('account_id', '=', ctx.accountId).execute();
}

export interface ListAccessTokensFilter {
  readonly ids?: readonly string[] | undefined;
  readonly name?: string | undefined;
  readonly status?: string | undefined;
}

export async function listAccessTokens(ctx: ServiceContext, filter: ListAccessTokensFilter): Promise<AccessTokenView[]> {
  let query = ctx.database.db.selectFrom('access_tokens').selectAll().where('account_id', '=', ctx.accountId);
  if (filter.ids !== undefined && filter.ids.length > 0) query = query.where('id', 'in', [...filter.ids]);
  if (filter.name !== undefined && filter.name !== '') query = query.where('name', '=', filter.name);
  const now = ctx.clock.nowMs();
  const rows = await query.orderBy('created_at', 'desc').orderBy('id').execute();
  return rows.map((r) => view(r, now)).filter((t) => filter.status === undefined || filter.status === '' || t.status === filter.status);
}

/**
 * Spend one registration of an activation code inside the caller's transaction (an agent
 * registering a source server). Refuses unknown, disabled, expired and used-up codes alike
 * with AccessToken.Invalid, so a guesser learns nothing; the code is compared in constant time.
 */
export async function redeemAccessToken(trx: Trx, nowMs: number, id: string, code: string): Promise<{ accountId: string }> {
  const row = await trx.selectFrom('access_tokens').selectAll().where('id', '=', id).executeTakeFirst();
  const given = Buffer.from(hashCode(code), 'hex');
  const valid = row !== undefined && timingSafeEqual(given, Buffer.from(row.code_hash, 'hex'));
  if (row === undefined || !valid) throw new AppError('AccessTokenInvalid', { accessTokenId: id, reason: 'unknown or does not match' });
  if (tokenStatus(row, nowMs) === 'expired') throw new AppError('AccessTokenInvalid', { accessTokenId: id, reason: 'expired or disabled' });
  if (Number(row.registered_count) >= Number(row.max_count)) throw new AppError('AccessTokenInvalid', { accessTokenId: id, reason: `used up (${row.max_count} registrations)` });
  await trx.updateTable('access_tokens').set({ registered_count: Number(row.registered_count) + 1 }).where('id', '=', id).execute();
  return { accountId: row.account_id };
}
