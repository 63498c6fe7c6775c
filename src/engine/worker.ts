import { hostname } from 'node:os';
import { type Clock, sleep, systemClock } from '../core/clock.ts';
import { AppError, isAppError } from '../core/errors.ts';
import { randomId } from '../core/ids.ts';
import { type BackoffPolicy, backoffDelayMs, defaultBackoff } from './backoff.ts';
import type { JobRecord, JobStore, Lease, Trx } from './job-store.ts';

/** What a handler sees of its job, and the only way it may write while holding the lease. */
export interface JobContext {
  readonly job: JobRecord;
  /** Aborts on cancel, on lease loss and on shutdown; `signal.reason` says which. */
  readonly signal: AbortSignal;
  /** Save progress; a later attempt (after a crash) starts from `job.checkpoint`. */
  checkpoint(value: unknown): Promise<void>;
  /**
   * Run writes in a transaction guarded by the fencing token. With `{ result }`, the job is marked
   * succeeded in that same transaction, so its effects and its completion commit together; with
   * `{ checkpoint }`, the checkpoint is saved by the fencing write itself, one statement fewer than
   * a `checkpoint` call.
   */
  fenced<T>(work: (trx: Trx) => Promise<T>, finish?: { result: unknown } | { checkpoint: unknown }): Promise<T>;
}

export type JobHandler = (ctx: JobContext) => Promise<unknown>;

/** Thrown by a handler for a failure that retrying cannot fix. */
export class PermanentJobError extends Error {
  override readonly name = 'PermanentJobError';
}

export interface WorkerEvents {
  claimed?(job: JobRecord, takeover: boolean): void;
  finished?(job: JobRecord, state: 'succeeded' | 'failed' | 'queued' | 'cancelled' | 'lost'): void;
  error?(err: unknown, jobId?: string): void;
}

export interface WorkerOptions {
  readonly owner?: string;
  readonly leaseMs?: number;
  /** How often an idle worker looks for due jobs. */
  readonly pollMs?: number;
  /** Handlers running at once in this worker (default `defaultWorkerConcurrency`). */
  readonly concurrency?: number;
  readonly backoff?: BackoffPolicy;
  readonly clock?: Clock;
  readonly events?: WorkerEvents;
}

type StopReason = 'cancelled' | 'lease-lost' | 'shutdown';

/**
 * Jobs one worker runs at once unless told otherwise. Migration jobs spend most of their time
 * waiting (on an agent, a disk copy, a planned time), and a worker that claims only a few at a
 * time spends one claim round trip per few jobs: 16 keeps the claim cost small per job.
 */
export const defaultWorkerConcurrency = 16;

class JobAbort extends Error {
  constructor(readonly reason: StopReason) {
    super(`job stopped: ${reason}`);
    this.name = 'AbortError';
  }
}

/**
 * How the worker tells one handler to stop, and why it did. The AbortSignal is made on first
 * use: most handlers of short jobs never read it, and making one costs more than the rest of
 * such a job's bookkeeping in this process.
 */
class JobStop {
  reason: StopReason | undefined;
  #controller: AbortController | undefined;

  get signal(): AbortSignal {
    return (this.#controller ??= new AbortController()).signal;
  }

  stop(reason: StopReason): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    (this.#controller ??= new AbortController()).abort(new JobAbort(reason));
  }
}

/** One claimed job in this worker, from its claim until its outcome is written. */
interface RunningJob {
  readonly job: JobRecord;
  readonly lease: Lease;
  readonly stop: JobStop;
  /** Set when the handler completed the job itself, in its own fenced transaction. */
  finished: boolean;
}

/** How a handler's run ended: its result, or what it threw. */
type Attempt = { readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly error: unknown };

/** The worker's name in lease_owner: host, pid and a random tail, unique per process start. */
export function defaultOwner(): string {
  return `${hostname()}:${process.pid}:${randomId(6)}`;
}

/**
 * Claims due jobs, runs their handlers, renews their leases and records the outcome.
 * Several workers, in one process or many, share one job table safely.
 */
export class Worker {
  readonly owner: string;
  readonly #store: JobStore;
  readonly #handlers: ReadonlyMap<string, JobHandler>;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #concurrency: number;
  readonly #backoff: BackoffPolicy;
  readonly #clock: Clock;
  readonly #events: WorkerEvents;
  readonly #running = new Map<string, { readonly run: RunningJob; readonly done: Promise<void> }>();
  /** Handlers running now; a job whose handler has returned frees its slot while its outcome is written. */
  #busy = 0;
  /** The last claim filled every slot it asked for, so more jobs are probably due. */
  #moreDue = true;
  #loop: Promise<void> | undefined;
  #renewals: Promise<void> | undefined;
  #stopping = new AbortController();
  #stopRenewing = new AbortController();
  #wake: (() => void) | undefined;

  constructor(store: JobStore, handlers: ReadonlyMap<string, JobHandler>, options: WorkerOptions = {}) {
    this.#store = store;
    this.#handlers = handlers;
    this.owner = options.owner ?? defaultOwner();
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#pollMs = options.pollMs ?? 500;
    this.#concurrency = options.concurrency ?? defaultWorkerConcurrency;
    this.#backoff = options.backoff ?? defaultBackoff;
    this.#clock = options.clock ?? systemClock;
    this.#events = options.events ?? {};
  }

  get runningJobIds(): string[] {
    return [...this.#running.keys()];
  }

  start(): void {
    if (this.#loop !== undefined) return;
    this.#stopping = new AbortController();
    this.#stopRenewing = new AbortController();
    this.#moreDue = true;
    this.#loop = this.#claimLoop();
    this.#renewals = this.#renewLoop(this.#stopRenewing.signal);
  }

  /** Look for work now instead of at the next poll (after a local enqueue). */
  poke(): void {
    this.#wake?.();
  }

  /**
   * Stop claiming; let running handlers finish for up to `graceMs`, then abort them and hand
   * their jobs back (queued, attempt not spent) so another worker starts them at once.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopping.abort();
    this.#wake?.();
    await this.#loop;
    this.#loop = undefined;
    const all = Promise.all([...this.#running.values()].map((r) => r.done));
    const graceOver = new AbortController();
    const timer = sleep(graceMs, graceOver.signal).then(() => 'timeout' as const, () => 'done' as const);
    if ((await Promise.race([all.then(() => 'done' as const), timer])) === 'timeout') {
      for (const { run } of this.#running.values()) run.stop.stop('shutdown');
      await all;
    }
    graceOver.abort();
    // Leases are renewed until the last job has settled: a handed-back job must not expire first.
    this.#stopRenewing.abort();
    await this.#renewals;
    this.#renewals = undefined;
  }

  async #claimLoop(): Promise<void> {
    const kinds = [...this.#handlers.keys()];
    while (!this.#stopping.signal.aborted) {
      const free = this.#concurrency - this.#busy;
      let claimed = 0;
      if (free > 0) {
        try {
          const claims = await this.#store.claim(this.owner, kinds, free, this.#leaseMs);
          claimed = claims.length;
          this.#moreDue = claimed === free;
          for (const { job, takeover } of claims) this.#launch(job, takeover);
        } catch (err) {
          this.#events.error?.(err);
        }
      }
      // Every slot asked for was filled and some freed meanwhile: go again at once. Otherwise
      // wait for a slot (if more jobs are due), a poke or the next poll.
      if (claimed > 0 && claimed === free && this.#busy < this.#concurrency) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.#pollMs);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.#wake = done;
      });
      this.#wake = undefined;
    }
  }

  /**
   * A slot is free: if more jobs are due, wake the claim loop one event-loop turn later, not at
   * once, so that jobs ending together (often a whole claimed batch) are replaced by one claim.
   */
  #slotFreed(): void {
    const wake = this.#wake;
    if (wake === undefined || !this.#moreDue) return;
    this.#wake = undefined;
    setImmediate(wake);
  }

  #launch(job: JobRecord, takeover: boolean): void {
    const run: RunningJob = {
      job,
      lease: { jobId: job.id, owner: this.owner, fencingToken: job.fencingToken },
      stop: new JobStop(),
      finished: false,
    };
    this.#busy += 1;
    const done = this.#run(run).finally(() => this.#running.delete(job.id));
    this.#running.set(job.id, { run, done });
    this.#events.claimed?.(job, takeover);
  }

  async #run(run: RunningJob): Promise<void> {
    const attempt = await this.#attempt(run);
    // The handler is done: its slot takes the next job while this one's outcome is written.
    this.#busy -= 1;
    this.#slotFreed();
    try {
      if (!attempt.ok) return await this.#settleFailure(run, attempt.error);
      if (!run.finished) {
        try {
          await this.#store.write(run.lease, { to: 'succeeded', result: attempt.result });
        } catch (err) {
          return await this.#settleFailure(run, err);
        }
      }
      this.#events.finished?.(run.job, 'succeeded');
    } catch (err) {
      if (isAppError(err) && err.code === 'LeaseLost') this.#events.finished?.(run.job, 'lost');
      else this.#events.error?.(err, run.job.id);
    }
  }

  /** Run the job's handler; a job that cannot run fails as if its handler threw a permanent error. */
  async #attempt(run: RunningJob): Promise<Attempt> {
    const { job, lease } = run;
    const handler = this.#handlers.get(job.kind);
    if (handler === undefined) return { ok: false, error: new AppError('UnknownJobKind', { kind: job.kind }) };
    if (job.attempts > job.maxAttempts) {
      return { ok: false, error: new PermanentJobError(`gave up after ${job.maxAttempts} attempts (last worker lost its lease)`) };
    }
    const store = this.#store;
    const ctx: JobContext = {
      job,
      get signal() {
        return run.stop.signal;
      },
      checkpoint: async (value) => {
        await store.write(lease, { checkpoint: value });
      },
      fenced: async (work, finish) => {
        const completes = finish !== undefined && 'result' in finish;
        const out = await store.fence(lease, work, finish === undefined ? undefined : 'result' in finish ? { to: 'succeeded', result: finish.result } : { checkpoint: finish.checkpoint });
        if (completes) run.finished = true;
        return out;
      },
    };
    try {
      return { ok: true, result: await handler(ctx) };
    } catch (error) {
      return { ok: false, error };
    }
  }

  async #settleFailure(run: RunningJob, err: unknown): Promise<void> {
    const { job, lease, stop } = run;
    const lost = (isAppError(err) && err.code === 'LeaseLost') || stop.reason === 'lease-lost';
    if (lost || run.finished) {
      this.#events.finished?.(job, 'lost');
      return;
    }
    if (stop.reason === 'cancelled') {
      await this.#store.write(lease, { to: 'cancelled' });
      this.#events.finished?.(job, 'cancelled');
      return;
    }
    if (stop.reason === 'shutdown') {
      const state = await this.#store.write(lease, {
        to: 'queued',
        runAtMs: this.#clock.nowMs(),
        error: 'released on shutdown',
        spendAttempt: false,
      });
      this.#events.finished?.(job, state === 'cancelled' ? 'cancelled' : 'queued');
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    const permanent = err instanceof PermanentJobError || (isAppError(err) && err.httpStatus < 500);
    if (permanent || job.attempts >= job.maxAttempts) {
      await this.#store.write(lease, { to: 'failed', error: message });
      this.#events.finished?.(job, 'failed');
      return;
    }
    const runAtMs = this.#clock.nowMs() + backoffDelayMs(this.#backoff, job.attempts);
    const state = await this.#store.write(lease, { to: 'queued', runAtMs, error: message, spendAttempt: true });
    this.#events.finished?.(job, state === 'cancelled' ? 'cancelled' : 'queued');
  }

  /**
   * Every third of the lease, renew the leases of all running jobs with one statement; abort a
   * job's handler when its lease is lost or a cancel arrives. One loop per worker, not per job.
   */
  async #renewLoop(stop: AbortSignal): Promise<void> {
    const every = Math.max(10, Math.floor(this.#leaseMs / 3));
    for (;;) {
      try {
        await sleep(every, stop);
      } catch {
        return;
      }
      // A job already told to stop is not renewed, so it cannot keep a lease it no longer uses.
      const held = [...this.#running.values()].map((r) => r.run).filter((run) => run.stop.reason === undefined);
      if (held.length === 0) continue;
      try {
        const renewed = await this.#store.renewAll(held.map((run) => run.lease), this.#leaseMs);
        for (const { lease, stop } of held) {
          const answer = renewed.get(lease.jobId);
          if (answer === undefined) stop.stop('lease-lost');
          else if (answer.cancelRequested) stop.stop('cancelled');
        }
      } catch (err) {
        // A failed renewal is not a lost lease: the next one may succeed before expiry.
        this.#events.error?.(err);
      }
    }
  }
}
