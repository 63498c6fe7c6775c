import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { type TestContext, it } from 'node:test';
import { systemClock } from '../core/clock.ts';
import { JobStore } from '../engine/job-store.ts';
import { type JobHandler, Worker } from '../engine/worker.ts';
import { type FleetSpec, SimComputeDriver, applyFleet, contentDigest, createSimFaults, showInstance } from '../fleet/index.ts';
import type { Database } from '../store/database.ts';
import { forEachDialect, tempDir } from '../../test/support/dialects.ts';
import { assertCapacityCountedOnce, eventually } from '../../test/support/moves.ts';
import { type InstanceMoveView, getInstanceMove, instanceMoveJobKind, startInstanceMove } from './instance-move.ts';
import { instanceMoveHandler } from './instance-move-run.ts';
import type { ServiceContext } from './service-context.ts';

const mib = 1024 ** 2;

const fleet: FleetSpec = {
  regions: [
    {
      id: 'r1',
      zones: [
        {
          id: 'z1',
          vswitches: [{ id: 'vsw-1', vpcId: 'vpc-1', cidr: '10.0.1.0/24' }],
          hosts: [
            { id: 'h1', vcpus: 16, memoryGiB: 64, numaNodes: 2 },
            { id: 'h4', vcpus: 16, memoryGiB: 64, numaNodes: 2 },
          ],
        },
        {
          id: 'z2',
          vswitches: [{ id: 'vsw-2', vpcId: 'vpc-1', cidr: '10.0.2.0/24' }],
          hosts: [
            { id: 'h2', vcpus: 16, memoryGiB: 64, numaNodes: 2 },
          ],
        },
      ],
    },
  ],
  instanceTypes: [
    { id: 'ecs.g7.large', family: 'ecs.g7', vcpus: 2, memoryGiB: 8 },
    { id: 'ecs.g7.xlarge', family: 'ecs.g7', vcpus: 4, memoryGiB: 16 },
  ],
  instances: [
    {
      id: 'i-run',
      host: 'h1',
      type: 'ecs.g7.large',
      vswitch: 'vsw-1',
      status: 'Running',
      disks: [
        { id: 'd-run-sys', kind: 'system', category: 'cloud_ssd', sizeGiB: 1, fillMiB: 8 },
        { id: 'd-run-data', kind: 'data', category: 'cloud_ssd', sizeGiB: 1, fillMiB: 4 },
      ],
    },
    {
      id: 'i-stop',
      host: 'h1',
      type: 'ecs.g7.large',
      vswitch: 'vsw-1',
      status: 'Stopped',
      disks: [
        { id: 'd-stop-sys', kind: 'system', category: 'cloud_essd', sizeGiB: 1, fillMiB: 8 },
        { id: 'd-stop-data', kind: 'data', category: 'cloud_essd', sizeGiB: 1, fillMiB: 4 },
      ],
    },
  ],
};

forEachDialect('instance move workflow', (dialect) => {
  /** A fleet, a worker running instance moves (stopped when the test ends) and the disks' digests. */
  async function setup(
    t: TestContext,
    wrap: (handler: JobHandler) => JobHandler = (handler) => handler,
  ): Promise<{ database: Database; driver: SimComputeDriver; ctx: ServiceContext; worker: Worker; digests: Map<string, string> }> {
    const dataDir = tempDir('ferry-move-');
    const database = await dialect.open();
    const driver = new SimComputeDriver({ dataDir, faults: createSimFaults(), checkpointEveryChunks: 1, chunkBytes: mib });
    await applyFleet(database, driver, fleet);
    const jobs = new JobStore(database, systemClock);
    const worker = new Worker(jobs, new Map([[instanceMoveJobKind, wrap(instanceMoveHandler({ database, clock: systemClock, driver }))]]), {
      leaseMs: 2000,
      pollMs: 20,
      backoff: { baseMs: 20, maxMs: 100, jitter: 0 },
    });
    worker.start();
    t.after(() => worker.stop());
    const account = await database.db.selectFrom('accounts').select('id').where('name', '=', 'default').executeTakeFirstOrThrow();
    const digests = new Map<string, string>();
    for (const id of ['i-run', 'i-stop']) for (const disk of (await showInstance(database, id)).disks) digests.set(disk.id, await contentDigest(disk.path));
    return { database, driver, ctx: { database, clock: systemClock, jobs, accountId: account.id, requestId: 'test', dataDir }, worker, digests };
  }

  async function finished(ctx: ServiceContext, moveId: string): Promise<InstanceMoveView> {
    return eventually(async () => {
      const view = await getInstanceMove(ctx, moveId);
      return view?.state === 'succeeded' || view?.state === 'failed' ? view : undefined;
    }, `move ${moveId}`, 20_000);
  }

  it('moves a running instance across zones with a new type and disk level; it ends running there with the same bytes', async (t) => {
    const { database, driver, ctx, digests } = await setup(t);
    const started = await startInstanceMove(ctx, {
      instanceId: 'i-run',
      origin: 'test',
      targetZoneId: 'z2',
      targetInstanceType: 'ecs.g7.xlarge',
      diskChanges: [{ diskId: 'd-run-sys', category: 'cloud_essd', performanceLevel: 'PL2' }],
    });
    assert.equal(started.state, 'queued');
    assert.equal(started.plan.vSwitchId, 'vsw-2', 'the VPC’s vSwitch in the target zone');
    const done = await finished(ctx, started.moveId);
    assert.equal(done.state, 'succeeded', done.errorMessage ?? '');
    assert.equal(done.progressPercent, 100);
    assert.equal(done.wasRunning, true);
    const shown = await showInstance(database, 'i-run');
    assert.equal(shown.zoneId, 'z2');
    assert.equal(shown.status, 'Running');
    assert.equal(shown.instanceType, 'ecs.g7.xlarge');
    assert.equal(shown.vcpus, 4);
    assert.equal(shown.vswitchId, 'vsw-2');
    assert.deepEqual(shown.disks.map((d) => [d.id, d.category, d.performanceLevel]), [['d-run-sys', 'cloud_essd', 'PL2'], ['d-run-data', 'cloud_ssd', 'PL1']]);
    for (const disk of shown.disks) {
      assert.equal(disk.hostId, shown.hostId);
      assert.equal(await contentDigest(disk.path), digests.get(disk.id));
      assert.equal(existsSync(driver.diskPath('h1', disk.id)), false, 'the source copy is gone');
    }
    assert.equal(driver.instance('i-run')?.power, 'running');
    await assertCapacityCountedOnce(database);
  });

  it('abandon recreates data disks empty on the target; the system disk keeps its bytes', async (t) => {
    const { database, driver, ctx, digests } = await setup(t);
    const started = await startInstanceMove(ctx, { instanceId: 'i-stop', origin: 'test', dataDiskPolicy: 'abandon' });
    const done = await finished(ctx, started.moveId);
    assert.equal(done.state, 'succeeded', done.errorMessage ?? '');
    assert.deepEqual(done.outcome?.abandonedDiskIds, ['d-stop-data']);
    const shown = await showInstance(database, 'i-stop');
    assert.equal(shown.status, 'Stopped', 'a stopped instance stays stopped');
    const [sys, data] = shown.disks;
    assert.ok(sys !== undefined && data !== undefined);
    assert.equal(await contentDigest(sys.path), digests.get('d-stop-sys'));
    assert.equal(data.hostId, shown.hostId);
    const empty = await driver.createDisk({ diskId: 'empty-ref', hostId: 'ref', sizeBytes: 1024 ** 3, fillBytes: 0 }, new AbortController().signal);
    assert.equal(await contentDigest(data.path), await contentDigest(empty.path));
    assert.equal(existsSync(driver.diskPath('h1', 'd-stop-data')), false, 'the abandoned source is deleted after the commit');
    await assertCapacityCountedOnce(database);
  });

  it('try_transfer copies what it can and recreates a data disk whose copy cannot be made', async (t) => {
    const { database, driver, ctx, digests } = await setup(t);
    // The data disk's source is unreadable: a failure a retry cannot fix.
    await driver.deleteDisk({ diskId: 'd-stop-data', hostId: 'h1', path: driver.diskPath('h1', 'd-stop-data') }, new AbortController().signal);
    const done = await finished(ctx, (await startInstanceMove(ctx, { instanceId: 'i-stop', origin: 'test', dataDiskPolicy: 'try_transfer' })).moveId);
    assert.equal(done.state, 'succeeded', done.errorMessage ?? '');
    assert.deepEqual(done.outcome?.abandonedDiskIds, ['d-stop-data']);
    const sys = (await showInstance(database, 'i-stop')).disks[0];
    assert.equal(await contentDigest(sys?.path ?? ''), digests.get('d-stop-sys'));
  });

  it('a copy that cannot succeed rolls back: the instance runs again on its source disks, capacity counted once', async (t) => {
    const { database, driver, ctx, digests } = await setup(t);
    driver.faults.fullPools.add('h2');
    const done = await finished(ctx, (await startInstanceMove(ctx, { instanceId: 'i-run', origin: 'test', targetZoneId: 'z2' })).moveId);
    assert.equal(done.state, 'failed');
    assert.equal(done.errorCode, 'Conflict');
    assert.match(done.errorMessage ?? '', /storage pool of h2 is full/);
    assert.equal(done.outcome?.rolledBack, true);
    const shown = await showInstance(database, 'i-run');
    assert.equal(shown.hostId, 'h1');
    assert.equal(shown.status, 'Running');
    for (const disk of shown.disks) {
      assert.equal(await contentDigest(disk.path), digests.get(disk.id));
      assert.equal(existsSync(driver.diskPath('h2', disk.id)), false);
    }
    await assertCapacityCountedOnce(database);
  });

  it('a worker dying right after the switch-over: the retry starts the instance on the target, deletes the sources, counts capacity once', async (t) => {
    let crashed = false;
    // Fault injection: the first attempt dies as soon as the transaction that switches the instance over commits.
    const crashAfterSwitch = (handler: JobHandler): JobHandler => (ctx) =>
      handler({
        ...ctx,
        fenced: async (work, finish) => {
          const out = await ctx.fenced(work, finish);
          if (!crashed && finish !== undefined && 'checkpoint' in finish && (finish.checkpoint as { copiedBytes?: number }).copiedBytes !== undefined) {
            crashed = true;
            throw new Error('worker died after the switch-over');
          }
          return out;
        },
      });
    const { database, driver, ctx, digests } = await setup(t, crashAfterSwitch);
    const done = await finished(ctx, (await startInstanceMove(ctx, { instanceId: 'i-run', origin: 'test', targetZoneId: 'z2' })).moveId);
    assert.equal(crashed, true);
    assert.equal(done.state, 'succeeded', done.errorMessage ?? '');
    assert.equal(done.outcome?.rolledBack, false);
    const shown = await showInstance(database, 'i-run');
    assert.deepEqual([shown.hostId, shown.status], ['h2', 'Running']);
    for (const disk of shown.disks) {
      assert.equal(await contentDigest(disk.path), digests.get(disk.id));
      assert.equal(existsSync(driver.diskPath('h1', disk.id)), false, `the source of ${disk.id} is deleted`);
    }
    await assertCapacityCountedOnce(database);
  });

  it('an interrupted copy is retried and resumes from its checkpoint', async (t) => {
    const { database, driver, ctx, digests } = await setup(t);
    driver.faults.interruptCopyAfterChunks = 3;
    const done = await finished(ctx, (await startInstanceMove(ctx, { instanceId: 'i-stop', origin: 'test' })).moveId);
    assert.equal(done.state, 'succeeded', done.errorMessage ?? '');
    assert.equal(done.outcome?.resumed, true);
    for (const disk of (await showInstance(database, 'i-stop')).disks) assert.equal(await contentDigest(disk.path), digests.get(disk.id));
    await assertCapacityCountedOnce(database);
  });

  it('refuses a second move of an instance while one is under way, and bad requests before queueing anything', async (t) => {
    const { ctx, worker } = await setup(t);
    await worker.stop();
    await startInstanceMove(ctx, { instanceId: 'i-stop', origin: 'test' });
    await assert.rejects(startInstanceMove(ctx, { instanceId: 'i-stop', origin: 'test' }), (e: Error & { code?: string }) => e.code === 'InstanceStatusInvalid');
    await assert.rejects(startInstanceMove(ctx, { instanceId: 'i-nope', origin: 'test' }), (e: Error & { code?: string }) => e.code === 'InstanceNotFound');
    await assert.rejects(startInstanceMove(ctx, { instanceId: 'i-run', origin: 'test', targetVSwitchId: 'vsw-2', targetZoneId: 'z1' }), (e: Error & { code?: string }) => e.code === 'VSwitchZoneMismatch');
    await assert.rejects(startInstanceMove(ctx, { instanceId: 'i-run', origin: 'test', diskChanges: [{ diskId: 'd-stop-sys' }] }), (e: Error & { code?: string }) => e.code === 'InstanceDiskNotFound');
  });
});
