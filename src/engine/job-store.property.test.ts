/**
 * Random walks over every operation of the job store — enqueue, claim by three owners, renew,
 * fenced checkpoint and finish, cancel, lease expiry — with the whole jobs table compared before
 * and after each step: no step may leave a job in an illegal state, move it along a row that
 * jobMachine lacks, or let a stale lease write anything.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../core/clock.ts';
import { isAppError } from '../core/errors.ts';
import type { Database } from '../store/database.ts';
import type { JobTable } from '../store/schema.ts';
import { forEachDialect } from '../../test/support/dialects.ts';
import { type JobEvent, type JobState, jobMachine, jobStates, terminalJobStates } from './job-states.ts';
import { type JobFinish, JobStore, type Lease } from './job-store.ts';

const owners = ['w0', 'w1', 'w2'] as const;
type Owner = (typeof owners)[number];

const kinds = ['a', 'b'] as const;
type Kind = (typeof kinds)[number];

/** A fenced write: a checkpoint, or one of the ways a worker finishes its attempt. */
type FencedWrite =
  | { readonly to: 'checkpoint'; readonly value: number }
  | { readonly to: 'succeeded' }
  | { readonly to: 'queued'; readonly delayMs: number; readonly spendAttempt: boolean }
  | { readonly to: 'failed' }
  | { readonly to: 'cancelled' };

/**
 * `lease` and `job` pick by index (modulo): among every lease handed out so far, stale ones
 * included; among the walk's jobs (cancel) or its jobs under a lease (expire).
 */
type Op =
  | { readonly op: 'enqueue'; readonly kind: Kind; readonly runAtOffsetMs: number; readonly maxAttempts: number }
  | { readonly op: 'claim'; readonly owner: Owner; readonly kinds: readonly Kind[]; readonly limit: number; readonly leaseMs: number }
  | { readonly op: 'renew'; readonly lease: number; readonly leaseMs: number }
  | { readonly op: 'fence'; readonly lease: number; readonly write: FencedWrite }
  | { readonly op: 'cancel'; readonly job: number }
  | { readonly op: 'advance'; readonly ms: number }
  | { readonly op: 'expire'; readonly job: number; readonly pastMs: number };

// Lease lengths, clock steps and delays share a 50 ms grid, and `expire` moves the clock to a
// job's lease_expires_at or 1 ms past it: the instant where claim and cancel must agree the lease is still live.
const leaseMsArb = fc.constantFrom(50, 100, 200);
const pickArb = fc.nat({ max: 15 });

// Checkpoints outnumber finishes so that jobs stay running long enough for leases to run out.
const fencedWriteArb: fc.Arbitrary<FencedWrite> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ to: fc.constant('checkpoint' as const), value: fc.nat({ max: 9 }) }) },
  fc.record({ to: fc.constant('succeeded' as const) }),
  fc.record({ to: fc.constant('queued' as const), delayMs: fc.constantFrom(0, 50, 100), spendAttempt: fc.boolean() }),
  fc.record({ to: fc.constant('failed' as const) }),
  fc.record({ to: fc.constant('cancelled' as const) }),
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('enqueue' as const),
      kind: fc.constantFrom(...kinds),
      runAtOffsetMs: fc.constantFrom(0, -50, 50, 100),
      maxAttempts: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('claim' as const),
      owner: fc.constantFrom(...owners),
      kinds: fc.constantFrom<readonly Kind[]>(['a', 'b'], ['a'], ['b']),
      limit: fc.integer({ min: 0, max: 3 }),
      leaseMs: leaseMsArb,
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('renew' as const), lease: pickArb, leaseMs: leaseMsArb }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('fence' as const), lease: pickArb, write: fencedWriteArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('cancel' as const), job: pickArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.constantFrom(1, 49, 50, 51, 100, 150, 201) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('expire' as const), job: pickArb, pastMs: fc.constantFrom(0, 1) }) },
);

type Snapshot = ReadonlyMap<string, JobTable>;

/** What a walk knows: its jobs, how often each was claimed, and every lease any owner was given, in order. */
interface Model {
  readonly jobIds: string[];
  readonly claims: Map<string, number>;
  readonly leases: Lease[];
}

/** What one step may have done: the rows it may change, the jobMachine events that may explain it, and its own checks. */
interface Expectation {
  readonly touches: readonly string[];
  readonly events: readonly JobEvent[];
  readonly check?: (after: Snapshot) => void;
}

const nothing: Expectation = { touches: [], events: [] };

async function snapshot(database: Database): Promise<Snapshot> {
  const rows = await database.db.selectFrom('jobs').selectAll().execute();
  return new Map(rows.map((row) => [row.id, row]));
}

function row(rows: Snapshot, id: string): JobTable {
  const found = rows.get(id);
  assert.ok(found, `job ${id} vanished`);
  return found;
}

function isTerminal(state: string): boolean {
  return terminalJobStates.includes(state as JobState);
}

function pick<T>(items: readonly T[], index: number): T | undefined {
  return items[index % Math.max(1, items.length)];
}

/** The lease is the job's current one: same fencing token and the job still running. */
function holds(lease: Lease, job: JobTable): boolean {
  return job.state === 'running' && job.fencing_token === lease.fencingToken;
}

function fencedFinish(write: FencedWrite, nowMs: number): JobFinish {
  switch (write.to) {
    case 'checkpoint':
      return { checkpoint: write.value };
    case 'succeeded':
      return { to: 'succeeded', result: 'done' };
    case 'queued':
      return { to: 'queued', runAtMs: nowMs + write.delayMs, error: 'try again', spendAttempt: write.spendAttempt };
    case 'failed':
      return { to: 'failed', error: 'gave up' };
    case 'cancelled':
      return { to: 'cancelled' };
  }
}

function fencedEvents(write: FencedWrite): JobEvent[] {
  switch (write.to) {
    case 'checkpoint':
      return [];
    case 'succeeded':
      return ['complete'];
    case 'queued':
      return [write.spendAttempt ? 'retry' : 'release'];
    case 'failed':
      return ['fail'];
    case 'cancelled':
      return ['cancel'];
  }
}

/** Run one operation, asserting its own answer, and say what it may have changed. */
async function apply(
  store: JobStore,
  database: Database,
  clock: ManualClock,
  model: Model,
  op: Op,
  before: Snapshot,
  step: number,
): Promise<Expectation> {
  const nowMs = clock.nowMs();
  switch (op.op) {
    case 'enqueue': {
      const id = `job${String(model.jobIds.length).padStart(3, '0')}`;
      const runAtMs = nowMs + op.runAtOffsetMs;
      await store.enqueue(op.kind, { step }, { id, runAtMs, maxAttempts: op.maxAttempts });
      model.jobIds.push(id);
      model.claims.set(id, 0);
      return {
        touches: [id],
        events: [],
        check: (after) => {
          const job = row(after, id);
          assert.equal(job.state, 'queued');
          assert.equal(job.run_at, runAtMs);
        },
      };
    }

    case 'claim': {
      const jobs = [...before.values()];
      // A claim first cancels jobs whose cancel was asked and whose worker's lease ran out.
      const swept =
        op.limit > 0
          ? jobs.filter((j) => j.state === 'running' && j.cancel_requested === 1 && (j.lease_expires_at ?? 0) < nowMs).map((j) => j.id)
          : [];
      const due = jobs
        .filter((j) => op.kinds.includes(j.kind as Kind) && !swept.includes(j.id))
        .filter((j) => (j.state === 'queued' && j.run_at <= nowMs) || (j.state === 'running' && (j.lease_expires_at ?? 0) < nowMs))
        .sort((x, y) => x.run_at - y.run_at || (x.id < y.id ? -1 : 1))
        .slice(0, Math.max(0, op.limit))
        .map((j) => j.id);
      const claims = await store.claim(op.owner, op.kinds, op.limit, op.leaseMs);
      const claimed = claims.map((c) => c.job.id);
      assert.deepEqual(
        [...claimed].sort(),
        [...due].sort(),
        `claim at ${nowMs} takes the due jobs, earliest run_at first, never one under a live lease or with an expired cancel request`,
      );
      for (const { job, takeover } of claims) {
        assert.equal(takeover, row(before, job.id).state === 'running', `takeover flag of ${job.id}`);
        assert.equal(job.leaseOwner, op.owner);
        assert.equal(job.leaseExpiresAtMs, nowMs + op.leaseMs);
        model.claims.set(job.id, (model.claims.get(job.id) ?? 0) + 1);
        model.leases.push({ jobId: job.id, owner: op.owner, fencingToken: job.fencingToken });
      }
      return {
        touches: [...claimed, ...swept],
        events: ['claim', 'takeover', 'cancel'],
        check: (after) => {
          for (const id of swept) {
            assert.equal(row(after, id).state, 'cancelled', `cancel-requested ${id} with an expired lease is cancelled, not taken over`);
          }
        },
      };
    }

    case 'renew': {
      const lease = pick(model.leases, op.lease);
      if (lease === undefined) return nothing;
      const job = row(before, lease.jobId);
      const held = holds(lease, job);
      const answer = await store.renew(lease, op.leaseMs);
      assert.equal(answer.held, held, `renew of ${lease.jobId} token ${lease.fencingToken} (current ${job.fencing_token}, ${job.state})`);
      if (!held) return nothing;
      assert.equal(answer.cancelRequested, job.cancel_requested === 1);
      return {
        touches: [lease.jobId],
        events: [],
        check: (after) => assert.equal(row(after, lease.jobId).lease_expires_at, nowMs + op.leaseMs),
      };
    }

    case 'fence': {
      const lease = pick(model.leases, op.lease);
      if (lease === undefined) return nothing;
      const job = row(before, lease.jobId);
      const held = holds(lease, job);
      // The fenced work writes a marker row: it must commit exactly when the lease is held.
      const marker = `${lease.jobId}@${step}`;
      const write = store.fence(
        lease,
        async (trx) => {
          await trx.insertInto('probe_counters').values({ job_id: marker, completions: 1 }).execute();
        },
        fencedFinish(op.write, nowMs),
      );
      if (held) await write;
      else {
        await assert.rejects(
          write,
          (err: unknown) => isAppError(err) && err.code === 'LeaseLost',
          `a write with token ${lease.fencingToken} on ${lease.jobId} (current ${job.fencing_token}, ${job.state}) is refused with LeaseLost`,
        );
      }
      const markers = await database.db.selectFrom('probe_counters').select('job_id').where('job_id', '=', marker).execute();
      assert.equal(markers.length, held ? 1 : 0, `fenced work of ${marker} committed only if the lease was held`);
      if (!held) return nothing;
      // A retry or hand-back of a job whose cancel was asked ends it instead.
      const cancels = op.write.to === 'queued' && job.cancel_requested === 1;
      return {
        touches: [lease.jobId],
        events: cancels ? ['cancel'] : fencedEvents(op.write),
        check: (after) => {
          const updated = row(after, lease.jobId);
          assert.equal(updated.state, op.write.to === 'checkpoint' ? 'running' : cancels ? 'cancelled' : op.write.to);
          if (op.write.to === 'checkpoint') assert.equal(updated.checkpoint, JSON.stringify(op.write.value));
          if (op.write.to === 'queued') {
            assert.equal(updated.run_at, nowMs + op.write.delayMs);
            assert.equal(updated.attempts, op.write.spendAttempt ? job.attempts : job.attempts - 1, 'a release gives the attempt back');
          }
        },
      };
    }

    case 'cancel': {
      const id = pick(model.jobIds, op.job);
      if (id === undefined) return nothing;
      const job = row(before, id);
      if (isTerminal(job.state)) {
        await assert.rejects(
          store.cancel(id),
          (err: unknown) => isAppError(err) && err.code === 'JobStateConflict',
          `cancel of ${job.state} ${id} is refused with JobStateConflict`,
        );
        return nothing;
      }
      const leaseLive = job.state === 'running' && (job.lease_expires_at ?? 0) >= nowMs;
      const cancelled = await store.cancel(id);
      assert.equal(cancelled.state, leaseLive ? 'running' : 'cancelled', 'only a live lease defers a cancel to its worker');
      assert.equal(cancelled.cancelRequested, true);
      return { touches: [id], events: ['cancel'] };
    }

    case 'advance':
      clock.advance(op.ms);
      return nothing;

    case 'expire': {
      const leased = [...before.values()].filter((j) => j.lease_expires_at !== null);
      const expiresAtMs = pick(leased, op.job)?.lease_expires_at ?? nowMs;
      clock.advance(Math.max(0, expiresAtMs + op.pastMs - nowMs));
      return nothing;
    }
  }
}

/** Every check that compares the table before and after one step, and the model with the table. */
function checkStep(model: Model, before: Snapshot, after: Snapshot, expected: Expectation, where: string): void {
  for (const id of before.keys()) row(after, id);
  for (const [id, job] of after) {
    const was = before.get(id);
    if (was === undefined) {
      assert.ok(expected.touches.includes(id), `${where}: job ${id} appeared`);
    } else if (isTerminal(was.state)) {
      assert.deepEqual(job, was, `${where}: terminal job ${id} (${was.state}) changed`);
    } else if (!expected.touches.includes(id)) {
      assert.deepEqual(job, was, `${where}: job ${id} changed though the step was not about it`);
    } else {
      assert.ok(job.fencing_token >= was.fencing_token, `${where}: fencing token of ${id} went down`);
      const claimed = job.fencing_token !== was.fencing_token;
      if (claimed || job.state !== was.state) {
        const explained = expected.events.some(
          (event) => (event === 'claim' || event === 'takeover') === claimed && jobMachine.next(was.state as JobState, event) === job.state,
        );
        const move = `${was.state} -> ${job.state} (token ${was.fencing_token} -> ${job.fencing_token})`;
        assert.ok(explained, `${where}: ${id} went ${move}, no row of jobMachine by ${expected.events.join('/') || 'no event'}`);
      }
    }

    assert.ok(jobStates.includes(job.state as JobState), `${where}: ${id} is in unknown state ${job.state}`);
    if (job.state === 'running') {
      assert.ok(job.lease_owner !== null && job.lease_expires_at !== null, `${where}: running ${id} has no lease`);
    } else {
      assert.equal(job.lease_owner, null, `${where}: ${job.state} ${id} still has lease owner ${job.lease_owner}`);
      assert.equal(job.lease_expires_at, null, `${where}: ${job.state} ${id} still has a lease expiry`);
    }
    const claims = model.claims.get(id) ?? 0;
    assert.equal(job.fencing_token, claims, `${where}: ${id} was claimed ${claims} times, its token is ${job.fencing_token}`);
    assert.ok(job.attempts >= 0 && job.attempts <= claims, `${where}: ${id} counts ${job.attempts} attempts after ${claims} claims`);

    // At most one owner holds a job: exactly one lease ever handed out is current while it runs.
    const holders = model.leases.filter((lease) => lease.jobId === id && holds(lease, job)).map((lease) => lease.owner);
    assert.equal(holders.length, job.state === 'running' ? 1 : 0, `${where}: ${job.state} ${id} is held by ${holders.join(', ') || 'nobody'}`);
    if (holders[0] !== undefined) {
      assert.equal(holders[0], job.lease_owner, `${where}: ${id} is leased to ${job.lease_owner} but held by ${holders[0]}`);
    }
  }
  expected.check?.(after);
}

async function walk(database: Database, ops: readonly Op[]): Promise<void> {
  // One database per dialect: each walk starts from an empty table.
  await database.db.deleteFrom('jobs').execute();
  await database.db.deleteFrom('probe_counters').execute();
  const clock = new ManualClock();
  const store = new JobStore(database, clock);
  const model: Model = { jobIds: [], claims: new Map(), leases: [] };
  let before = await snapshot(database);
  for (const [step, op] of ops.entries()) {
    const expected = await apply(store, database, clock, model, op, before, step);
    const after = await snapshot(database);
    checkStep(model, before, after, expected, `step ${step} ${JSON.stringify(op)}`);
    before = after;
  }
}

forEachDialect('job store under random operations', (ctx) => {
  it('keeps every job in a legal state, on jobMachine rows, with one lease holder and fenced writes', async () => {
    const database = await ctx.open();
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60, size: 'max' }), (ops) => walk(database, ops)),
      { numRuns: 60 },
    );
  });
});
