/**
 * Crash tests with real processes: `ferry serve` workers are killed with SIGKILL or frozen with
 * SIGSTOP mid-run. Every probe job must complete exactly once: probe_counters holds, per job, how
 * many times its effect committed, and it must be 1 for all of them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sleep } from '../src/core/clock.ts';
import { JobStore } from '../src/engine/job-store.ts';
import { type Database, openDatabase } from '../src/store/database.ts';
import { tempDir } from './support/dialects.ts';
import { type FerryServer, metricSum, startFerry } from './support/ferry-process.ts';
import { freshPostgresDatabase } from './support/postgres.ts';

const jobCount = 200;
const leaseMs = 1_500;
const workerFlags = ['--lease-ms', String(leaseMs), '--poll-ms', '50', '--worker-concurrency', '4'];

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function enqueueProbes(database: Database): Promise<string[]> {
  const store = new JobStore(database, { nowMs: () => Date.now() });
  const ids: string[] = [];
  for (let i = 0; i < jobCount; i += 1) ids.push((await store.enqueue('probe', { workMs: 240, steps: 3 }, { maxAttempts: 10 })).id);
  return ids;
}

async function runningOwnedBy(database: Database, owner: string): Promise<string[]> {
  const rows = await database.db.selectFrom('jobs').select('id').where('state', '=', 'running').where('lease_owner', '=', owner).execute();
  return rows.map((r) => r.id);
}

async function assertEachCompletedOnce(database: Database, ids: string[]): Promise<void> {
  await waitUntil('all jobs to succeed', async () => {
    const open = await database.db.selectFrom('jobs').select('id').where('state', '!=', 'succeeded').execute();
    return open.length === 0;
  });
  const counters = await database.db.selectFrom('probe_counters').selectAll().execute();
  const byJob = new Map(counters.map((c) => [c.job_id, Number(c.completions)]));
  assert.equal(byJob.size, ids.length, 'every job committed its effect');
  const twice = ids.filter((id) => byJob.get(id) !== 1);
  assert.deepEqual(twice, [], 'no job committed its effect more or less than once');
}

describe('crash: 3 ferry serve workers on PostgreSQL', () => {
  const servers: FerryServer[] = [];
  let database: Database | undefined;
  after(async () => {
    for (const s of servers) s.kill('SIGKILL');
    await database?.close();
  });

  it('completes every job exactly once when a worker is SIGKILLed and a stale one wakes up late', async () => {
    const url = await freshPostgresDatabase('crash');
    const env = { FERRY_MASTER_KEY: randomBytes(32).toString('hex'), FERRY_PG_IDLE_TX_TIMEOUT_MS: '2000' };
    database = await openDatabase({ url });
    for (let i = 0; i < 3; i += 1) servers.push(await startFerry({ data: tempDir(), db: url, extra: workerFlags, env }));
    const [victim, sleeper, survivor] = servers as [FerryServer, FerryServer, FerryServer];
    const victimOwner = await victim.owner();
    const sleeperOwner = await sleeper.owner();

    const ids = await enqueueProbes(database);
    await waitUntil('the victim to hold jobs', async () => (await runningOwnedBy(database!, victimOwner)).length > 0);
    victim.kill('SIGKILL');
    await victim.exited;
    // Read after the kill: a job the victim finished between the check and the kill is not one it lost.
    const killedJobs = await runningOwnedBy(database, victimOwner);
    assert.ok(killedJobs.length > 0, 'the victim died holding jobs');

    let frozenJobs: string[] = [];
    await waitUntil('the sleeper to hold jobs', async () => (frozenJobs = await runningOwnedBy(database!, sleeperOwner)).length > 0);
    sleeper.kill('SIGSTOP');
    // Frozen past its lease: the survivor takes its jobs over and bumps their fencing tokens.
    await waitUntil('the frozen jobs to be taken over', async () => {
      const rows = await database!.db.selectFrom('jobs').select(['lease_owner', 'state']).where('id', 'in', frozenJobs).execute();
      return rows.every((r) => r.state === 'succeeded' || r.lease_owner !== sleeperOwner);
    });
    sleeper.kill('SIGCONT');

    await assertEachCompletedOnce(database, ids);
    const killed = await database.db.selectFrom('jobs').select(['id', 'attempts']).where('id', 'in', killedJobs).execute();
    assert.ok(killed.every((j) => Number(j.attempts) >= 2), 'the killed worker\'s jobs ran again elsewhere');
    const takeovers = (await metricSum(survivor.url, 'ferry_job_lease_takeovers_total')) + (await metricSum(sleeper.url, 'ferry_job_lease_takeovers_total'));
    assert.ok(takeovers >= killedJobs.length, `takeovers ${takeovers} cover the ${killedJobs.length} jobs the killed worker held`);
    // The sleeper woke holding stale leases; each of its late writes was refused by the fencing token.
    await waitUntil('the sleeper to notice its lost leases', async () => (await metricSum(sleeper.url, 'ferry_jobs_finished_total', 'outcome="lost"')) >= 1);
    const owners = await database.db.selectFrom('jobs').select('lease_owner').where('lease_owner', 'is not', null).execute();
    assert.equal(owners.length, 0, 'no job is left leased');

    for (const s of [sleeper, survivor]) assert.equal(await s.stop(), 0, 'graceful stop exits 0');
  });
});

describe('crash: one ferry serve worker on SQLite, killed and restarted', () => {
  const servers: FerryServer[] = [];
  let database: Database | undefined;
  after(async () => {
    for (const s of servers) s.kill('SIGKILL');
    await database?.close();
  });

  it('resumes from checkpoints after restart and completes every job exactly once', async () => {
    const data = tempDir();
    database = await openDatabase({ url: `sqlite:${join(data, 'ferry.db')}` });
    const ids = await enqueueProbes(database);
    const first = await startFerry({ data, extra: workerFlags });
    servers.push(first);
    const owner = await first.owner();
    let held: string[] = [];
    await waitUntil('the worker to checkpoint running jobs', async () => {
      held = await runningOwnedBy(database!, owner);
      const withCheckpoint = await database!.db.selectFrom('jobs').select('id').where('id', 'in', held.length > 0 ? held : ['-']).where('checkpoint', 'is not', null).execute();
      return withCheckpoint.length > 0;
    });
    first.kill('SIGKILL');
    await first.exited;

    const second = await startFerry({ data, extra: workerFlags });
    servers.push(second);
    await assertEachCompletedOnce(database, ids);
    const resumed = await database.db.selectFrom('jobs').select(['result', 'attempts']).where('id', 'in', held).execute();
    assert.ok(resumed.every((j) => Number(j.attempts) >= 2), 'jobs held at the kill ran again');
    assert.ok(
      resumed.some((j) => (JSON.parse(j.result ?? '{}') as { resumedFrom?: number }).resumedFrom! > 0),
      'at least one job resumed from its checkpoint instead of starting over',
    );
    assert.ok((await metricSum(second.url, 'ferry_job_lease_takeovers_total')) >= held.length);
    assert.equal(await second.stop(), 0);
  });
});
