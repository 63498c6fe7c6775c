/**
 * SMC CreateCrossZoneMigrationJob through the Alibaba SDK clients against a real `ferry serve`:
 * the instance keeps its id and its bytes, changes zone, vSwitch, type and disk levels, runs again
 * if it ran; the job reads back as a DescribeReplicationJobs item of JobType 2; every rule answers
 * its documented code; on SQLite and on PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../src/core/clock.ts';
import { JobStore } from '../src/engine/job-store.ts';
import { showInstance } from '../src/fleet/index.ts';
import { describeCrossZoneJobs } from '../src/migration/cross-zone.ts';
import type { ReplicationJobView } from '../src/migration/replication-job-views.ts';
import type { ServiceContext } from '../src/migration/service-context.ts';
import type { Database } from '../src/store/database.ts';
import { type FerryWithKey, isSdkError, openApiCall, popClient, startFerryWithKey } from './support/api.ts';
import { dialects } from './support/dialects.ts';
import { freshPostgresDatabase } from './support/postgres.ts';
import { applyServerFleet, assertCapacityCountedOnce, diskDigests, eventually, openServerDatabase } from './support/moves.ts';

const crossZoneFleet = {
  regions: [
    {
      id: 'cn-hangzhou',
      zones: [
        {
          id: 'cn-hangzhou-h',
          vswitches: [{ id: 'vsw-h1', vpcId: 'vpc-1', cidr: '192.168.1.0/24' }],
          hosts: [
            { id: 'host-h1', vcpus: 32, memoryGiB: 128, numaNodes: 2 },
            { id: 'host-h2', vcpus: 32, memoryGiB: 128, numaNodes: 2 },
          ],
        },
        {
          id: 'cn-hangzhou-i',
          vswitches: [
            { id: 'vsw-i1', vpcId: 'vpc-1', cidr: '192.168.2.0/24' },
            { id: 'vsw-i2', vpcId: 'vpc-2', cidr: '172.16.2.0/24' },
          ],
          hosts: [{ id: 'host-i1', vcpus: 16, memoryGiB: 64, numaNodes: 2 }],
        },
      ],
    },
    { id: 'cn-beijing', zones: [{ id: 'cn-beijing-a', vswitches: [{ id: 'vsw-b1', vpcId: 'vpc-1', cidr: '10.1.0.0/24' }], hosts: [] }] },
  ],
  instanceTypes: [
    { id: 'ecs.g7.large', family: 'ecs.g7', vcpus: 2, memoryGiB: 8 },
    { id: 'ecs.g7.xlarge', family: 'ecs.g7', vcpus: 4, memoryGiB: 16 },
    { id: 'ecs.g7.6xlarge', family: 'ecs.g7', vcpus: 24, memoryGiB: 96 },
    { id: 'ecs.c7.large', family: 'ecs.c7', vcpus: 2, memoryGiB: 4 },
  ],
  instances: [
    {
      id: 'i-run',
      host: 'host-h1',
      type: 'ecs.g7.large',
      vswitch: 'vsw-h1',
      status: 'Running',
      disks: [
        { id: 'd-run-sys', kind: 'system', category: 'cloud_essd', performanceLevel: 'PL1', sizeGiB: 1, fillMiB: 8 },
        { id: 'd-run-data', kind: 'data', category: 'cloud_ssd', sizeGiB: 1, fillMiB: 4 },
      ],
    },
    { id: 'i-stop', host: 'host-h1', type: 'ecs.g7.large', vswitch: 'vsw-h1', status: 'Stopped', disks: [{ id: 'd-stop-sys', kind: 'system', category: 'cloud_ssd', sizeGiB: 1, fillMiB: 4 }] },
    { id: 'i-other', account: 'other', host: 'host-h2', type: 'ecs.g7.large', vswitch: 'vsw-h1', status: 'Stopped' },
  ],
};

for (const dialect of dialects) {
  describe(`SMC CreateCrossZoneMigrationJob [${dialect}]`, () => {
    let ferry: FerryWithKey;
    let database: Database;
    let ctx: ServiceContext;
    let v3: (action: string, query: Record<string, unknown>) => Promise<Record<string, unknown>>;

    before(async () => {
      const db = dialect === 'postgres' ? await freshPostgresDatabase() : undefined;
      ferry = await startFerryWithKey({ ...(db === undefined ? {} : { db }), extra: ['--poll-ms', '100'] });
      await ferry.createKey('other');
      database = await openServerDatabase(ferry);
      await applyServerFleet(ferry, database, crossZoneFleet);
      ctx = { database, clock: systemClock, jobs: new JobStore(database, systemClock), accountId: ferry.key.accountId, requestId: 'test', dataDir: ferry.data };
      v3 = openApiCall(ferry.server.url, ferry.key, 'v3');
    });
    after(async () => {
      await database.close();
      await ferry.close();
    });

    async function finished(jobId: string): Promise<ReplicationJobView> {
      return eventually(async () => {
        const job = (await describeCrossZoneJobs(ctx, { jobIds: [jobId], pageNumber: 1, pageSize: 10 })).items[0];
        return job !== undefined && (job.status === 'Finished' || job.status === 'InError') ? job : undefined;
      }, `cross-zone job ${jobId}`);
    }

    it('moves a running instance to another zone, vSwitch, type and ESSD levels: same id and bytes, running there', async () => {
      const before = await diskDigests(database, 'i-run');
      const params = {
        RegionId: 'cn-hangzhou',
        InstanceId: 'i-run',
        TargetZoneId: 'cn-hangzhou-i',
        TargetVSwitchId: 'vsw-i1',
        TargetInstanceType: 'ecs.g7.xlarge',
        AutoPay: false,
        ResourceGroupId: 'rg-acfm',
        ClientToken: '123e4567-e89b-12d3-a456-426655440000',
        Disk: [
          { DiskId: 'd-run-sys', Category: 'cloud_essd', PerformanceLevel: 'PL2' },
          { DiskId: 'd-run-data', Category: 'cloud_essd', PerformanceLevel: 'PL0' },
        ],
      };
      const created = await v3('CreateCrossZoneMigrationJob', params);
      const jobId = String(created['JobId']);
      assert.match(jobId, /^j-[a-z0-9]{20}$/);
      assert.equal((await v3('CreateCrossZoneMigrationJob', params))['JobId'], jobId, 'the same ClientToken answers the same job');
      await assert.rejects(v3('CreateCrossZoneMigrationJob', { ...params, TargetInstanceType: 'ecs.g7.large' }), isSdkError('IdempotentParameterMismatch', 400));

      const job = await finished(jobId);
      assert.equal(job.status, 'Finished', job.statusInfo);
      assert.equal(job.jobType, 2);
      assert.equal(job.progress, 100);
      assert.equal(job.errorCode, '');
      assert.equal(job.instanceId, 'i-run');
      assert.equal(job.instanceType, 'ecs.g7.xlarge');
      assert.equal(job.vSwitchId, 'vsw-i1');
      assert.equal(job.vpcId, 'vpc-1');
      assert.equal(job.resourceGroupId, 'rg-acfm');
      assert.equal(job.regionId, 'cn-hangzhou');
      assert.match(job.startTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.match(job.endTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

      const moved = await showInstance(database, 'i-run');
      assert.equal(moved.id, 'i-run');
      assert.equal(moved.zoneId, 'cn-hangzhou-i');
      assert.equal(moved.hostId, 'host-i1');
      assert.equal(moved.status, 'Running', 'it ran before, so it runs again');
      assert.equal(moved.instanceType, 'ecs.g7.xlarge');
      assert.equal(moved.vswitchId, 'vsw-i1');
      assert.deepEqual(moved.disks.map((d) => [d.id, d.category, d.performanceLevel]), [['d-run-sys', 'cloud_essd', 'PL2'], ['d-run-data', 'cloud_essd', 'PL0']]);
      assert.deepEqual(await diskDigests(database, 'i-run'), before, 'every disk keeps its bytes');
      await assertCapacityCountedOnce(database);
    });

    it('a stopped instance moves with pop-core, finds its VPC’s vSwitch in the zone, and stays stopped', async () => {
      const before = await diskDigests(database, 'i-stop');
      const created = await popClient(ferry.server.url, ferry.key).request('CreateCrossZoneMigrationJob', { RegionId: 'cn-hangzhou', InstanceId: 'i-stop', TargetZoneId: 'cn-hangzhou-i' }, { method: 'POST' });
      const job = await finished(String(created['JobId']));
      assert.equal(job.status, 'Finished', job.statusInfo);
      const moved = await showInstance(database, 'i-stop');
      assert.deepEqual([moved.zoneId, moved.vswitchId, moved.status], ['cn-hangzhou-i', 'vsw-i1', 'Stopped']);
      assert.deepEqual(await diskDigests(database, 'i-stop'), before);

      const byInstance = await describeCrossZoneJobs(ctx, { instanceIds: ['i-stop'], pageNumber: 1, pageSize: 10 });
      assert.deepEqual(byInstance.items.map((j) => j.jobId), [job.jobId]);
      assert.equal((await describeCrossZoneJobs(ctx, { status: 'Finished', pageNumber: 1, pageSize: 1 })).totalCount, 2);
      assert.equal((await describeCrossZoneJobs(ctx, { status: 'Ready', pageNumber: 1, pageSize: 10 })).totalCount, 0);
      const other = { ...ctx, accountId: (await database.db.selectFrom('accounts').select('id').where('name', '=', 'other').executeTakeFirstOrThrow()).id };
      assert.equal((await describeCrossZoneJobs(other, { pageNumber: 1, pageSize: 10 })).totalCount, 0, 'another account sees none');
    });

    it('no single NUMA node with room in the target zone: the job ends InError with NoStock and the instance runs where it was', async () => {
      const created = await v3('CreateCrossZoneMigrationJob', { RegionId: 'cn-hangzhou', InstanceId: 'i-run', TargetZoneId: 'cn-hangzhou-h', TargetInstanceType: 'ecs.g7.6xlarge' });
      const job = await finished(String(created['JobId']));
      assert.equal(job.status, 'InError');
      assert.equal(job.errorCode, 'OperationDenied.NoStock');
      assert.match(job.statusInfo, /needs 24 vCPU \+ 96 GiB on one NUMA node/);
      const shown = await showInstance(database, 'i-run');
      assert.deepEqual([shown.hostId, shown.status, shown.instanceType], ['host-i1', 'Running', 'ecs.g7.xlarge']);
      assert.equal((await describeCrossZoneJobs(ctx, { status: 'InError', pageNumber: 1, pageSize: 10 })).totalCount, 1);
      await assertCapacityCountedOnce(database);
    });

    it('answers every rule with its documented code', async () => {
      const base = { RegionId: 'cn-hangzhou', InstanceId: 'i-stop' };
      const refuses = (params: Record<string, unknown>, code: string, status: number): Promise<void> =>
        assert.rejects(v3('CreateCrossZoneMigrationJob', params), isSdkError(code, status));
      await refuses({ ...base, TargetZoneId: 'cn-hangzhou-h', TargetVSwitchId: 'vsw-i2' }, 'VSwitchIdVpcId.Mismatch', 400);
      await refuses({ ...base, TargetZoneId: 'cn-hangzhou-h', TargetVSwitchId: 'vsw-i1' }, 'VSwitchIdVpcId.Mismatch', 400);
      await refuses({ ...base, TargetVSwitchId: 'vsw-nope' }, 'InvalidVSwitchId.NotFound', 404);
      await refuses({ ...base, TargetVSwitchId: 'vsw-b1' }, 'InvalidVSwitchId.NotFound', 404);
      await refuses({ ...base, TargetZoneId: 'cn-hangzhou-z' }, 'InvalidZoneId.NotFound', 400);
      await refuses({ ...base, TargetZoneId: 'cn-beijing-a' }, 'InvalidZoneId.NotFound', 400);
      await refuses({ ...base, TargetInstanceType: 'ecs.c7.large' }, 'InvalidInstanceType.FamilyMismatch', 400);
      await refuses({ ...base, TargetInstanceType: 'ecs.nope' }, 'InvalidInstanceType.NotFound', 400);
      await refuses({ ...base, Disk: [{ DiskId: 'd-run-sys', Category: 'cloud_essd' }] }, 'ReplicationJobDataDiskIndex.Invalid', 400);
      await refuses({ ...base, Disk: [{ Category: 'cloud_essd' }] }, 'MissingParameter', 400);
      await refuses({ ...base, Disk: [{ DiskId: 'd-stop-sys', PerformanceLevel: 'PL9' }] }, 'InvalidParameter', 400);
      await refuses({ ...base, Disk: [{ DiskId: 'd-stop-sys', PerformanceLevel: 'PL1' }] }, 'InvalidParameter', 400);
      await refuses({ ...base, Disk: [{ DiskId: 'd-stop-sys', Category: 'cloud_tape' }] }, 'InvalidParameter', 400);
      await refuses({ RegionId: 'cn-hangzhou' }, 'MissingParameter', 400);
      await refuses({ InstanceId: 'i-stop' }, 'MissingParameter', 400);
      await refuses({ ...base, InstanceId: 'i-nope' }, 'InvalidInstanceId.NotFound', 404);
      await refuses({ ...base, InstanceId: 'i-other' }, 'InvalidInstanceId.NotFound', 404);
      await refuses({ ...base, RegionId: 'cn-beijing' }, 'InvalidInstanceId.NotFound', 404);
      await refuses({ ...base, ClientToken: 'x'.repeat(65) }, 'InvalidParameter', 400);
      // An instance between states (a stop under way) is refused as the job's source.
      await database.db.updateTable('instances').set({ status: 'Stopping' }).where('id', '=', 'i-stop').execute();
      try {
        await refuses(base, 'SourceServerState.Invalid', 400);
      } finally {
        await database.db.updateTable('instances').set({ status: 'Stopped' }).where('id', '=', 'i-stop').execute();
      }
      assert.equal((await describeCrossZoneJobs(ctx, { pageNumber: 1, pageSize: 50 })).totalCount, 3, 'no refused request left a job behind');
    });
  });
}
