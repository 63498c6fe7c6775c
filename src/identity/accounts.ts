import { randomBytes, randomInt } from 'node:crypto';
import { AppError } from '../core/errors.ts';
import type { Clock } from '../core/clock.ts';
import type { Db } from '../store/database.ts';

export interface Account {
  /** 16 digits, as Alibaba account ids are; appears in resource names `acs:smc:*:<id>:...`. */
  readonly id: string;
  readonly name: string;
  /** 32 hex characters, the Huawei project id used in `/v1/{project_id}/` paths. */
  readonly projectId: string;
  readonly createdAtMs: number;
}

const accountNamePattern = /^[a-z][a-z0-9-]{0,62}$/;

export function validateAccountName(name: string): void {
  if (!accountNamePattern.test(name)) {
    throw new AppError('InvalidParameter', {
      name: 'account',
      reason: 'use 1 to 63 characters: lower-case letters, digits and hyphens, starting with a letter',
    });
  }
}

function newAccountId(): string {
  return `${randomInt(1, 10)}${Array.from({ length: 15 }, () => randomInt(0, 10)).join('')}`;
}

function toAccount(row: { id: string; name: string; project_id: string; created_at: number }): Account {
  return { id: row.id, name: row.name, projectId: row.project_id, createdAtMs: Number(row.created_at) };
}

export async function findAccountByName(db: Db, name: string): Promise<Account | undefined> {
  const row = await db.selectFrom('accounts').selectAll().where('name', '=', name).executeTakeFirst();
  return row === undefined ? undefined : toAccount(row);
}

export async function findAccountById(db: Db, id: string): Promise<Account | undefined> {
  const row = await db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : toAccount(row);
}

export async function findAccountByProjectId(db: Db, projectId: string): Promise<Account | undefined> {
  const row = await db.selectFrom('accounts').selectAll().where('project_id', '=', projectId).executeTakeFirst();
  return row === undefined ? undefined : toAccount(row);
}

/** The account named `name`, created if it does not exist; safe when two processes race. */
export async function ensureAccount(db: Db, clock: Clock, name: string): Promise<Account> {
  validateAccountName(name);
  const existing = await findAccountByName(db, name);
  if (existing !== undefined) return existing;
  await db
    .insertInto('accounts')
    .values({ id: newAccountId(), name, project_id: randomBytes(16).toString('hex'), created_at: clock.nowMs() })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const created = await findAccountByName(db, name);
  if (created === undefined) throw new Error(`account ${name} vanished after insert`);
  return created;
}
