/**
 * Replication jobs on both dialects without HTTP: the quota at exactly 1,000, one active job per
 * source under racing creates (and in the database itself), and the timed workflows — scheduled
 * start, incremental runs with image retention, expiry and deletion 7 days later — under a ManualClock.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { it } from 'node:test';
import { isAppError } from '../core/errors.ts';
import { forEachDialect } from '../../test/support/dialects.ts';
import { finishedJobRows, insertJobs } from '../../test/support/smc-seed.ts';
import { type SmcStore, openSmcStore } from '../../test/support/smc-store.ts';
import { startReplicationJob, stopReplicationJob } from './replication-job-actions.ts';
import { createReplicationJob, describeReplicationJobs } from './replication-jobs.ts';
import { isoUtc } from './validation.ts';

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;

function rejectsWith(code: string) {
  return (err: unknown): boolean => {
    assert.ok(isAppError(err), String(err));
    assert.equal(err.alibabaCode, code, err.message);
    return true;
  };
}

async function job(store: SmcStore, jobId: string) {
  const page = await describeReplicationJobs(store.ctx(), { jobIds: [jobId] });
  const found = page.items[0];
  assert.ok(found !== undefined, `job ${jobId} exists`);
  return found;
}

const imageJob = { regionId: 'cn-hangzhou', imageName: 'img', systemDiskSize: 20 };

forEachDialect('replication jobs', (dialect) => {
  it('allows 1,000 jobs per account and refuses the 1,001st with QuotaExceeded.ReplicationJob', async () => {
    const store = await openSmcStore(dialect);
    const sourceId = await store.register('quota-source');
    await insertJobs(store.database.db, finishedJobRows(store.accountId, sourceId, 999, store.clock.nowMs()));
    const { jobId } = await createReplicationJob(store.ctx(), { ...imageJob, sourceId, name: 'the-1000th' });
    assert.match(jobId, /^j-/);
    const other = await store.register('quota-source-2');
    await assert.rejects(createReplicationJob(store.ctx(), { ...imageJob, sourceId: other, name: 'the-1001st' }), rejectsWith('QuotaExceeded.ReplicationJob'));
  });

  it('lets only one of many racing creates hold a source, and the database refuses a second active job by itself', async () => {
    const store = await openSmcStore(dialect);
    const sourceId = await store.register('race-source');
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => createReplicationJob(store.ctx(), { ...imageJob, sourceId, name: `race-${i}`, imageName: `race-img-${i}` })));
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
    for (const o of outcomes) if (o.status === 'rejected') rejectsWith('SourceServerState.Invalid')(o.reason);
    const active = await store.database.db.selectFrom('replication_jobs').selectAll().where('source_id', '=', sourceId).executeTakeFirstOrThrow();
    await assert.rejects(store.database.db.insertInto('replication_jobs').values({ ...active, id: 'j-second', name: 'second', state: 'Stopped' }).execute(), /unique|UNIQUE/);
    await store.database.db.insertInto('replication_jobs').values({ ...active, id: 'j-done', name: 'done', state: 'Finished' }).execute();
  });

  it('starts a scheduled job at its time, not before, as a Schedule run', async () => {
    const store = await openSmcStore(dialect);
    const sourceId = await store.register('scheduled-source');
    const at = store.clock.nowMs() + 2 * hourMs;
    const { jobId } = await createReplicationJob(store.ctx(), { ...imageJob, sourceId, scheduledStartTime: isoUtc(at) });
    store.clock.advance(2 * hourMs - 1000);
    await store.settle();
    assert.equal((await job(store, jobId)).status, 'Ready');
    store.clock.advance(1000);
    await store.settle();
    const started = await job(store, jobId);
    assert.deepEqual([started.status, started.businessStatus, started.replicationJobRuns[0]?.type], ['Running', 'Preparing', 'Schedule']);
    await store.heartbeat(sourceId);
    await store.agentRun(sourceId, 'ok');
    await store.settle();
    const done = await job(store, jobId);
    assert.deepEqual([done.status, done.progress], ['Finished', 100]);
    assert.ok(existsSync(store.images.imagePath(done.imageId, 0)));
  });

  it('runs an incremental job every Frequency hours and keeps only MaxNumberOfImageToKeep images', async () => {
    const store = await openSmcStore(dialect);
    const sourceId = await store.register('incremental-source');
    const { jobId } = await createReplicationJob(store.ctx(), { ...imageJob, sourceId, runOnce: false, frequency: 2, maxNumberOfImageToKeep: 2 });
    await startReplicationJob(store.ctx(), jobId);
    const images: string[] = [];
    for (let run = 1; run <= 4; run += 1) {
      await store.agentRun(sourceId, 'ok', Buffer.alloc(1024, run));
      await store.settle();
      const waiting = await job(store, jobId);
      assert.equal(waiting.status, 'Waiting', `after run ${run}`);
      images.push(waiting.imageId);
      store.clock.advance(2 * hourMs);
      await store.heartbeat(sourceId);
      await store.settle();
    }
    const view = await job(store, jobId);
    assert.deepEqual(view.replicationJobRuns.map((r) => r.type), ['Manual', 'Schedule', 'Schedule', 'Schedule', 'Schedule']);
    assert.deepEqual(images.map((id) => existsSync(store.images.imagePath(id, 0))), [false, false, true, true], 'the two newest images stay');
    assert.deepEqual([...readFileSync(store.images.imagePath(images[3] ?? '', 0)).subarray(0, 2)], [4, 4]);
    const names = await store.database.db.selectFrom('smc_images').select('name').where('job_id', '=', jobId).orderBy('created_at').execute();
    // A name taken in the region gets the job id, then the run number; a retired image frees its name.
    assert.deepEqual(names.map((n) => n.name), ['img', `img_${jobId}`, `img_${jobId}_3`, 'img']);
  });

  it('expires a job at ValidTime, ending its run, and deletes it 7 days later', async () => {
    const store = await openSmcStore(dialect);
    const sourceId = await store.register('expiring-source');
    const validMs = store.clock.nowMs() + 7 * dayMs + hourMs;
    const { jobId } = await createReplicationJob(store.ctx(), { ...imageJob, sourceId, validTime: isoUtc(validMs) });
    await startReplicationJob(store.ctx(), jobId);
    store.clock.set(validMs);
    await store.settle();
    const expired = await job(store, jobId);
    assert.deepEqual([expired.status, expired.replicationJobRuns[0]?.endTime !== ''], ['Expired', true]);
    await assert.rejects(startReplicationJob(store.ctx(), jobId), rejectsWith('ReplicationJob.InvalidStatus'));
    await assert.rejects(createReplicationJob(store.ctx(), { ...imageJob, sourceId }), rejectsWith('SourceServerState.Invalid'), 'an Expired job still holds its source');
    store.clock.advance(7 * dayMs - 1000);
    await store.settle();
    assert.equal((await job(store, jobId)).status, 'Expired');
    store.clock.advance(1000);
    await store.settle();
    assert.equal((await describeReplicationJobs(store.ctx(), { jobIds: [jobId] })).totalCount, 0);
    await store.heartbeat(sourceId);
    await createReplicationJob(store.ctx(), { ...imageJob, sourceId, imageName: 'img-after' });
  });

  it('fails a run whose agent went silent with SourceServer.Offline, and Stop ends a syncing run', async () => {
    const store = await openSmcStore(dialect);
    const sourceId = await store.register('silent-source');
    const { jobId } = await createReplicationJob(store.ctx(), { ...imageJob, sourceId });
    await startReplicationJob(store.ctx(), jobId);
    store.clock.advance(31_000);
    await store.settle();
    const failed = await job(store, jobId);
    assert.deepEqual([failed.status, failed.errorCode], ['InError', 'SourceServer.Offline']);
    await store.heartbeat(sourceId);
    await startReplicationJob(store.ctx(), jobId);
    await stopReplicationJob(store.ctx(), jobId);
    assert.equal((await job(store, jobId)).status, 'Stopped');
    assert.equal(await store.agentRun(sourceId, 'ok'), undefined, 'the stopped run\'s command is cancelled');
  });

  it('lists cross-zone jobs (JobType 2) beside replication jobs, newest first across both, with their filters', async () => {
    const store = await openSmcStore(dialect);
    const older = await createReplicationJob(store.ctx(), { ...imageJob, sourceId: await store.register('listed-1'), name: 'older', imageName: 'older' });
    store.clock.advance(1000);
    const plan = { instanceId: 'i-1', origin: 'smc-cross-zone', regionId: 'cn-hangzhou', vpcId: 'vpc-1', vSwitchId: 'vsw-1', instanceType: 'ecs.g7.large', attributes: {} };
    const at = store.clock.nowMs();
    await store.database.db
      .insertInto('instance_moves')
      .values({
        id: 'j-crosszone1', account_id: store.accountId, instance_id: 'i-1', origin: 'smc-cross-zone', job_id: 'job-x', state: 'running', phase: 'copying', progress_bp: 2500,
        plan: JSON.stringify(plan), from_host_id: 'host-1', to_host_id: null, claim_id: null, was_running: 1, error_code: null, error_message: null, result: null,
        created_at: at, started_at: at, finished_at: null, updated_at: at,
      })
      .execute();
    store.clock.advance(1000);
    const newer = await createReplicationJob(store.ctx(), { ...imageJob, sourceId: await store.register('listed-2'), name: 'newer', imageName: 'newer' });
    const all = await describeReplicationJobs(store.ctx(), { pageSize: 10 });
    assert.deepEqual(all.items.map((j) => [j.jobId, j.jobType]), [[newer.jobId, 0], ['j-crosszone1', 2], [older.jobId, 0]]);
    assert.equal(all.totalCount, 3);
    const second = await describeReplicationJobs(store.ctx(), { pageSize: 1, pageNumber: 2 });
    assert.deepEqual([second.totalCount, second.items.map((j) => j.jobId)], [3, ['j-crosszone1']]);
    assert.deepEqual((await describeReplicationJobs(store.ctx(), { jobType: 2 })).items.map((j) => [j.jobId, j.status, j.progress]), [['j-crosszone1', 'Running', 25]]);
    assert.equal((await describeReplicationJobs(store.ctx(), { status: 'Running' })).totalCount, 1);
    assert.equal((await describeReplicationJobs(store.ctx(), { name: 'newer' })).totalCount, 1, 'a name filter leaves out nameless cross-zone jobs');
    assert.equal((await describeReplicationJobs(store.ctx(), { instanceIds: ['i-1'] })).totalCount, 1);
    assert.equal((await describeReplicationJobs(store.ctx(), { regionId: 'cn-beijing' })).totalCount, 0);
  });
});