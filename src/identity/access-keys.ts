import { randomInt } from 'node:crypto';
import type { Clock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import type { Db } from '../store/database.ts';
import { PreparedQuery, type Slots } from '../store/prepared-query.ts';
import { type PolicyDocument, parsePolicy } from './policies.ts';
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

/** An access key as a request sees it: the key, its secret in clear, and its policy if one is attached. */
export interface KeyWithPolicy {
  readonly key: AccessKeyWithSecret;
  /** Undefined when no policy is attached: the key has its account's full access. */
  readonly policy: PolicyDocument | undefined;
}

const keysWithPolicy = new PreparedQuery((db, slot: Slots<{ ids: readonly string[] }>) =>
  db
    .selectFrom('access_keys')
    .leftJoin('key_policies', 'key_policies.access_key_id', 'access_keys.id')
    .select(['access_keys.id', 'access_keys.account_id', 'access_keys.status', 'access_keys.created_at', 'access_keys.secret_enc', 'key_policies.document'])
    .where('access_keys.id', 'in', slot.items('ids')),
);

type KeyRow = Awaited<ReturnType<typeof keysWithPolicy.rows>>[number];

/** Entries kept per cache before it starts over; a fleet's keys fit many times over. */
const keyCacheSize = 10_000;

/** Distinct keys per lookup statement; more waiting at once take several. */
const keysPerStatement = 100;

interface PendingLookup {
  readonly resolve: (found: KeyWithPolicy) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Looks access keys up for every signed request: the key row and its policy in one statement,
 * one statement for all the lookups asked for in the same turn of the event loop. The database
 * stays the truth on every call (each lookup is answered by a statement that starts after it was
 * asked), so a key disabled or a policy changed on another node counts on the next request; only
 * the costly derived values are kept in memory, keyed by what they derive from: the secret opened
 * from its exact ciphertext, the policy parsed from its exact text.
 */
export class KeyDirectory {
  readonly #db: Db;
  readonly #box: SecretBox;
  readonly #secrets = new Map<string, { readonly sealed: string; readonly secret: string }>();
  readonly #policies = new Map<string, { readonly text: string; readonly policy: PolicyDocument }>();
  #pending = new Map<string, PendingLookup[]>();

  constructor(db: Db, box: SecretBox) {
    this.#db = db;
    this.#box = box;
  }

  /** The key, its secret and its policy, or InvalidAccessKeyId.NotFound; a disabled key is returned, the caller refuses it. */
  find(id: string): Promise<KeyWithPolicy> {
    return new Promise((resolve, reject) => {
      if (this.#pending.size === 0) setImmediate(() => void this.#flush());
      const waiting = this.#pending.get(id);
      if (waiting === undefined) this.#pending.set(id, [{ resolve, reject }]);
      else waiting.push({ resolve, reject });
    });
  }

  async #flush(): Promise<void> {
    const batch = [...this.#pending];
    this.#pending = new Map();
    for (let start = 0; start < batch.length; start += keysPerStatement) {
      const chunk = batch.slice(start, start + keysPerStatement);
      let rows: KeyRow[];
      try {
        rows = await keysWithPolicy.rows(this.#db, { ids: chunk.map(([id]) => id) });
      } catch (err) {
        for (const [, waiting] of chunk) for (const w of waiting) w.reject(err);
        continue;
      }
      const byId = new Map(rows.map((row) => [row.id, row]));
      for (const [id, waiting] of chunk) {
        try {
          const found = this.#keyOf(id, byId.get(id));
          for (const w of waiting) w.resolve(found);
        } catch (err) {
          for (const w of waiting) w.reject(err);
        }
      }
    }
  }

  #keyOf(id: string, row: KeyRow | undefined): KeyWithPolicy {
    if (row === undefined) throw new AppError('InvalidAccessKeyIdNotFound', { accessKeyId: id });
    const key: AccessKeyWithSecret = {
      id: row.id,
      accountId: row.account_id,
      status: row.status as AccessKeyStatus,
      createdAtMs: Number(row.created_at),
      secret: this.#secret(row.id, row.secret_enc),
    };
    return { key, policy: row.document === null ? undefined : this.#policy(row.id, row.document) };
  }

  #secret(id: string, sealed: string): string {
    const cached = this.#secrets.get(id);
    if (cached?.sealed === sealed) return cached.secret;
    const secret = this.#box.open(sealed, id);
    remember(this.#secrets, id, { sealed, secret });
    return secret;
  }

  #policy(id: string, text: string): PolicyDocument {
    const cached = this.#policies.get(id);
    if (cached?.text === text) return cached.policy;
    const policy = parsePolicy(text);
    remember(this.#policies, id, { text, policy });
    return policy;
  }
}

function remember<V>(cache: Map<string, V>, id: string, value: V): void {
  if (cache.size >= keyCacheSize) cache.clear();
  cache.set(id, value);
}

export async function setAccessKeyStatus(db: Db, id: string, status: AccessKeyStatus): Promise<void> {
  const result = await db.updateTable('access_keys').set({ status }).where('id', '=', id).executeTakeFirst();
  if (Number(result.numUpdatedRows) !== 1) throw new AppError('InvalidAccessKeyIdNotFound', { accessKeyId: id });
}
