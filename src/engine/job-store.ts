import { type Transaction, type UpdateObject, sql } from 'kysely';
import type { Clock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Database, Db } from '../store/database.ts';
import type { DatabaseSchema, JobTable } from '../store/schema.ts';
import { type JobState, jobMachine } from './job-states.ts';

export type Trx = Transaction<DatabaseSchema>;

export interface JobRecord {
  readonly id: string;
  readonly kind: string;
  readonly payload: unknown;
  readonly state: JobState;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly runAtMs: number;
  readonly leaseOwner: string | null;
  readonly leaseExpiresAtMs: number | null;
  readonly fencingToken: number;
  readonly checkpoint: unknown;
  readonly result: unknown;
  readonly error: string | null;
  readonly cancelRequested: boolean;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
  readonly finishedAtMs: number | null;
}

export interface EnqueueOptions {
  readonly id?: string;
  /** Earliest start, ms since epoch; default now. */
  readonly runAtMs?: number;
  readonly maxAttempts?: number;
}

/** A claimed job and whether the claim took it over from a worker whose lease expired. */
export interface Claim {
  readonly job: JobRecord;
  readonly takeover: boolean;
}

/** The identity of one lease: every write a worker makes is checked against it. */
export interface Lease {
  readonly jobId: string;
  readonly owner: string;
  readonly fencingToken: number;
}

function parseJson(text: string | null): unknown {
  return text === null ? null : (JSON.parse(text) as unknown);
}

function toRecord(row: JobTable): JobRecord {
  return {
    id: row.id,
    kind: row.kind,
    payload: parseJson(row.payload),
    state: row.state as JobState,
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
    runAtMs: Number(row.run_at),
    leaseOwner: row.lease_owner,
    leaseExpiresAtMs: row.lease_expires_at === null ? null : Number(row.lease_expires_at),
    fencingToken: Number(row.fencing_token),
    checkpoint: parseJson(row.checkpoint),
    result: parseJson(row.result),
    error: row.error,
    cancelRequested: Number(row.cancel_requested) === 1,
    createdAtMs: Number(row.created_at),
    updatedAtMs: Number(row.updated_at),
    finishedAtMs: row.finished_at === null ? null : Number(row.finished_at),
  };
}

const defaultMaxAttempts = 5;

/** All SQL of the job engine. Writes on behalf of a worker go through `fence`. */
export class JobStore {
  readonly #database: Database;
  readonly #clock: Clock;

  constructor(database: Database, clock: Clock) {
    this.#database = database;
    this.#clock = clock;
  }

  get db(): Db {
    return this.#database.db;
  }

  /** Add a job; with `trx` it commits together with the caller's own writes. */
  async enqueue(kind: string, payload: unknown, options: EnqueueOptions = {}, trx?: Trx): Promise<JobRecord> {
    const now = this.#clock.nowMs();
    const row: JobTable = {
      id: options.id ?? newId('job'),
      kind,
      payload: JSON.stringify(payload ?? null),
      state: 'queued',
      attempts: 0,
      max_attempts: options.maxAttempts ?? defaultMaxAttempts,
      run_at: options.runAtMs ?? now,
      lease_owner: null,
      lease_expires_at: null,
      fencing_token: 0,
      checkpoint: null,
      result: null,
      error: null,
      cancel_requested: 0,
      created_at: now,
      updated_at: now,
      finished_at: null,
    };
    await (trx ?? this.db).insertInto('jobs').values(row).execute();
    return toRecord(row);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const row = await this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : toRecord(row);
  }

  async require(id: string): Promise<JobRecord> {
    const job = await this.get(id);
    if (job === undefined) throw new AppError('JobNotFound', { jobId: id });
    return job;
  }

  /**
   * Cancel a job. A queued job, or a running one whose lease has expired, is cancelled at
   * once; a live running job gets a cancel request that its worker turns into an abort.
   */
  async cancel(id: string): Promise<JobRecord> {
    const now = this.#clock.nowMs();
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
      if (row === undefined) throw new AppError('JobNotFound', { jobId: id });
      const job = toRecord(row);
      if (!jobMachine.can(job.state, 'cancel')) {
        throw new AppError('JobStateConflict', { jobId: id, state: job.state, action: 'cancel' });
      }
      const leaseLive = job.state === 'running' && (job.leaseExpiresAtMs ?? 0) >= now;
      const update = leaseLive
        ? { cancel_requested: 1, updated_at: now }
        : {
            state: 'cancelled',
            cancel_requested: 1,
            lease_owner: null,
            lease_expires_at: null,
            error: 'cancelled',
            updated_at: now,
            finished_at: now,
          };
      const updated = await trx.updateTable('jobs').set(update).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
      return toRecord(updated);
    });
  }

  /**
   * Claim up to `limit` due jobs of the given kinds for `owner`: queued jobs whose run_at has
   * come, and running jobs whose lease expired (a takeover). Each claim bumps the fencing token.
   * PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent claimers never wait on each other;
   * SQLite: the claim runs in one BEGIN IMMEDIATE transaction, a single writer at a time.
   */
  async claim(owner: string, kinds: readonly string[], limit: number, leaseMs: number): Promise<Claim[]> {
    if (kinds.length === 0 || limit <= 0) return [];
    const now = this.#clock.nowMs();
    const lock = this.#database.dialect === 'postgres' ? sql`for update skip locked` : sql``;
    const kindList = sql.join(kinds.map((k) => sql`${k}`));
    return this.db.transaction().execute(async (trx) => {
      // Jobs asked to cancel whose worker vanished are cancelled, not taken over.
      await trx
        .updateTable('jobs')
        .set({ state: 'cancelled', lease_owner: null, lease_expires_at: null, error: 'cancelled', updated_at: now, finished_at: now })
        .where('state', '=', 'running')
        .where('cancel_requested', '=', 1)
        .where('lease_expires_at', '<', now)
        .execute();
      const picked = await sql<{ id: string; state: string }>`
        select id, state from jobs
        where kind in (${kindList})
          and ((state = 'queued' and run_at <= ${now})
            or (state = 'running' and lease_expires_at < ${now}))
        order by run_at, id
        limit ${limit}
        ${lock}`.execute(trx);
      if (picked.rows.length === 0) return [];
      const rows = await trx
        .updateTable('jobs')
        .set({
          state: 'running',
          lease_owner: owner,
          lease_expires_at: now + leaseMs,
          fencing_token: sql`fencing_token + 1`,
          attempts: sql`attempts + 1`,
          updated_at: now,
        })
        .where('id', 'in', picked.rows.map((r) => r.id))
        .returningAll()
        .execute();
      const prior = new Map(picked.rows.map((r) => [r.id, r.state]));
      return rows.map((row) => ({ job: toRecord(row), takeover: prior.get(row.id) === 'running' }));
    });
  }

  /**
   * Extend a lease. Answers whether the lease is still held and whether a cancel was asked;
   * a worker that gets `held: false` must stop: its token is stale.
   */
  async renew(lease: Lease, leaseMs: number): Promise<{ held: boolean; cancelRequested: boolean }> {
    const now = this.#clock.nowMs();
    const row = await this.db
      .updateTable('jobs')
      .set({ lease_expires_at: now + leaseMs, updated_at: now })
      .where('id', '=', lease.jobId)
      .where('fencing_token', '=', lease.fencingToken)
      .where('state', '=', 'running')
      .returning(['cancel_requested'])
      .executeTakeFirst();
    return row === undefined
      ? { held: false, cancelRequested: false }
      : { held: true, cancelRequested: Number(row.cancel_requested) === 1 };
  }

  /**
   * Run `work` in a transaction that first proves the lease is still held (same fencing token,
   * still running). A stale worker's write is refused with LeaseLost and nothing of `work` commits.
   * `finish` moves the job to its next state in the same transaction.
   */
  async fence<T>(lease: Lease, work: (trx: Trx) => Promise<T>, finish?: JobFinish): Promise<T> {
    const now = this.#clock.nowMs();
    return this.db.transaction().execute(async (trx) => {
      const update = finish === undefined ? { updated_at: now } : finishUpdate(finish, now);
      const touched = await trx
        .updateTable('jobs')
        .set(update)
        .where('id', '=', lease.jobId)
        .where('fencing_token', '=', lease.fencingToken)
        .where('state', '=', 'running')
        .executeTakeFirst();
      if (Number(touched.numUpdatedRows) !== 1) {
        throw new AppError('LeaseLost', { jobId: lease.jobId, token: lease.fencingToken });
      }
      return work(trx);
    });
  }

  /** Jobs counted by kind and state, for /metrics. */
  async countByKindAndState(): Promise<Array<{ kind: string; state: string; count: number }>> {
    const rows = await this.db
      .selectFrom('jobs')
      .select(['kind', 'state', (eb) => eb.fn.countAll<number>().as('count')])
      .groupBy(['kind', 'state'])
      .execute();
    return rows.map((r) => ({ kind: r.kind, state: r.state, count: Number(r.count) }));
  }
}

/** How a fenced write moves the job on. */
export type JobFinish =
  | { readonly to: 'succeeded'; readonly result: unknown }
  | { readonly to: 'queued'; readonly runAtMs: number; readonly error: string; readonly spendAttempt: boolean }
  | { readonly to: 'failed'; readonly error: string }
  | { readonly to: 'cancelled' }
  | { readonly checkpoint: unknown; readonly to?: undefined };

function finishUpdate(finish: JobFinish, now: number): UpdateObject<DatabaseSchema, 'jobs'> {
  const released = { lease_owner: null, lease_expires_at: null, updated_at: now };
  switch (finish.to) {
    case 'succeeded':
      return { ...released, state: 'succeeded', result: JSON.stringify(finish.result ?? null), error: null, finished_at: now };
    case 'queued':
      return {
        ...released,
        state: 'queued',
        run_at: finish.runAtMs,
        error: finish.error,
        ...(finish.spendAttempt ? {} : { attempts: sql`attempts - 1` }),
      };
    case 'failed':
      return { ...released, state: 'failed', error: finish.error, finished_at: now };
    case 'cancelled':
      return { ...released, state: 'cancelled', error: 'cancelled', finished_at: now };
    case undefined:
      return { checkpoint: JSON.stringify(finish.checkpoint ?? null), updated_at: now };
  }
}
