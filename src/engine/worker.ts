import { hostname } from 'node:os';
import { type Clock, sleep, systemClock } from '../core/clock.ts';
import { AppError, isAppError } from '../core/errors.ts';
import { randomId } from '../core/ids.ts';
import { type BackoffPolicy, backoffDelayMs, defaultBackoff } from './backoff.ts';
import type { JobFinish, JobRecord, JobStore, Lease, Trx } from './job-store.ts';

/** What a handler sees of its job, and the only way it may write while holding the lease. */
export interface JobContext {
  readonly job: JobRecord;
  /** Aborts on cancel, on lease loss and on shutdown; `signal.reason` says which. */
  readonly signal: AbortSignal;
  /** Save progress; a later attempt (after a crash) starts from `job.checkpoint`. */
  checkpoint(value: unknown): Promise<void>;
  /**
   * Run writes in a transaction guarded by the fencing token. With `complete`, the job is marked
   * succeeded in that same transaction, so its effects and its completion commit together.
   */
  fenced<T>(work: (trx: Trx) => Promise<T>, complete?: { result: unknown }): Promise<T>;
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
  /** Handlers running at once in this worker. */
  readonly concurrency?: number;
  readonly backoff?: BackoffPolicy;
  readonly clock?: Clock;
  readonly events?: WorkerEvents;
}

type StopReason = 'cancelled' | 'lease-lost' | 'shutdown';

class JobAbort extends Error {
  constructor(readonly reason: StopReason) {
    super(`job stopped: ${reason}`);
    this.name = 'AbortError';
  }
}

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
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  #loop: Promise<void> | undefined;
  #stopping = new AbortController();
  #wake: (() => void) | undefined;

  constructor(store: JobStore, handlers: ReadonlyMap<string, JobHandler>, options: WorkerOptions = {}) {
    this.#store = store;
    this.#handlers = handlers;
    this.owner = options.owner ?? defaultOwner();
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#pollMs = options.pollMs ?? 500;
    this.#concurrency = options.concurrency ?? 4;
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
    this.#loop = this.#claimLoop();
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
    const timer = sleep(graceMs).then(() => 'timeout' as const);
    if ((await Promise.race([all.then(() => 'done' as const), timer])) === 'timeout') {
      for (const { controller } of this.#running.values()) controller.abort(new JobAbort('shutdown'));
      await all;
    }
  }

  async #claimLoop(): Promise<void> {
    const kinds = [...this.#handlers.keys()];
    while (!this.#stopping.signal.aborted) {
      const free = this.#concurrency - this.#running.size;
      let claimed = 0;
      if (free > 0) {
        try {
          const claims = await this.#store.claim(this.owner, kinds, free, this.#leaseMs);
          claimed = claims.length;
          for (const { job, takeover } of claims) this.#launch(job, takeover);
        } catch (err) {
          this.#events.error?.(err);
        }
      }
      // Busy: go again at once while there is room; idle or full: wait for a poke or a slot.
      if (claimed > 0 && this.#running.size < this.#concurrency) continue;
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

  #launch(job: JobRecord, takeover: boolean): void {
    const controller = new AbortController();
    const done = this.#run(job, controller).finally(() => {
      this.#running.delete(job.id);
      this.#wake?.();
    });
    this.#running.set(job.id, { controller, done });
    this.#events.claimed?.(job, takeover);
  }

  async #run(job: JobRecord, controller: AbortController): Promise<void> {
    const lease: Lease = { jobId: job.id, owner: this.owner, fencingToken: job.fencingToken };
    const handler = this.#handlers.get(job.kind);
    let finished = false;
    const finish = async (how: JobFinish): Promise<void> => {
      await this.#store.fence(lease, () => Promise.resolve(), how);
      finished = true;
    };
    const renewer = this.#renewLoop(lease, controller);
    try {
      if (handler === undefined) {
        await finish({ to: 'failed', error: new AppError('UnknownJobKind', { kind: job.kind }).message });
        this.#events.finished?.(job, 'failed');
        return;
      }
      if (job.attempts > job.maxAttempts) {
        await finish({ to: 'failed', error: `gave up after ${job.maxAttempts} attempts (last worker lost its lease)` });
        this.#events.finished?.(job, 'failed');
        return;
      }
      const ctx: JobContext = {
        job,
        signal: controller.signal,
        checkpoint: (value) => this.#store.fence(lease, () => Promise.resolve(), { checkpoint: value }),
        fenced: async (work, complete) => {
          const out = await this.#store.fence(lease, work, complete === undefined ? undefined : { to: 'succeeded', result: complete.result });
          if (complete !== undefined) finished = true;
          return out;
        },
      };
      const result = await handler(ctx);
      if (!finished) await finish({ to: 'succeeded', result });
      this.#events.finished?.(job, 'succeeded');
    } catch (err) {
      await this.#settleFailure(job, lease, controller.signal, err, finished).catch((settleErr: unknown) => {
        this.#events.error?.(settleErr, job.id);
      });
    } finally {
      controller.abort(new JobAbort('shutdown'));
      await renewer;
    }
  }

  async #settleFailure(job: JobRecord, lease: Lease, signal: AbortSignal, err: unknown, finished: boolean): Promise<void> {
    const reason: unknown = signal.aborted ? signal.reason : undefined;
    const lost = (isAppError(err) && err.code === 'LeaseLost') || (reason instanceof JobAbort && reason.reason === 'lease-lost');
    if (lost || finished) {
      this.#events.finished?.(job, 'lost');
      return;
    }
    if (reason instanceof JobAbort && reason.reason === 'cancelled') {
      await this.#store.fence(lease, () => Promise.resolve(), { to: 'cancelled' });
      this.#events.finished?.(job, 'cancelled');
      return;
    }
    if (reason instanceof JobAbort && reason.reason === 'shutdown') {
      await this.#store.fence(lease, () => Promise.resolve(), {
        to: 'queued',
        runAtMs: this.#clock.nowMs(),
        error: 'released on shutdown',
        spendAttempt: false,
      });
      this.#events.finished?.(job, 'queued');
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    const permanent = err instanceof PermanentJobError || (isAppError(err) && err.httpStatus < 500);
    if (permanent || job.attempts >= job.maxAttempts) {
      await this.#store.fence(lease, () => Promise.resolve(), { to: 'failed', error: message });
      this.#events.finished?.(job, 'failed');
      return;
    }
    const runAtMs = this.#clock.nowMs() + backoffDelayMs(this.#backoff, job.attempts);
    await this.#store.fence(lease, () => Promise.resolve(), { to: 'queued', runAtMs, error: message, spendAttempt: true });
    this.#events.finished?.(job, 'queued');
  }

  /** Renew every third of the lease; abort the handler when the lease is lost or a cancel arrives. */
  async #renewLoop(lease: Lease, controller: AbortController): Promise<void> {
    const every = Math.max(10, Math.floor(this.#leaseMs / 3));
    while (!controller.signal.aborted) {
      try {
        await sleep(every, controller.signal);
      } catch {
        return;
      }
      try {
        const { held, cancelRequested } = await this.#store.renew(lease, this.#leaseMs);
        if (!held) controller.abort(new JobAbort('lease-lost'));
        else if (cancelRequested) controller.abort(new JobAbort('cancelled'));
      } catch (err) {
        // A failed renewal is not a lost lease: the next one may succeed before expiry.
        this.#events.error?.(err, lease.jobId);
      }
    }
  }
}
