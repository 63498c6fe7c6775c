import { randomInt } from 'node:crypto';
import type { Clock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import type { Db } from '../store/database.ts';
import type { SecretBox } from './secret-box.ts';

export type AccessKeyStatus = 'Active' | 'Inactive';

export interface AccessKey {
  readonly id: string;
  readonly accountId: string;
  readonly status: AccessKeyStatus;
  readonly createdAtMs: number;
}

/** An access key with its secret in clear; only ever held in memory. */
export interface AccessKeyWithSecret extends AccessKey {
  readonly secret: string;
}

const base62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomText(length: number): string {
  return Array.from({ length }, () => base62[randomInt(0, base62.length)]).join('');
}

/** Secrets are sealed with the key id as associated data: a ciphertext moved to another row fails to open. */
export async function createAccessKey(db: Db, box: SecretBox, clock: Clock, accountId: string): Promise<AccessKeyWithSecret> {
  const id = `LTAI${randomText(20)}`;
  const secret = randomText(30);
  const createdAtMs = clock.nowMs();
  await db
    .insertInto('access_keys')
    .values({ id, account_id: accountId, secret_enc: box.seal(secret, id), status: 'Active', created_at: createdAtMs })
    .execute();
  return { id, accountId, status: 'Active', createdAtMs, secret };
}

/** The key and its secret, or InvalidAccessKeyId.NotFound; a disabled key is returned, the caller refuses it. */
export async function loadAccessKey(db: Db, box: SecretBox, id: string): Promise<AccessKeyWithSecret> {
  const row = await db.selectFrom('access_keys').selectAll().where('id', '=', id).executeTakeFirst();
  if (row === undefined) throw new AppError('InvalidAccessKeyIdNotFound', { accessKeyId: id });
  return {
    id: row.id,
    accountId: row.account_id,
    status: row.status as AccessKeyStatus,
    createdAtMs: Number(row.created_at),
    secret: box.open(row.secret_enc, row.id),
  };
}

export async function setAccessKeyStatus(db: Db, id: string, status: AccessKeyStatus): Promise<void> {
  const result = await db.updateTable('access_keys').set({ status }).where('id', '=', id).executeTakeFirst();
  if (Number(result.numUpdatedRows) !== 1) throw new AppError('InvalidAccessKeyIdNotFound', { accessKeyId: id });
}
