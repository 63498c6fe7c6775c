import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ManualClock, sleep } from '../core/clock.ts';
import { isAppError } from '../core/errors.ts';
import { forEachDialect } from '../../test/support/dialects.ts';
import { builtinHandlers } from './builtin-handlers.ts';
import { JobStore } from './job-store.ts';
import { type JobHandler, PermanentJobError, Worker } from './worker.ts';

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(20);
  }
}

async function settled(store: JobStore, id: string): Promise<NonNullable<Awaited<ReturnType<JobStore['get']>>>> {
  return waitFor(async () => {
    const job = await store.get(id);
    return job !== undefined && ['succeeded', 'failed', 'cancelled'].includes(job.state) ? job : undefined;
  });
}

const fast = { leaseMs: 300, pollMs: 20, backoff: { baseMs: 10, maxMs: 50, jitter: 0 } } as const;

forEachDialect('job engine', (ctx) => {
  it('runs a probe job to success, once, with its result stored', async () => {
    const db = await ctx.open();
    const store = new JobStore(db, { nowMs: () => Date.now() });
    const worker = new Worker(store, builtinHandlers, fast);
    worker.start();
    try {
      const job = await store.enqueue('probe', { workMs: 30, steps: 3 });
      const done = await settled(store, job.id);
      assert.equal(done.state, 'succeeded');
      assert.deepEqual(done.result, { steps: 3, resumedFrom: 0 });
      assert.equal(done.checkpoint, 3);
      const counter = await db.db.selectFrom('probe_counters').selectAll().where('job_id', '=', job.id).executeTakeFirstOrThrow();
      assert.equal(Number(counter.completions), 1);
    } finally {
      await worker.stop();
    }
  });

  it('retries a failing job with backoff, then fails it after max attempts', async () => {
    const database = await ctx.open();
    const store = new JobStore(database, { nowMs: () => Date.now() });
    let calls = 0;
    const flaky: JobHandler = () => {
      calls += 1;
      return calls < 3 ? Promise.reject(new Error(`boom ${calls}`)) : Promise.resolve('ok');
    };
    const broken: JobHandler = () => Promise.reject(new Error('always'));
    const worker = new Worker(store, new Map([['flaky', flaky], ['broken', broken]]), fast);
    worker.start();
    try {
      const a = await store.enqueue('flaky', {}, { maxAttempts: 5 });
      const b = await store.enqueue('broken', {}, { maxAttempts: 3 });
      const doneA = await settled(store, a.id);
      assert.equal(doneA.state, 'succeeded');
      assert.equal(doneA.attempts, 3);
      assert.equal(doneA.result, 'ok');
      const doneB = await settled(store, b.id);
      assert.equal(doneB.state, 'failed');
      assert.equal(doneB.attempts, 3);
      assert.equal(doneB.error, 'always');
    } finally {
      await worker.stop();
    }
  });

  it('a fenced write that saves a checkpoint commits it with the writes, and the retry starts from it', async () => {
    const database = await ctx.open();
    const store = new JobStore(database, { nowMs: () => Date.now() });
    const seen: unknown[] = [];
    const twoStep: JobHandler = async (job) => {
      seen.push(job.job.checkpoint);
      if (job.job.checkpoint === null) {
        await job.fenced(async (trx) => {
          await trx.insertInto('probe_counters').values({ job_id: job.job.id, completions: 0 }).execute();
        }, { checkpoint: { step: 1 } });
        throw new Error('crash after step 1');
      }
      return 'done';
    };
    const worker = new Worker(store, new Map([['two-step', twoStep]]), fast);
    worker.start();
    try {
      const job = await store.enqueue('two-step', {}, { maxAttempts: 3 });
      const done = await settled(store, job.id);
      assert.equal(done.state, 'succeeded');
      assert.deepEqual(seen, [null, { step: 1 }]);
      assert.deepEqual(done.checkpoint, { step: 1 });
      const counter = await database.db.selectFrom('probe_counters').selectAll().where('job_id', '=', job.id).executeTakeFirst();
      assert.notEqual(counter, undefined, 'the write made with the checkpoint is committed');
    } finally {
      await worker.stop();
    }
  });

  it('cancelMany ends queued jobs at once, asks a running one to stop, and leaves a finished one as it was', async () => {
    const database = await ctx.open();
    const store = new JobStore(database, { nowMs: () => Date.now() });
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const worker = new Worker(store, new Map<string, JobHandler>([['hold', async (job) => Promise.race([held, new Promise((_, reject) => job.signal.addEventListener('abort', () => reject(job.signal.reason as Error)))])], ['quick', () => Promise.resolve('ok')]]), fast);
    worker.start();
    try {
      const finished = await store.enqueue('quick', {});
      const running = await store.enqueue('hold', {});
      assert.equal((await settled(store, finished.id)).state, 'succeeded');
      await waitFor(async () => ((await store.get(running.id))?.state === 'running' ? true : undefined));
      const later = await store.enqueue('quick', {}, { runAtMs: Date.now() + 3_600_000 });
      await database.db.transaction().execute((trx) => store.cancelMany([finished.id, running.id, later.id], trx));
      assert.equal((await store.get(later.id))?.state, 'cancelled');
      assert.equal((await store.get(finished.id))?.state, 'succeeded');
      assert.equal((await settled(store, running.id)).state, 'cancelled', 'the running job is stopped by its worker');
    } finally {
      release();
      await worker.stop();
    }
  });

  it('fails at once on a permanent error', async () => {
    const store = new JobStore(await ctx.open(), { nowMs: () => Date.now() });
    const worker = new Worker(store, new Map([['bad', () => Promise.reject(new PermanentJobError('bad input'))]]), fast);
    worker.start();
    try {
      const job = await store.enqueue('bad', {}, { maxAttempts: 5 });
      const done = await settled(store, job.id);
      assert.equal(done.state, 'failed');
      assert.equal(done.attempts, 1);
    } finally {
      await worker.stop();
    }
  });

  it('does not start a scheduled job before its run_at', async () => {
    const clock = new ManualClock(Date.now());
    const store = new JobStore(await ctx.open(), clock);
    const worker = new Worker(store, builtinHandlers, { ...fast, clock });
    worker.start();
    try {
      const job = await store.enqueue('noop', {}, { runAtMs: clock.nowMs() + 60_000 });
      await sleep(150);
      assert.equal((await store.require(job.id)).state, 'queued');
      clock.advance(60_001);
      worker.poke();
      assert.equal((await settled(store, job.id)).state, 'succeeded');
    } finally {
      await worker.stop();
    }
  });

  it('delivers cancellation to the running handler as an AbortSignal', async () => {
    const store = new JobStore(await ctx.open(), { nowMs: () => Date.now() });
    let sawAbort = false;
    const slow: JobHandler = async ({ signal }) => {
      try {
        await sleep(30_000, signal);
      } catch (err) {
        sawAbort = signal.aborted;
        throw err;
      }
    };
    const worker = new Worker(store, new Map([['slow', slow]]), { ...fast, leaseMs: 150 });
    worker.start();
    try {
      const job = await store.enqueue('slow', {});
      await waitFor(async () => ((await store.require(job.id)).state === 'running' ? true : undefined));
      const requested = await store.cancel(job.id);
      assert.equal(requested.cancelRequested, true);
      const done = await settled(store, job.id);
      assert.equal(done.state, 'cancelled');
      assert.equal(sawAbort, true);
      // A finished job cannot be cancelled again.
      await assert.rejects(store.cancel(job.id), (err) => isAppError(err) && err.code === 'JobStateConflict');
    } finally {
      await worker.stop();
    }
  });

  it('ends a job cancelled when its handler fails after the cancel was asked, instead of retrying it', async () => {
    const store = new JobStore(await ctx.open(), { nowMs: () => Date.now() });
    let runs = 0;
    let release: (() => void) | undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // The handler ignores its signal and fails with a retryable error once the cancel is recorded:
    // the renew loop (every lease/3) has not yet told it, so only the failure path can honour it.
    const stubborn: JobHandler = async () => {
      runs += 1;
      await gate;
      throw new Error('transient');
    };
    const worker = new Worker(store, new Map([['stubborn', stubborn]]), { ...fast, leaseMs: 60_000 });
    worker.start();
    try {
      const job = await store.enqueue('stubborn', {}, { maxAttempts: 5 });
      await waitFor(() => Promise.resolve(runs === 1 ? true : undefined));
      assert.equal((await store.cancel(job.id)).cancelRequested, true);
      release?.();
      const done = await settled(store, job.id);
      assert.equal(done.state, 'cancelled');
      assert.equal(runs, 1, 'a cancelled job must not run again');
    } finally {
      await worker.stop();
    }
  });

  it('cancels a queued job without running it', async () => {
    const store = new JobStore(await ctx.open(), { nowMs: () => Date.now() });
    const job = await store.enqueue('probe', {}, { runAtMs: Date.now() + 60_000 });
    assert.equal((await store.cancel(job.id)).state, 'cancelled');
  });

  it('refuses every write of a worker whose lease was taken over (fencing token)', async () => {
    const clock = new ManualClock(Date.now());
    const database = await ctx.open();
    const store = new JobStore(database, clock);
    const job = await store.enqueue('probe', {});
    const [first] = await store.claim('worker-a', ['probe'], 1, 1_000);
    assert.ok(first);
    assert.equal(first.takeover, false);
    const leaseA = { jobId: job.id, owner: 'worker-a', fencingToken: first.job.fencingToken };
    await store.fence(leaseA, () => Promise.resolve(), { checkpoint: 'a-1' });

    clock.advance(1_001);
    const [second] = await store.claim('worker-b', ['probe'], 1, 1_000);
    assert.ok(second);
    assert.equal(second.takeover, true);
    assert.equal(second.job.fencingToken, first.job.fencingToken + 1);
    assert.equal(second.job.checkpoint, 'a-1', 'the taker sees the last checkpoint');

    const stale = (err: unknown): boolean => isAppError(err) && err.code === 'LeaseLost';
    await assert.rejects(store.fence(leaseA, () => Promise.resolve(), { checkpoint: 'a-2' }), stale);
    await assert.rejects(store.fence(leaseA, () => Promise.resolve(), { to: 'succeeded', result: 'from a' }), stale);
    await assert.rejects(
      store.fence(leaseA, (trx) => trx.insertInto('probe_counters').values({ job_id: job.id, completions: 99 }).execute()),
      stale,
    );
    assert.deepEqual((await store.renew(leaseA, 1_000)).held, false);

    const after = await store.require(job.id);
    assert.equal(after.checkpoint, 'a-1');
    assert.equal(after.leaseOwner, 'worker-b');
    const rows = await database.db.selectFrom('probe_counters').selectAll().execute();
    assert.equal(rows.length, 0, 'the stale transaction wrote nothing');
  });

  it('resumes from the last checkpoint after the lease holder vanished', async () => {
    const clock = new ManualClock(Date.now());
    const store = new JobStore(await ctx.open(), clock);
    const job = await store.enqueue('probe', { steps: 5 });
    const [claim] = await store.claim('crashed', ['probe'], 1, 100);
    assert.ok(claim);
    const lease = { jobId: job.id, owner: 'crashed', fencingToken: claim.job.fencingToken };
    await store.fence(lease, () => Promise.resolve(), { checkpoint: 2 });
    clock.advance(101);
    const worker = new Worker(store, builtinHandlers, { ...fast, clock });
    worker.start();
    try {
      const done = await settled(store, job.id);
      assert.equal(done.state, 'succeeded');
      assert.deepEqual(done.result, { steps: 5, resumedFrom: 2 });
      assert.equal(done.attempts, 2);
    } finally {
      await worker.stop();
    }
  });

  it('hands running jobs back on graceful stop without spending an attempt', async () => {
    const store = new JobStore(await ctx.open(), { nowMs: () => Date.now() });
    const forever: JobHandler = ({ signal }) => sleep(60_000, signal);
    const worker = new Worker(store, new Map([['forever', forever]]), fast);
    worker.start();
    const job = await store.enqueue('forever', {});
    await waitFor(async () => ((await store.require(job.id)).state === 'running' ? true : undefined));
    await worker.stop(50);
    const after = await store.require(job.id);
    assert.equal(after.state, 'queued');
    assert.equal(after.attempts, 0);
    assert.equal(after.leaseOwner, null);
  });

  it('several workers share the jobs and each runs exactly once', async () => {
    const database = await ctx.open();
    const store = new JobStore(database, { nowMs: () => Date.now() });
    const workers = [0, 1, 2].map((i) => new Worker(store, builtinHandlers, { ...fast, owner: `w${i}`, concurrency: 3 }));
    const ids: string[] = [];
    for (let i = 0; i < 60; i += 1) ids.push((await store.enqueue('probe', { workMs: 5 })).id);
    for (const w of workers) w.start();
    try {
      await waitFor(async () => {
        const rows = await database.db.selectFrom('jobs').select('state').where('state', '!=', 'succeeded').execute();
        return rows.length === 0 ? true : undefined;
      }, 30_000);
      const counters = await database.db.selectFrom('probe_counters').selectAll().execute();
      assert.equal(counters.length, 60);
      assert.ok(counters.every((c) => Number(c.completions) === 1));
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
});
