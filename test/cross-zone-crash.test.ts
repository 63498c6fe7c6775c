/**
 * A Ferry node killed (SIGKILL) in the middle of a cross-zone move, on SQLite and on PostgreSQL:
 * the next node (the same one restarted) takes the job over and the copy resumes from its checkpoint; a move whose job was cancelled
 * while its node was dead is rolled back. Either way the instance ends with exactly one valid copy
 * of each disk, running, with its capacity counted once.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sleep, systemClock } from '../src/core/clock.ts';
import { JobStore } from '../src/engine/job-store.ts';
import { showFleet, showInstance } from '../src/fleet/index.ts';
import { type InstanceMoveView, getInstanceMove } from '../src/migration/instance-move.ts';
import type { ServiceContext } from '../src/migration/service-context.ts';
import type { Database } from '../src/store/database.ts';
import { type FerryWithKey, isSdkError, openApiCall, startFerryWithKey } from './support/api.ts';
import { type FerryServer, startFerry } from './support/ferry-process.ts';
import { applyServerFleet, assertCapacityCountedOnce, diskDigests, eventually, openServerDatabase } from './support/moves.ts';
import { dialects } from './support/dialects.ts';
import { freshPostgresDatabase } from './support/postgres.ts';

const fleet = {
  regions: [
    {
      id: 'cn-hangzhou',
      zones: [
        { id: 'cn-hangzhou-h', vswitches: [{ id: 'vsw-h1', vpcId: 'vpc-1', cidr: '192.168.1.0/24' }], hosts: [{ id: 'host-h1', vcpus: 16, memoryGiB: 64, numaNodes: 2 }] },
        { id: 'cn-hangzhou-i', vswitches: [{ id: 'vsw-i1', vpcId: 'vpc-1', cidr: '192.168.2.0/24' }], hosts: [{ id: 'host-i1', vcpus: 16, memoryGiB: 64, numaNodes: 2 }] },
      ],
    },
  ],
  instanceTypes: [{ id: 'ecs.g7.large', family: 'ecs.g7', vcpus: 2, memoryGiB: 8 }],
  instances: [
    {
      id: 'i-big',
      host: 'host-h1',
      type: 'ecs.g7.large',
      vswitch: 'vsw-h1',
      status: 'Running',
      disks: [
        { id: 'd-big-sys', kind: 'system', category: 'cloud_essd', sizeGiB: 2, fillMiB: 256 },
        { id: 'd-big-data', kind: 'data', category: 'cloud_essd', sizeGiB: 1, fillMiB: 8 },
      ],
    },
  ],
};

const nodeArgs = ['--lease-ms', '1500', '--poll-ms', '100'];

/** Every file of the instance's disks in any pool: finished copies, partial ones, checkpoints. */
function diskFiles(dataDir: string): string[] {
  const pools = join(dataDir, 'pools');
  return readdirSync(pools)
    .flatMap((host) => readdirSync(join(pools, host)).filter((name) => name.startsWith('d-big-')).map((name) => `${host}/${name}`))
    .sort();
}

for (const dialect of dialects) {
  describe(`cross-zone move across a crashed node [${dialect}]`, () => {
    let ferry: FerryWithKey;
    let database: Database;
    let ctx: ServiceContext;
    let node: FerryServer;
    let digests: Map<string, string>;

    before(async () => {
      const db = dialect === 'postgres' ? await freshPostgresDatabase() : undefined;
      ferry = await startFerryWithKey({ ...(db === undefined ? {} : { db }), extra: nodeArgs });
      node = ferry.server;
      database = await openServerDatabase(ferry);
      await applyServerFleet(ferry, database, fleet);
      ctx = { database, clock: systemClock, jobs: new JobStore(database, systemClock), accountId: ferry.key.accountId, requestId: 'test', dataDir: ferry.data };
      digests = await diskDigests(database, 'i-big');
    });
    after(async () => {
      node.kill('SIGKILL');
      await node.exited;
      await database.close();
      await ferry.close();
    });

    /** Start a move to `zoneId` on the live node, then SIGKILL it once the system disk's copy has checkpointed. */
    async function startAndKillMidCopy(zoneId: string, targetHost: string): Promise<string> {
      const created = await openApiCall(node.url, ferry.key, 'v3')('CreateCrossZoneMigrationJob', { RegionId: 'cn-hangzhou', InstanceId: 'i-big', TargetZoneId: zoneId });
      const jobId = String(created['JobId']);
      const checkpoint = join(ferry.data, 'pools', targetHost, 'd-big-sys.img.partial.json');
      await eventually(() => Promise.resolve(existsSync(checkpoint) ? true : undefined), 'the copy’s first checkpoint', 120_000, 10);
      node.kill('SIGKILL');
      await node.exited;
      const move = await getInstanceMove(ctx, jobId);
      assert.equal(move?.state, 'running', 'the node died mid-move');
      assert.equal(move.phase, 'copying');
      const instance = await showInstance(database, 'i-big');
      assert.equal(instance.status, 'Migrating');
      assert.deepEqual(await diskDigests(database, 'i-big'), digests, 'the source disks are untouched mid-copy');
      assert.equal((await showFleet(database)).heldClaims, 1);
      return jobId;
    }

    async function finished(jobId: string): Promise<InstanceMoveView> {
      return eventually(async () => {
        const move = await getInstanceMove(ctx, jobId);
        return move?.state === 'succeeded' || move?.state === 'failed' ? move : undefined;
      }, `move ${jobId}`, 180_000);
    }

    it('a node killed mid-copy: the next node takes the job over and the copy resumes; the instance runs in the target zone', async () => {
      const jobId = await startAndKillMidCopy('cn-hangzhou-i', 'host-i1');
      node = await startFerry({ data: ferry.data, ...(ferry.db === undefined ? {} : { db: ferry.db }), extra: nodeArgs });
      const move = await finished(jobId);
      assert.equal(move.state, 'succeeded', move.errorMessage ?? '');
      assert.equal(move.outcome?.resumed, true, 'the copy continued from its checkpoint');
      const instance = await showInstance(database, 'i-big');
      assert.deepEqual([instance.hostId, instance.zoneId, instance.status], ['host-i1', 'cn-hangzhou-i', 'Running']);
      assert.deepEqual(await diskDigests(database, 'i-big'), digests);
      assert.deepEqual(diskFiles(ferry.data), ['host-i1/d-big-data.img', 'host-i1/d-big-sys.img'], 'one copy of each disk, nothing partial left');
      await assertCapacityCountedOnce(database);
    });

    it('a move whose job was cancelled while its node was dead is rolled back: the instance runs on its disks where it was', async () => {
      const jobId = await startAndKillMidCopy('cn-hangzhou-h', 'host-h1');
      const move = await getInstanceMove(ctx, jobId);
      await sleep(1600); // the dead node's lease runs out
      assert.equal((await ctx.jobs.cancel(move?.jobId ?? '')).state, 'cancelled');
      node = await startFerry({ data: ferry.data, ...(ferry.db === undefined ? {} : { db: ferry.db }), extra: nodeArgs });
      // The next request for the instance finds the stalled move, queues its rollback, and is refused meanwhile.
      const v3 = openApiCall(node.url, ferry.key, 'v3');
      await assert.rejects(v3('CreateCrossZoneMigrationJob', { RegionId: 'cn-hangzhou', InstanceId: 'i-big', TargetZoneId: 'cn-hangzhou-h' }), isSdkError('SourceServerState.Invalid', 400));
      const rolledBack = await finished(jobId);
      assert.equal(rolledBack.state, 'failed');
      assert.equal(rolledBack.outcome?.rolledBack, true);
      const instance = await showInstance(database, 'i-big');
      assert.deepEqual([instance.hostId, instance.status], ['host-i1', 'Running'], 'back where it was, running again');
      assert.deepEqual(await diskDigests(database, 'i-big'), digests);
      assert.deepEqual(diskFiles(ferry.data), ['host-i1/d-big-data.img', 'host-i1/d-big-sys.img'], 'the half copy on host-h1 is gone');
      await assertCapacityCountedOnce(database);
    });
  });
}
