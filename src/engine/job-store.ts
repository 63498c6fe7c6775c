import { type QueryCreator, type RawBuilder, type SqlBool, type Transaction, type UpdateObject, sql } from 'kysely';
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

/** Rows in one INSERT of enqueueMany: 17 values each stay well under SQLite's 32,766 bound parameters. */
const enqueueBatchRows = 1000;

/** One job for `enqueueMany`. */
export interface NewJob {
  readonly kind: string;
  readonly payload: unknown;
  readonly options?: EnqueueOptions;
}

function newJobRow(kind: string, payload: unknown, options: EnqueueOptions, now: number): JobTable {
  return {
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
}

/** All SQL of the job engine. Writes on behalf of a worker go through `fence`. */
export class JobStore {
  readonly #database: Database;
  readonly #clock: Clock;
  /** Completions waiting for this turn's shared UPDATE. */
  readonly #completions: PendingCompletion[] = [];

  constructor(database: Database, clock: Clock) {
    this.#database = database;
    this.#clock = clock;
  }

  get db(): Db {
    return this.#database.db;
  }

  /** Add a job; with `trx` it commits together with the caller's own writes. */
  async enqueue(kind: string, payload: unknown, options: EnqueueOptions = {}, trx?: Trx): Promise<JobRecord> {
    const [job] = await this.enqueueMany([{ kind, payload, options }], trx);
    if (job === undefined) throw new Error('enqueueMany returned no job');
    return job;
  }

  /**
   * Add several jobs with one INSERT (per `enqueueBatchRows`); with `trx` they commit together with
   * the caller's own writes.
   */
  async enqueueMany(jobs: readonly NewJob[], trx?: Trx): Promise<JobRecord[]> {
    const now = this.#clock.nowMs();
    const rows = jobs.map(({ kind, payload, options = {} }) => newJobRow(kind, payload, options, now));
    for (let at = 0; at < rows.length; at += enqueueBatchRows) await (trx ?? this.db).insertInto('jobs').values(rows.slice(at, at + enqueueBatchRows)).execute();
    return rows.map(toRecord);
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
   * Cancel many jobs, as `cancel` does each, in two statements (in `trx` when given): queued jobs
   * and running ones whose lease expired end cancelled at once, live running ones get a cancel
   * request. Jobs already finished are left as they are.
   */
  async cancelMany(ids: readonly string[], trx?: Trx): Promise<void> {
    if (ids.length === 0) return;
    const db = trx ?? this.db;
    const now = this.#clock.nowMs();
    await db
      .updateTable('jobs')
      .set({ state: 'cancelled', cancel_requested: 1, lease_owner: null, lease_expires_at: null, error: 'cancelled', updated_at: now, finished_at: now })
      .where('id', 'in', [...ids])
      .where((eb) => eb.or([inState('queued'), eb.and([inState('running'), eb('lease_expires_at', '<', now)])]))
      .execute();
    await db.updateTable('jobs').set({ cancel_requested: 1, updated_at: now }).where('id', 'in', [...ids]).where(inState('running')).where('lease_expires_at', '>=', now).execute();
  }

  /**
   * Claim up to `limit` due jobs of the given kinds for `owner`: queued jobs whose run_at has
   * come, and running jobs whose lease expired (a takeover), earliest run_at first. Each claim
   * bumps the fencing token. Running jobs asked to cancel whose lease expired are cancelled on the
   * way, not taken over.
   * PostgreSQL: one statement whose selects lock with FOR UPDATE SKIP LOCKED, so concurrent
   * claimers never wait on each other and a claim costs one round trip;
   * SQLite: one BEGIN IMMEDIATE transaction, a single writer at a time.
   */
  async claim(owner: string, kinds: readonly string[], limit: number, leaseMs: number): Promise<Claim[]> {
    if (kinds.length === 0 || limit <= 0) return [];
    const now = this.#clock.nowMs();
    const postgres = this.#database.dialect === 'postgres';
    const leased = {
      state: 'running',
      lease_owner: owner,
      lease_expires_at: now + leaseMs,
      fencing_token: sql<number>`fencing_token + 1`,
      attempts: sql<number>`attempts + 1`,
      updated_at: now,
    } as const;
    if (postgres) {
      // Data-modifying CTEs run once, whether read or not; `picked` skips what `swept` cancels.
      const rows = await this.db
        .with('swept', (db) => sweepExpiredCancels(db, now))
        .with('picked', (db) => dueJobs(db, kinds, limit, now))
        .updateTable('jobs')
        .set(leased)
        .from('picked')
        .whereRef('jobs.id', '=', 'picked.id')
        .returningAll('jobs')
        .returning('picked.state as prior_state')
        .execute();
      return rows.map(({ prior_state, ...row }) => ({ job: toRecord(row), takeover: prior_state === 'running' }));
    }
    // Completions waiting for their shared UPDATE are recorded in this same transaction: SQLite
    // has one writer at a time anyway, and one commit for both costs much less than two.
    const completions = this.#completions.splice(0);
    try {
      const { claims, held } = await this.db.transaction().execute(async (trx) => ({
        held: completions.length === 0 ? new Set<string>() : await completeAll(trx, completions, now),
        claims: await claimOnSqlite(trx, kinds, limit, now, leased),
      }));
      settleCompletions(completions, held);
      return claims;
    } catch (err) {
      // A failed claim must not fail the completions it carried: they are written on their own.
      this.#queueCompletions(completions);
      throw err;
    }
  }

  /**
   * Extend a lease. Answers whether the lease is still held and whether a cancel was asked;
   * a worker that gets `held: false` must stop: its token is stale.
   */
  async renew(lease: Lease, leaseMs: number): Promise<{ held: boolean; cancelRequested: boolean }> {
    const held = await this.renewAll([lease], leaseMs);
    const answer = held.get(lease.jobId);
    return { held: answer !== undefined, cancelRequested: answer?.cancelRequested ?? false };
  }

  /**
   * Extend many leases with one statement. The answer maps each job whose lease is still held
   * to whether a cancel was asked; a lease missing from it is stale.
   */
  async renewAll(leases: readonly Lease[], leaseMs: number): Promise<Map<string, { cancelRequested: boolean }>> {
    if (leases.length === 0) return new Map();
    const now = this.#clock.nowMs();
    const rows = await this.db
      .updateTable('jobs')
      .set({ lease_expires_at: now + leaseMs, updated_at: now })
      .where(inState('running'))
      .where((eb) => eb.or(leases.map((l) => eb.and([eb('id', '=', l.jobId), eb('fencing_token', '=', l.fencingToken)]))))
      .returning(['id', 'cancel_requested'])
      .execute();
    return new Map(rows.map((r) => [r.id, { cancelRequested: Number(r.cancel_requested) === 1 }]));
  }

  /**
   * Save a checkpoint or move the job on, if the lease is still held; a stale worker's write is
   * refused with LeaseLost. One UPDATE whose WHERE carries the fencing check: a single statement
   * is atomic, so no transaction is needed. Completions made in the same event-loop turn (a
   * claimed batch of short jobs ends together) share one UPDATE, each row still fenced on its own.
   * Answers the job's state after the write: a retry of a job whose cancel was asked ends cancelled.
   */
  async write(lease: Lease, change: JobFinish): Promise<JobState> {
    if (change.to === 'succeeded') {
      await this.#complete({ lease, resultJson: JSON.stringify(change.result ?? null) });
      return 'succeeded';
    }
    return fencedUpdate(this.db, lease, finishUpdate(change, this.#clock.nowMs()));
  }

  #complete(completion: Completion): Promise<void> {
    return new Promise((resolve, reject) => this.#queueCompletions([{ ...completion, resolve, reject }]));
  }

  #queueCompletions(completions: readonly PendingCompletion[]): void {
    if (completions.length === 0) return;
    if (this.#completions.length === 0) setImmediate(() => void this.#flushCompletions());
    this.#completions.push(...completions);
  }

  async #flushCompletions(): Promise<void> {
    // Empty when a claim (on SQLite) took the batch into its own transaction first.
    const batch = this.#completions.splice(0);
    if (batch.length === 0) return;
    try {
      settleCompletions(batch, await completeAll(this.db, batch, this.#clock.nowMs()));
    } catch (err) {
      for (const { reject } of batch) reject(err);
    }
  }

  /**
   * Run `work` in a transaction that first proves the lease is still held (same fencing token,
   * still running). A stale worker's write is refused with LeaseLost and nothing of `work` commits.
   * `finish` moves the job to its next state in the same transaction.
   */
  async fence<T>(lease: Lease, work: (trx: Trx) => Promise<T>, finish?: JobFinish): Promise<T> {
    const now = this.#clock.nowMs();
    return this.db.transaction().execute(async (trx) => {
      await fencedUpdate(trx, lease, finish === undefined ? { updated_at: now } : finishUpdate(finish, now));
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

/**
 * `state = '<state>'` with the name written into the SQL, not bound: SQLite picks the partial
 * indexes jobs_queued and jobs_running by a statement's text, and a bound value that decides the
 * choice makes it prepare the statement anew on every run.
 */
function inState(state: JobState): RawBuilder<SqlBool> {
  return sql<SqlBool>`state = ${sql.lit(state)}`;
}

/** A job's result, serialised, to record under its lease. */
interface Completion {
  readonly lease: Lease;
  readonly resultJson: string;
}

interface PendingCompletion extends Completion {
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

function leaseKey(lease: { readonly jobId: string; readonly fencingToken: number }): string {
  return `${lease.jobId}:${lease.fencingToken}`;
}

/**
 * Mark jobs succeeded in one UPDATE. Each row changes only under its own lease (id, fencing
 * token, still running); answers the leases (`leaseKey`) that were held, the others were refused.
 */
async function completeAll(db: Db | Trx, completions: readonly Completion[], now: number): Promise<Set<string>> {
  const result = sql<string>`case ${sql.join(
    completions.map(({ lease, resultJson }) => sql`when id = ${lease.jobId} and fencing_token = ${lease.fencingToken} then ${resultJson}`),
    sql` `,
  )} end`;
  const rows = await db
    .updateTable('jobs')
    .set({ state: 'succeeded', result, error: null, lease_owner: null, lease_expires_at: null, updated_at: now, finished_at: now })
    .where(inState('running'))
    .where((eb) => eb.or(completions.map(({ lease }) => eb.and([eb('id', '=', lease.jobId), eb('fencing_token', '=', lease.fencingToken)]))))
    .returning(['id', 'fencing_token'])
    .execute();
  return new Set(rows.map((row) => leaseKey({ jobId: row.id, fencingToken: Number(row.fencing_token) })));
}

/** Resolve the completions whose lease was held (`held`, by `leaseKey`); refuse the others. */
function settleCompletions(completions: readonly PendingCompletion[], held: ReadonlySet<string>): void {
  for (const { lease, resolve, reject } of completions) {
    if (held.has(leaseKey(lease))) resolve();
    else reject(new AppError('LeaseLost', { jobId: lease.jobId, token: lease.fencingToken }));
  }
}

/**
 * The claim on SQLite, inside the caller's BEGIN IMMEDIATE transaction. SQLite's RETURNING cannot
 * name another table, so prior states (takeover or not) come from the selects; each select is
 * cheaper alone than in a union, which sorts both sides again to merge them.
 */
async function claimOnSqlite(trx: Trx, kinds: readonly string[], limit: number, now: number, leased: UpdateObject<DatabaseSchema, 'jobs'>): Promise<Claim[]> {
  await sweepExpiredCancels(trx, now).execute();
  const candidates = [...(await expiredLeases(trx, kinds, limit, now).execute()), ...(await dueQueued(trx, kinds, limit, now).execute())];
  const picked = candidates.sort(byRunAtThenId).slice(0, limit);
  if (picked.length === 0) return [];
  const rows = await trx
    .updateTable('jobs')
    .set(leased)
    .where('id', 'in', picked.map((r) => r.id))
    .returningAll()
    .execute();
  const prior = new Map(picked.map((r) => [r.id, r.state]));
  return rows.map((row) => ({ job: toRecord(row), takeover: prior.get(row.id) === 'running' }));
}

/** The UPDATE behind every write a worker makes: it touches the row only under the worker's own lease. */
async function fencedUpdate(db: Db | Trx, lease: Lease, update: UpdateObject<DatabaseSchema, 'jobs'>): Promise<JobState> {
  const touched = await db
    .updateTable('jobs')
    .set(update)
    .where('id', '=', lease.jobId)
    .where('fencing_token', '=', lease.fencingToken)
    .where(inState('running'))
    .returning('state')
    .executeTakeFirst();
  if (touched === undefined) throw new AppError('LeaseLost', { jobId: lease.jobId, token: lease.fencingToken });
  return touched.state as JobState;
}

/** Running jobs asked to cancel whose worker vanished (lease expired) are cancelled, not taken over. */
function sweepExpiredCancels(db: QueryCreator<DatabaseSchema>, now: number) {
  return db
    .updateTable('jobs')
    .set({ state: 'cancelled', lease_owner: null, lease_expires_at: null, error: 'cancelled', updated_at: now, finished_at: now })
    .where(inState('running'))
    .where('cancel_requested', '=', 1)
    .where('lease_expires_at', '<', now);
}

/** Running jobs whose lease expired, from jobs_running: an empty range while every worker is alive. */
function expiredLeases(db: QueryCreator<DatabaseSchema>, kinds: readonly string[], limit: number, now: number) {
  return db
    .selectFrom('jobs')
    .select(['id', 'state', 'run_at'])
    .where(inState('running'))
    .where('lease_expires_at', '<', now)
    .where('cancel_requested', '=', 0)
    .where('kind', 'in', kinds)
    .orderBy('run_at')
    .orderBy('id')
    .limit(limit);
}

/** Queued jobs whose run_at has come, earliest first: a range of jobs_queued, in its order. */
function dueQueued(db: QueryCreator<DatabaseSchema>, kinds: readonly string[], limit: number, now: number) {
  return db
    .selectFrom('jobs')
    .select(['id', 'state', 'run_at'])
    .where(inState('queued'))
    .where('run_at', '<=', now)
    .where('kind', 'in', kinds)
    .orderBy('run_at')
    .orderBy('id')
    .limit(limit);
}

/**
 * The `limit` jobs a claim takes, earliest run_at first, locked for this claim on PostgreSQL:
 * expired leases and due queued jobs read apart, each from its own index, and only their at
 * most 2 x `limit` rows merged. One `or` of both would read and sort every due job.
 */
function dueJobs(db: QueryCreator<DatabaseSchema>, kinds: readonly string[], limit: number, now: number) {
  const expired = expiredLeases(db, kinds, limit, now).forUpdate().skipLocked();
  const queued = dueQueued(db, kinds, limit, now).forUpdate().skipLocked();
  return db
    .selectFrom(expired.as('expired'))
    .select(['id', 'state', 'run_at'])
    .unionAll(db.selectFrom(queued.as('queued')).select(['id', 'state', 'run_at']))
    .orderBy('run_at')
    .orderBy('id')
    .limit(limit);
}

/** The order a claim takes jobs in, as SQL's `order by run_at, id` sorts them. */
function byRunAtThenId(a: { run_at: number; id: string }, b: { run_at: number; id: string }): number {
  return Number(a.run_at) - Number(b.run_at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
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
    case 'queued': {
      // A cancel asked while the handler ran is not lost by a retry or a hand-back: the job ends.
      const cancelled = sql<SqlBool>`cancel_requested = 1`;
      return {
        ...released,
        state: sql<string>`case when ${cancelled} then 'cancelled' else 'queued' end`,
        run_at: finish.runAtMs,
        error: sql<string>`case when ${cancelled} then 'cancelled' else ${finish.error} end`,
        finished_at: sql<number | null>`case when ${cancelled} then cast(${now} as bigint) else null end`,
        ...(finish.spendAttempt ? {} : { attempts: sql`attempts - 1` }),
      };
    }
    case 'failed':
      return { ...released, state: 'failed', error: finish.error, finished_at: now };
    case 'cancelled':
      return { ...released, state: 'cancelled', error: 'cancelled', finished_at: now };
    case undefined:
      return { checkpoint: JSON.stringify(finish.checkpoint ?? null), updated_at: now };
  }
}
