import type { Clock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import type { RawBuilder } from 'kysely';
import type { Db } from '../store/database.ts';
import { PreparedQuery, type Slots } from '../store/prepared-query.ts';

/** Nonces are remembered for the whole timestamp window, so a replay inside it is always caught. */
export const nonceWindowMs = 15 * 60_000;

/** Rows per INSERT statement; three parameters each stays far below every dialect's limit. */
const rowsPerStatement = 500;

/** One INSERT of as many nonces as the lists hold, all expiring at `expiresAt`; it returns the ones it stored. */
const insertNonces = new PreparedQuery((db, slot: Slots<{ keyIds: readonly string[]; nonces: readonly string[]; expiresAt: number }>) => {
  const expiresAt = slot.value('expiresAt');
  const keyIds = slot.items('keyIds');
  const nonces = slot.items('nonces');
  if (keyIds.length !== nonces.length) throw new Error('insertNonces takes one key id per nonce');
  return db
    .insertInto('signature_nonces')
    // Both lists have the same length (checked above), so every index is within nonces.
    .values(keyIds.map((keyId, i) => ({ access_key_id: keyId, nonce: nonces[i] as RawBuilder<string>, expires_at: expiresAt })))
    .onConflict((oc) => oc.columns(['access_key_id', 'nonce']).doNothing())
    .returning(['access_key_id', 'nonce']);
});

interface PendingNonce {
  readonly accessKeyId: string;
  readonly nonce: string;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Signature nonces, recorded in the database so every node sees them, and a reused one refused.
 * Requests that arrive together are recorded together (group commit): each `remember` waits for
 * the one statement that records every nonce asked for in the same turn of the event loop, so a
 * node under load writes once per batch instead of once per request, and no request is answered
 * before its nonce is stored.
 */
export class NonceLedger {
  readonly #db: Db;
  readonly #clock: Clock;
  #pending: PendingNonce[] = [];

  constructor(db: Db, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
  }

  /** Resolves once the nonce is stored; rejects with SignatureNonceUsed when it was seen before. */
  remember(accessKeyId: string, nonce: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#pending.length === 0) setImmediate(() => void this.#flush());
      this.#pending.push({ accessKeyId, nonce, resolve, reject });
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    // The same nonce twice in one batch: the first is recorded, the rest are replays.
    const first = new Map<string, PendingNonce>();
    for (const item of batch) {
      const id = `${item.accessKeyId}\n${item.nonce}`;
      if (first.has(id)) item.reject(new AppError('SignatureNonceUsed'));
      else first.set(id, item);
    }
    const unique = [...first.values()];
    try {
      const stored = await this.#insert(unique);
      for (const item of unique) {
        if (stored.has(`${item.accessKeyId}\n${item.nonce}`)) item.resolve();
        else item.reject(new AppError('SignatureNonceUsed'));
      }
    } catch (err) {
      for (const item of unique) item.reject(err);
    }
    if (Math.random() < 0.01 * batch.length) await sweepNonces(this.#db, this.#clock).catch(() => undefined);
  }

  /** The `key\nnonce` pairs this call stored; the others were there already. */
  async #insert(items: readonly PendingNonce[]): Promise<Set<string>> {
    // Entries live two windows: a request stamped at the window's far edge is still covered.
    const expiresAt = this.#clock.nowMs() + 2 * nonceWindowMs;
    const stored = new Set<string>();
    for (let start = 0; start < items.length; start += rowsPerStatement) {
      const chunk = items.slice(start, start + rowsPerStatement);
      const rows = await insertNonces.rows(this.#db, { keyIds: chunk.map((i) => i.accessKeyId), nonces: chunk.map((i) => i.nonce), expiresAt });
      for (const row of rows) stored.add(`${row.access_key_id}\n${row.nonce}`);
    }
    return stored;
  }
}

export async function sweepNonces(db: Db, clock: Clock): Promise<number> {
  const result = await db.deleteFrom('signature_nonces').where('expires_at', '<', clock.nowMs()).executeTakeFirst();
  return Number(result.numDeletedRows);
}
