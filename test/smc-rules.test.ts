/**
 * Every SMC rule and limit that needs no replication run, through the official pop-core client
 * against a real `ferry serve`, once on SQLite and once on PostgreSQL: each limit just inside and
 * just outside, each error code, paging and filters, ClientToken idempotency, workgroups, tags,
 * and another account's key finding nothing. Sources are registered over the agent contract.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isoUtc } from '../src/migration/validation.ts';
import { type CreatedKey, type FerryWithKey, type PopClient, popClient, startFerryWithKey } from './support/api.ts';
import { freshPostgresDatabase } from './support/postgres.ts';
import { type SeededFleet, createKeyIn, seedFinishedJobs, seedFleet } from './support/smc-seed.ts';
import { contractSource, describeJob, describeSource, machineFacts, plain, rejectsWith, waitFor } from './support/smc.ts';

const gib = 1024 ** 3;
const dayMs = 86_400_000;
const minuteMs = 60_000;

type Params = Record<string, unknown>;

function list<T>(answer: Record<string, unknown>, plural: string, singular: string): T[] {
  return (answer[plural] as Record<string, T[]>)[singular] ?? [];
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`SMC rules through pop-core [${dialect}]`, () => {
    let ferry: FerryWithKey;
    let client: PopClient;
    let dbUrl: string;
    let fleet: SeededFleet;
    let basic: string;
    let wide: string;
    let centos: string;
    /** Accounts of their own for the quota, workgroup and tag tests, and a stranger. */
    let keys: Record<'quota' | 'groups' | 'tags' | 'stranger', CreatedKey>;
    let seq = 0;
    const unique = (prefix: string): string => `${prefix}-${dialect}-${(seq += 1)}`;

    before(async () => {
      const db = dialect === 'postgres' ? await freshPostgresDatabase() : undefined;
      ferry = await startFerryWithKey({ ...(db === undefined ? {} : { db }), env: { FERRY_AGENT_HEARTBEAT_SECONDS: '600' }, extra: ['--poll-ms', '100'] });
      dbUrl = db ?? `sqlite:${join(ferry.data, 'ferry.db')}`;
      client = popClient(ferry.server.url, ferry.key);
      fleet = await seedFleet(dbUrl, ferry.key.accountId);
      basic = await contractSource(ferry, ferry.key, 'plain-source', machineFacts([30 * gib]));
      wide = await contractSource(ferry, ferry.key, 'wide-source', machineFacts([10 * gib, ...Array.from({ length: 16 }, () => 10 * gib)]));
      centos = await contractSource(ferry, ferry.key, 'centos-source', machineFacts([10 * gib], 'CentOS Linux 7 (Core)'));
      const [quota, groups, tags, stranger] = await Promise.all(['quota', 'groups', 'tags', 'stranger'].map((name) => createKeyIn(ferry.data, dbUrl, name)));
      if (quota === undefined || groups === undefined || tags === undefined || stranger === undefined) throw new Error('keys were not created');
      keys = { quota, groups, tags, stranger };
    });
    after(() => ferry.close());

    /** Params of a job that CreateReplicationJob accepts on `basic`. */
    const imageJob = (extra: Params = {}): Params =>
      Object.fromEntries(Object.entries({ RegionId: 'cn-hangzhou', SourceId: basic, Name: unique('job'), ImageName: unique('image'), SystemDiskSize: 30, ...extra }).filter(([, v]) => v !== undefined));

    /** Create, read back, then delete, so the source is free for the next case. */
    async function createdAndDeleted(params: Params): Promise<Record<string, unknown>> {
      const { JobId } = (await client.request('CreateReplicationJob', params, { method: 'POST' })) as { JobId: string };
      assert.match(JobId, /^j-/);
      const job = await describeJob(client, JobId);
      assert.ok(job !== undefined);
      await client.request('DeleteReplicationJob', { JobId });
      return job;
    }

    it('CreateReplicationJob: Name, Description and ImageName rules, and unique names', async () => {
      assert.equal((await createdAndDeleted(imageJob({ Name: 'ab' })))['Name'], 'ab');
      assert.equal((await createdAndDeleted(imageJob({ Name: `n${'x'.repeat(127)}`, Description: `d${'x'.repeat(127)}` })))['Description'], `d${'x'.repeat(127)}`);
      for (const bad of [{ Name: 'a' }, { Name: `n${'x'.repeat(128)}` }, { Name: '9lives' }, { Name: 'http://job' }, { Name: 'with space' }, { Description: 'd' }, { Description: `d${'x'.repeat(128)}` }, { ImageName: 'https://image' }]) {
        await rejectsWith(client.request('CreateReplicationJob', imageJob(bad)), 'InvalidParameter', new RegExp(Object.keys(bad)[0] ?? ''));
      }
      const kept = (await client.request('CreateReplicationJob', imageJob({ Name: 'kept-name', ImageName: 'kept-image' }))) as { JobId: string };
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ SourceId: wide, Name: 'kept-name', DataDisk: [{ Index: 1, Size: 20 }], SystemDiskSize: 20 })), 'ReplicationJobName.Duplicate');
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ SourceId: centos, ImageName: 'kept-image', SystemDiskSize: 20 })), 'ImageName.UsedByReplicationJob', /kept-image/);
      const otherRegion = await createdAndDeleted(imageJob({ SourceId: centos, RegionId: 'cn-beijing', ImageName: 'kept-image', SystemDiskSize: 20 }));
      assert.equal(otherRegion['RegionId'], 'cn-beijing', 'image names are unique per region');
      await client.request('DeleteReplicationJob', { JobId: kept.JobId });
    });

    it('CreateReplicationJob: SystemDiskSize 20–2048, DataDisk Index 1–16 and Size 20–32768, partitions', async () => {
      const wideJob = (extra: Params): Params => imageJob({ SourceId: wide, SystemDiskSize: 20, DataDisk: [{ Index: 1, Size: 20 }], ...extra });
      assert.equal((await createdAndDeleted(wideJob({ SystemDiskSize: 20 })))['SystemDiskSize'], 20);
      assert.equal((await createdAndDeleted(wideJob({ SystemDiskSize: 2048 })))['SystemDiskSize'], 2048);
      await rejectsWith(client.request('CreateReplicationJob', wideJob({ SystemDiskSize: 19 })), 'InvalidParameter', /SystemDiskSize/);
      await rejectsWith(client.request('CreateReplicationJob', wideJob({ SystemDiskSize: 2049 })), 'InvalidParameter', /SystemDiskSize/);
      const disks = await createdAndDeleted(wideJob({ DataDisk: [{ Index: 1, Size: 20, Part: [{ Device: '1_0', SizeBytes: 20 * gib, Block: false }] }, { Index: 16, Size: 32768 }] }));
      assert.deepEqual(plain(disks['DataDisks']), {
        DataDisk: [
          { Index: 1, Size: 20, Parts: { Part: [{ Device: '1_0', SizeBytes: 20 * gib, Block: false }] } },
          { Index: 16, Size: 32768, Parts: { Part: [] } },
        ],
      });
      await rejectsWith(client.request('CreateReplicationJob', wideJob({ DataDisk: [{ Index: 0, Size: 20 }] })), 'InvalidParameter', /DataDisk\.1\.Index/);
      await rejectsWith(client.request('CreateReplicationJob', wideJob({ DataDisk: [{ Index: 17, Size: 20 }] })), 'InvalidParameter', /DataDisk\.1\.Index/);
      await rejectsWith(client.request('CreateReplicationJob', wideJob({ DataDisk: [{ Index: 1, Size: 19 }] })), 'InvalidParameter', /DataDisk\.1\.Size/);
      await rejectsWith(client.request('CreateReplicationJob', wideJob({ DataDisk: [{ Index: 1, Size: 32769 }] })), 'InvalidParameter', /DataDisk\.1\.Size/);
      await rejectsWith(client.request('CreateReplicationJob', wideJob({ DataDisk: [{ Index: 2, Size: 20 }, { Index: 2, Size: 30 }] })), 'DataDisk.DuplicateIndex');
      await rejectsWith(client.request('CreateReplicationJob', wideJob({ DataDisk: [{ Index: 1, Size: 20, Part: [{ Device: '1_0', SizeBytes: 20 * gib + 1 }] }] })), 'InvalidParameter', /Part/);
      await rejectsWith(client.request('CreateReplicationJob', wideJob({ DataDisk: [{ Index: 1, Size: 20, Part: [{ SizeBytes: 1024 }] }] })), 'InvalidParameter', /DataDisk\.1\.Part\.1\.Device/);
      await rejectsWith(client.request('CreateReplicationJob', wideJob({ DataDisk: [{ Index: 1, Size: 20, Part: [{ Device: '1_7', SizeBytes: 1024 }] }] })), 'InvalidParameter', /not a partition/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ DataDisk: [{ Index: 1, Size: 20 }] })), 'ReplicationJobDataDiskIndex.Invalid', /index 1/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ SourceId: wide, SystemDiskSize: 20 })), 'MissingParameter', /DataDisk/);
      const system = await createdAndDeleted(imageJob({ SystemDiskPart: [{ Device: '0_0', SizeBytes: 30 * gib, Block: true }] }));
      assert.deepEqual(plain(system['SystemDiskParts']), { SystemDiskPart: [{ Device: '0_0', SizeBytes: 30 * gib, Block: true }] });
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ SystemDiskPart: [{ Device: '0_0', SizeBytes: 30 * gib + 1 }] })), 'InvalidParameter', /SystemDiskPart/);
    });

    it('CreateReplicationJob: ScheduledStartTime within 30 days, ValidTime 7–90 days, default validity 30 days', async () => {
      const now = Date.now();
      const scheduled = await createdAndDeleted(imageJob({ ScheduledStartTime: isoUtc(now + 30 * dayMs - minuteMs) }));
      assert.equal(scheduled['ScheduledStartTime'], isoUtc(now + 30 * dayMs - minuteMs));
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ ScheduledStartTime: isoUtc(now + 30 * dayMs + minuteMs) })), 'InvalidParameter', /ScheduledStartTime/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ ScheduledStartTime: '2030-01-01 00:00:00' })), 'InvalidParameter', /ScheduledStartTime/);
      assert.equal((await createdAndDeleted(imageJob({ ValidTime: isoUtc(now + 7 * dayMs + minuteMs) })))['ValidTime'], isoUtc(now + 7 * dayMs + minuteMs));
      assert.equal((await createdAndDeleted(imageJob({ ValidTime: isoUtc(now + 90 * dayMs - minuteMs) })))['ValidTime'], isoUtc(now + 90 * dayMs - minuteMs));
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ ValidTime: isoUtc(now + 7 * dayMs - minuteMs) })), 'InvalidParameter', /ValidTime/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ ValidTime: isoUtc(now + 90 * dayMs + minuteMs) })), 'InvalidParameter', /ValidTime/);
      const defaulted = await createdAndDeleted(imageJob());
      const created = Date.parse(String(defaulted['CreationTime']));
      assert.equal(Date.parse(String(defaulted['ValidTime'])) - created, 30 * dayMs);
    });

    it('CreateReplicationJob: what each TargetType needs, and the instance and its region', async () => {
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ ImageName: undefined })), 'MissingParameter', /ImageName/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ SystemDiskSize: undefined })), 'MissingParameter', /SystemDiskSize/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ TargetType: 'ContainerImage', ContainerNamespace: 'ns1', ContainerRepository: 'repo' })), 'MissingParameter', /ContainerTag/);
      const container = await createdAndDeleted(imageJob({ TargetType: 'ContainerImage', ContainerNamespace: 'ns1', ContainerRepository: 'repo', ContainerTag: 'CentOS:v1' }));
      assert.deepEqual([container['TargetType'], container['ContainerNamespace'], container['ContainerRepository'], container['ContainerTag']], ['ContainerImage', 'ns1', 'repo', 'CentOS:v1']);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ TargetType: 'TargetInstance' })), 'MissingParameter', /InstanceId/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ TargetType: 'TargetInstance', InstanceId: 'i-nosuch' })), 'InvalidInstanceId.NotFound');
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ TargetType: 'TargetInstance', InstanceId: fleet.instanceId, RegionId: 'cn-beijing' })), 'InvalidInstanceId.NotFound');
      assert.equal((await createdAndDeleted(imageJob({ TargetType: 'TargetInstance', InstanceId: fleet.instanceId })))['InstanceId'], fleet.instanceId);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ SourceId: wide, SystemDiskSize: 20, TargetType: 'TargetInstance', InstanceId: fleet.instanceId })), 'TargetInstance.DiskMismatch', /source disk 1: it has 0 data disks; attach data disk 1 first/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ TargetType: 'Snapshot' })), 'InvalidParameter', /TargetType/);
    });

    it('CreateReplicationJob: NetMode and the VPC, ReplicationParameters, InstanceType and the other settings echo back', async () => {
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ NetMode: 2 })), 'MissingParameter', /VSwitchId/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ NetMode: 1 })), 'InvalidParameter', /NetMode/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ NetMode: 2, VSwitchId: 'vsw-nosuch' })), 'InvalidVSwitchId.NotFound');
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ NetMode: 2, VSwitchId: fleet.vSwitchId, VpcId: 'vpc-other' })), 'VSwitchIdVpcId.Mismatch');
      const vpc = await createdAndDeleted(imageJob({ NetMode: 2, VSwitchId: fleet.vSwitchId }));
      assert.deepEqual([vpc['NetMode'], vpc['VSwitchId'], vpc['VpcId']], [2, fleet.vSwitchId, fleet.vpcId], 'the VPC comes from the vSwitch');
      const head = '{"bandwidth_limit":10,"compress_level":1,"checksum":true';
      const at = (length: number): string => `${head}${' '.repeat(length - head.length - 1)}}`;
      assert.equal(String((await createdAndDeleted(imageJob({ ReplicationParameters: at(2048) })))['ReplicationParameters']).length, 2048);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ ReplicationParameters: at(2049) })), 'InvalidParameter', /ReplicationParameters/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ ReplicationParameters: '{"speed":1}' })), 'InvalidParameter', /ReplicationParameters/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ InstanceType: 'ecs.nosuch.large' })), 'InvalidInstanceType.NotFound');
      const settings = {
        InstanceType: fleet.instanceType,
        LaunchTemplateId: 'lt-bp16jovvln1cgaaq',
        LaunchTemplateVersion: '2',
        InstanceRamRole: 'SMCAdmin',
        LicenseType: 'BYOL',
        ResourceGroupId: 'rg-acfmw3ty5y7',
      };
      const echoed = await createdAndDeleted(imageJob(settings));
      assert.deepEqual(plain(Object.fromEntries(Object.keys(settings).map((k) => [k, echoed[k]]))), settings);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ LicenseType: 'PAYG' })), 'InvalidParameter', /LicenseType/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ LaunchTemplateVersion: '1' })), 'MissingParameter', /LaunchTemplateId/);
    });

    it('CreateReplicationJob: incremental settings, Tag 1–20, JobType, and the source', async () => {
      const incremental = (extra: Params): Params => imageJob({ RunOnce: false, Frequency: 1, MaxNumberOfImageToKeep: 1, ...extra });
      const low = await createdAndDeleted(incremental({}));
      assert.deepEqual([low['RunOnce'], low['Frequency'], low['MaxNumberOfImageToKeep']], [false, 1, 1]);
      const high = await createdAndDeleted(incremental({ Frequency: 168, MaxNumberOfImageToKeep: 10 }));
      assert.deepEqual([high['Frequency'], high['MaxNumberOfImageToKeep']], [168, 10]);
      for (const bad of [{ Frequency: 0 }, { Frequency: 169 }, { MaxNumberOfImageToKeep: 0 }, { MaxNumberOfImageToKeep: 11 }]) {
        await rejectsWith(client.request('CreateReplicationJob', incremental(bad)), 'InvalidParameter', new RegExp(Object.keys(bad)[0] ?? ''));
      }
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ RunOnce: false, MaxNumberOfImageToKeep: 1 })), 'MissingParameter', /Frequency/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ RunOnce: false, Frequency: 1 })), 'MissingParameter', /MaxNumberOfImageToKeep/);
      const tags = (n: number) => Array.from({ length: n }, (_, i) => ({ Key: `k${i + 1}`, Value: `v${i + 1}` }));
      assert.equal(((await createdAndDeleted(imageJob({ Tag: tags(20) })))['Tags'] as { Tag: unknown[] }).Tag.length, 20);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ Tag: tags(21) })), 'NumberExceed.Tags');
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ Tag: [{ Key: 'aliyun:x', Value: 'v' }] })), 'InvalidParameter', /Tag\.1\.Key/);
      assert.equal((await createdAndDeleted(imageJob({ JobType: 0 })))['JobType'], 0);
      assert.equal((await createdAndDeleted(imageJob({ SourceId: centos, SystemDiskSize: 20, JobType: 1 })))['JobType'], 1);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ JobType: 1 })), 'InvalidOsMigrationType.NotMatched', /Debian/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ JobType: 2 })), 'InvalidParameter', /CreateCrossZoneMigrationJob/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ JobType: 4 })), 'InvalidParameter', /JobType/);
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ SourceId: 's-nosuch' })), 'InvalidSourceId.NotFound');
      await rejectsWith(client.request('CreateReplicationJob', { SourceId: basic, ImageName: 'x1', SystemDiskSize: 30 }), 'MissingParameter', /RegionId/);
    });

    it('CreateReplicationJob: one active job per source (SourceServerState.Invalid while InUse)', async () => {
      const { JobId } = (await client.request('CreateReplicationJob', imageJob())) as { JobId: string };
      assert.equal((await describeSource(client, basic))?.State, 'InUse');
      await rejectsWith(client.request('CreateReplicationJob', imageJob()), 'SourceServerState.Invalid', /InUse.*Available/);
      await client.request('DeleteReplicationJob', { JobId });
      assert.equal((await describeSource(client, basic))?.State, 'Available', 'a Deleting job no longer holds its source');
    });

    it('CreateReplicationJob: ClientToken makes a retry return the same job, and other params with it are refused', async () => {
      const params = imageJob({ ClientToken: `token-${dialect}` });
      const first = (await client.request('CreateReplicationJob', params)) as { JobId: string };
      const again = (await client.request('CreateReplicationJob', params)) as { JobId: string };
      assert.equal(again.JobId, first.JobId);
      const listed = await client.request('DescribeReplicationJobs', { SourceId: [basic], Status: 'Ready' });
      assert.equal(listed['TotalCount'], 1, 'the retry created no second job');
      await rejectsWith(client.request('CreateReplicationJob', { ...params, SystemDiskSize: 40 }), 'IdempotentParameterMismatch');
      await rejectsWith(client.request('CreateReplicationJob', imageJob({ ClientToken: 't'.repeat(65) })), 'InvalidParameter', /ClientToken/);
      await client.request('DeleteReplicationJob', { JobId: first.JobId });
    });

    it('CreateReplicationJob: 1,000 jobs per account, and the 1,001st refused', async () => {
      const key = keys.quota;
      const theirs = popClient(ferry.server.url, key);
      const source = await contractSource(ferry, key, 'quota-source', machineFacts([10 * gib]));
      await seedFinishedJobs(dbUrl, key.accountId, source, 999);
      await theirs.request('CreateReplicationJob', { RegionId: 'cn-hangzhou', SourceId: source, ImageName: 'q-1000', SystemDiskSize: 20 });
      const other = await contractSource(ferry, key, 'quota-source-2', machineFacts([10 * gib]));
      await rejectsWith(theirs.request('CreateReplicationJob', { RegionId: 'cn-hangzhou', SourceId: other, ImageName: 'q-1001', SystemDiskSize: 20 }), 'QuotaExceeded.ReplicationJob');
    });

    it('DescribeReplicationJobs: paging and every filter, with the full job shape', async () => {
      const pagingSources: string[] = [];
      for (let i = 0; i < 3; i += 1) pagingSources.push(await contractSource(ferry, ferry.key, unique('paging-source'), machineFacts([10 * gib])));
      const created: string[] = [];
      for (const [i, source] of pagingSources.entries()) {
        const { JobId } = (await client.request('CreateReplicationJob', { RegionId: 'cn-shanghai', SourceId: source, Name: `paged-${dialect}-${i}`, ImageName: `paged-${i}`, SystemDiskSize: 20, ResourceGroupId: 'rg-paging', Tag: [{ Key: 'batch', Value: String(i % 2) }] })) as { JobId: string };
        created.push(JobId);
        await client.request('StartReplicationJob', { JobId });
        await client.request('StopReplicationJob', { JobId });
      }
      const page = (n: number, size: number) => client.request('DescribeReplicationJobs', { RegionId: 'cn-shanghai', PageNumber: n, PageSize: size });
      const first = await page(1, 2);
      const second = await page(2, 2);
      assert.deepEqual([first['TotalCount'], first['PageNumber'], first['PageSize']], [3, 1, 2]);
      const ids = [...list<Record<string, unknown>>(first, 'ReplicationJobs', 'ReplicationJob'), ...list<Record<string, unknown>>(second, 'ReplicationJobs', 'ReplicationJob')].map((j) => j['JobId']);
      assert.deepEqual(new Set(ids), new Set(created), 'two pages hold every job once');
      assert.equal((await page(1, 50))['TotalCount'], 3);
      await rejectsWith(page(1, 51), 'InvalidParameter', /PageSize/);
      await rejectsWith(page(0, 10), 'InvalidParameter', /PageNumber/);
      const count = async (filter: Params): Promise<number> => Number((await client.request('DescribeReplicationJobs', filter))['TotalCount']);
      assert.equal(await count({ JobId: [created[0], created[1]] }), 2);
      assert.equal(await count({ SourceId: pagingSources }), 3);
      assert.equal(await count({ Name: `paged-${dialect}-1` }), 1);
      assert.equal(await count({ SourceId: pagingSources, Status: 'Stopped' }), 3);
      assert.equal(await count({ SourceId: pagingSources, Status: 'Ready' }), 0);
      assert.equal(await count({ SourceId: pagingSources, BusinessStatus: 'Syncing' }), 0);
      assert.equal(await count({ SourceId: pagingSources, JobType: 0 }), 3);
      assert.equal(await count({ ResourceGroupId: 'rg-paging' }), 3);
      assert.equal(await count({ SourceId: pagingSources, Tag: [{ Key: 'batch', Value: '0' }] }), 2);
      assert.equal(await count({ SourceId: pagingSources, Tag: [{ Key: 'batch' }] }), 3);
      assert.equal(await count({ InstanceId: ['i-none'] }), 0);
      await rejectsWith(client.request('DescribeReplicationJobs', { JobId: Array.from({ length: 51 }, (_, i) => `j-${i}`) }), 'InvalidParameter', /JobId/);
      await rejectsWith(client.request('DescribeReplicationJobs', { Status: 'Sleeping' }), 'InvalidParameter', /Status/);
      await rejectsWith(client.request('DescribeReplicationJobs', { Tag: [{ Value: 'x' }] }), 'InvalidParameter.TagValue');
      const job = await describeJob(client, created[0] ?? '');
      const fields = ['JobId', 'Name', 'Description', 'SourceId', 'RegionId', 'JobType', 'TargetType', 'Status', 'BusinessStatus', 'StatusInfo', 'ErrorCode', 'Progress', 'CreationTime', 'StartTime', 'EndTime', 'ScheduledStartTime', 'ValidTime', 'ImageId', 'ImageName', 'InstanceId', 'TransitionInstanceId', 'InstanceType', 'InstanceRamRole', 'LaunchTemplateId', 'LaunchTemplateVersion', 'LicenseType', 'NetMode', 'VpcId', 'VSwitchId', 'ReplicationParameters', 'RunOnce', 'Frequency', 'MaxNumberOfImageToKeep', 'SystemDiskSize', 'ContainerNamespace', 'ContainerRepository', 'ContainerTag', 'ResourceGroupId', 'WorkgroupId', 'SystemDiskParts', 'DataDisks', 'Disks', 'ReplicationJobRuns', 'Tags'];
      assert.deepEqual(Object.keys(job ?? {}).sort(), fields.sort());
      assert.deepEqual((job?.['ReplicationJobRuns'] as { ReplicationJobRun: Array<Record<string, unknown>> }).ReplicationJobRun.map((r) => r['Type']), ['Manual']);
    });

    it('StartReplicationJob, StopReplicationJob, DeleteReplicationJob, CutOverReplicationJob: ReplicationJob.InvalidStatus outside their states', async () => {
      const { JobId } = (await client.request('CreateReplicationJob', imageJob())) as { JobId: string };
      await rejectsWith(client.request('StopReplicationJob', { JobId }), 'ReplicationJob.InvalidStatus', /Ready.*Running \(Preparing\)/);
      await rejectsWith(client.request('CutOverReplicationJob', { JobId, SyncData: true }), 'ReplicationJob.InvalidStatus', /Waiting/);
      await client.request('StartReplicationJob', { JobId });
      assert.deepEqual([(await describeJob(client, JobId))?.Status, (await describeJob(client, JobId))?.BusinessStatus], ['Running', 'Preparing']);
      await rejectsWith(client.request('StartReplicationJob', { JobId }), 'ReplicationJob.InvalidStatus', /Running.*Ready, Stopped, InError/);
      await rejectsWith(client.request('DeleteReplicationJob', { JobId }), 'ReplicationJob.InvalidStatus');
      await rejectsWith(client.request('DeleteSourceServer', { SourceId: basic, Force: true }), 'SourceServer.WithRunningReplicationJob', new RegExp(JobId));
      await client.request('StopReplicationJob', { JobId });
      await rejectsWith(client.request('StopReplicationJob', { JobId }), 'ReplicationJob.InvalidStatus', /Stopped/);
      for (const action of ['StartReplicationJob', 'StopReplicationJob', 'DeleteReplicationJob', 'CutOverReplicationJob']) {
        await rejectsWith(client.request(action, { JobId: 'j-nosuch' }), 'InvalidJobId.NotFound');
      }
      await client.request('DeleteReplicationJob', { JobId });
      assert.ok(['Deleting', 'gone'].includes((await describeJob(client, JobId))?.Status ?? 'gone'));
      await waitFor('the deleted job to go', async () => ((await describeJob(client, JobId)) === undefined ? true : undefined));
    });

    it('ModifyReplicationJobAttribute: names any time, incremental settings before the first run or while Waiting, the rest before the first run', async () => {
      const { JobId } = (await client.request('CreateReplicationJob', imageJob({ RunOnce: false, Frequency: 2, MaxNumberOfImageToKeep: 2 }))) as { JobId: string };
      const now = Date.now();
      await client.request('ModifyReplicationJobAttribute', { JobId, ImageName: unique('renamed-image'), Frequency: 3, MaxNumberOfImageToKeep: 4, SystemDiskSize: 40, ValidTime: isoUtc(now + 10 * dayMs), ScheduledStartTime: isoUtc(now + dayMs) });
      const before = await describeJob(client, JobId);
      assert.deepEqual([before?.['Frequency'], before?.['MaxNumberOfImageToKeep'], before?.['SystemDiskSize'], before?.['ValidTime']], [3, 4, 40, isoUtc(now + 10 * dayMs)]);
      await rejectsWith(client.request('ModifyReplicationJobAttribute', { JobId, DataDisk: [{ Index: 1, Size: 20 }, { Index: 1, Size: 20 }] }), 'DataDisk.DuplicateIndex');
      await rejectsWith(client.request('ModifyReplicationJobAttribute', { JobId, ValidTime: isoUtc(now + 91 * dayMs) }), 'InvalidParameter', /ValidTime/);
      await client.request('StartReplicationJob', { JobId });
      await client.request('StopReplicationJob', { JobId });
      await client.request('ModifyReplicationJobAttribute', { JobId, Name: unique('after-run'), Description: 'Still_changeable' });
      await rejectsWith(client.request('ModifyReplicationJobAttribute', { JobId, ImageName: 'too-late' }), 'ReplicationJob.InvalidStatus', /Ready \(before the first run\)/);
      await rejectsWith(client.request('ModifyReplicationJobAttribute', { JobId, Frequency: 5 }), 'ReplicationJob.InvalidStatus', /Waiting/);
      await client.request('ModifyReplicationJobAttribute', { JobId, ValidTime: isoUtc(now + 20 * dayMs) });
      await rejectsWith(client.request('ModifyReplicationJobAttribute', { JobId: 'j-nosuch', Name: 'x-y' }), 'InvalidJobId.NotFound');
      const other = (await client.request('CreateReplicationJob', imageJob({ SourceId: centos, SystemDiskSize: 20 }))) as { JobId: string };
      await rejectsWith(client.request('ModifyReplicationJobAttribute', { JobId: other.JobId, Name: String((await describeJob(client, JobId))?.['Name']) }), 'ReplicationJobName.Duplicate');
      await rejectsWith(client.request('ModifyReplicationJobAttribute', { JobId: other.JobId, Frequency: 2 }), 'InvalidParameter', /RunOnce=false/);
      for (const id of [JobId, other.JobId]) await client.request('DeleteReplicationJob', { JobId: id });
    });

    it('DescribeSourceServers, ModifySourceServerAttribute, DeleteSourceServer with Force', async () => {
      const source = await describeSource(client, wide);
      assert.equal(source?.State, 'Available');
      assert.equal(source?.['HeartbeatRate'], 600);
      assert.equal(source?.['SystemDiskSize'], 10);
      assert.equal(source?.['ReplicationDriver'], 'SMT');
      assert.equal((source?.['DataDisks'] as { DataDisk: unknown[] }).DataDisk.length, 16);
      assert.deepEqual(plain((source?.['SystemDiskParts'] as { SystemDiskPart: unknown[] }).SystemDiskPart), [{ Device: '0_0', Path: '/dev/vda1', SizeBytes: 10 * gib, CanBlock: true, Need: true }]);
      assert.equal((JSON.parse(String(source?.['SystemInfo'])) as { hostname: string }).hostname, 'test-host');
      const count = async (filter: Params): Promise<number> => Number((await client.request('DescribeSourceServers', filter))['TotalCount']);
      assert.equal(await count({ SourceId: [basic, wide, centos] }), 3);
      assert.equal(await count({ Name: 'wide-source' }), 1);
      assert.equal(await count({ SourceId: [basic, wide, centos], State: 'Available' }), 3);
      assert.equal(await count({ SourceId: [basic, wide, centos], State: 'Unavailable' }), 0);
      assert.equal(await count({ ResourceGroupId: 'rg-none' }), 0);
      const firstPage = await client.request('DescribeSourceServers', { PageSize: 1, PageNumber: 2 });
      assert.equal(list(firstPage, 'SourceServers', 'SourceServer').length, 1);
      // Full pages and pages past the end count every source; a short last page ends the list.
      const all = await client.request('DescribeSourceServers', { PageSize: 50 });
      const total = list(all, 'SourceServers', 'SourceServer').length;
      assert.ok(total >= 3);
      assert.equal(Number(all['TotalCount']), total);
      assert.equal(Number(firstPage['TotalCount']), total);
      const beyond = await client.request('DescribeSourceServers', { PageSize: 50, PageNumber: 1000 });
      assert.deepEqual([list(beyond, 'SourceServers', 'SourceServer').length, Number(beyond['TotalCount'])], [0, total]);
      const lastPage = await client.request('DescribeSourceServers', { PageSize: total - 1, PageNumber: 2 });
      assert.deepEqual([list(lastPage, 'SourceServers', 'SourceServer').length, Number(lastPage['TotalCount'])], [1, total]);
      await rejectsWith(client.request('DescribeSourceServers', { PageSize: 0 }), 'InvalidParameter', /PageSize/);
      await rejectsWith(client.request('DescribeSourceServers', { State: 'Asleep' }), 'InvalidParameter', /State/);
      await rejectsWith(client.request('DescribeSourceServers', { SourceId: Array.from({ length: 51 }, (_, i) => `s-${i}`) }), 'InvalidParameter', /SourceId/);

      const doomedName = unique('doomed');
      const doomed = await contractSource(ferry, ferry.key, doomedName, machineFacts([10 * gib]));
      assert.equal((await describeSource(client, doomed))?.['Name'], doomedName);
      await client.request('ModifySourceServerAttribute', { SourceId: doomed, Name: 'ab', Description: 'd'.repeat(256) });
      const renamed = await describeSource(client, doomed);
      assert.deepEqual([renamed?.['Name'], renamed?.['Description']], ['ab', 'd'.repeat(256)], 'a changed source reads changed on the next call');
      await client.request('ModifySourceServerAttribute', { SourceId: doomed, Name: `n${'x'.repeat(127)}` });
      assert.equal((await describeSource(client, doomed))?.['Name'], `n${'x'.repeat(127)}`);
      await rejectsWith(client.request('ModifySourceServerAttribute', { SourceId: doomed, Name: 'a' }), 'InvalidParameter', /Name/);
      await rejectsWith(client.request('ModifySourceServerAttribute', { SourceId: doomed, Name: `n${'x'.repeat(128)}` }), 'InvalidParameter', /Name/);
      await rejectsWith(client.request('ModifySourceServerAttribute', { SourceId: doomed, Description: 'd'.repeat(257) }), 'InvalidParameter', /Description/);
      await rejectsWith(client.request('ModifySourceServerAttribute', { SourceId: doomed, Name: 'plain-source' }), 'SourceServerName.Duplicate');
      await rejectsWith(client.request('ModifySourceServerAttribute', { SourceId: 's-nosuch', Name: 'abc' }), 'InvalidSourceId.NotFound');
      assert.equal((await describeSource(client, doomed))?.['JobId'], '');
      const { JobId } = (await client.request('CreateReplicationJob', imageJob({ SourceId: doomed, SystemDiskSize: 20 }))) as { JobId: string };
      assert.equal(await count({ JobId }), 1);
      const withJob = await describeSource(client, doomed);
      assert.deepEqual([withJob?.['JobId'], withJob?.State], [JobId, 'InUse'], 'a source shows its newest job, and is in use while it is active');
      assert.equal(await count({ SourceId: [doomed], RelatedJobType: ['0'] }), 1);
      assert.equal(await count({ SourceId: [doomed], RelatedJobType: ['1'] }), 0);
      assert.equal(await count({ SourceId: [doomed], State: 'InUse' }), 1);
      await rejectsWith(client.request('DeleteSourceServer', { SourceId: doomed }), 'ReplicationJob.Related', new RegExp(JobId));
      await client.request('DeleteSourceServer', { SourceId: doomed, Force: true });
      await rejectsWith(client.request('DeleteSourceServer', { SourceId: doomed, Force: true }), 'SourceServerState.Invalid', /Deleting/).catch(async () => {
        // The cleanup may already have removed it.
        await rejectsWith(client.request('DeleteSourceServer', { SourceId: doomed }), 'InvalidSourceId.NotFound');
      });
      await waitFor('the source and its job to go', async () => ((await count({ SourceId: [doomed] })) === 0 && (await describeJob(client, JobId)) === undefined ? true : undefined));
    });

    it('workgroups: create (ClientToken), describe with status and warnings, associate up to 50 sources, the limits, delete only when empty', async () => {
      const key = keys.groups;
      const theirs = popClient(ferry.server.url, key);
      const created = await theirs.request('CreateWorkgroup', { Name: 'wave-1', Description: 'first wave', Tag: [{ Key: 'team', Value: 'db' }], ClientToken: 'wg-token' });
      const workgroupId = String(created['WorkgroupId']);
      assert.match(workgroupId, /^w-/);
      assert.equal((await theirs.request('CreateWorkgroup', { Name: 'wave-1', Description: 'first wave', Tag: [{ Key: 'team', Value: 'db' }], ClientToken: 'wg-token' }))['WorkgroupId'], workgroupId);
      const sources: string[] = [];
      for (let i = 0; i < 51; i += 1) sources.push(await contractSource(ferry, key, `member-${i}`, machineFacts([10 * gib])));
      await theirs.request('AssociateSourceServers', { WorkgroupId: workgroupId, SourceId: sources.slice(0, 50) });
      await rejectsWith(theirs.request('AssociateSourceServers', { WorkgroupId: workgroupId, SourceId: [sources[50]] }), 'QuotaExceeded.WorkgroupSourceServer');
      const second = String((await theirs.request('CreateWorkgroup', { Name: 'wave-2' }))['WorkgroupId']);
      await rejectsWith(theirs.request('AssociateSourceServers', { WorkgroupId: second, SourceId: [sources[0]] }), 'SourceServer.InOtherWorkgroup', new RegExp(workgroupId));
      await rejectsWith(theirs.request('AssociateSourceServers', { WorkgroupId: second, SourceId: ['s-nosuch'] }), 'InvalidSourceId.NotFound');
      await rejectsWith(theirs.request('AssociateSourceServers', { WorkgroupId: 'w-nosuch', SourceId: [sources[50]] }), 'InvalidWorkgroupId.NotFound');
      const job = (await theirs.request('CreateReplicationJob', { RegionId: 'cn-hangzhou', SourceId: sources[0], ImageName: 'wg-image', SystemDiskSize: 20 })) as { JobId: string };
      await theirs.request('StartReplicationJob', { JobId: job.JobId });
      const described = await theirs.request('DescribeWorkgroups', { WorkgroupId: [workgroupId] });
      const group = list<Record<string, unknown>>(described, 'Workgroups', 'Workgroup')[0];
      assert.deepEqual([group?.['Name'], group?.['Description'], group?.['Status']], ['wave-1', 'first wave', 'InProgress']);
      assert.deepEqual(plain(group?.['Tags']), { Tag: [{ Key: 'team', Value: 'db' }] });
      const warnings = (group?.['Warnings'] as { Warning: Array<{ WarningType: string; SourceIds: { SourceId: string[] } }> }).Warning;
      assert.deepEqual(warnings.map((w) => [w.WarningType, w.SourceIds.SourceId.length]), [['UnRelated', 49]]);
      assert.equal((await describeSource(theirs, sources[0] ?? ''))?.['WorkgroupId'], workgroupId);
      assert.equal((await theirs.request('DescribeWorkgroups', { Status: 'NotStarted' }))['TotalCount'], 1);
      assert.equal((await theirs.request('DescribeWorkgroups', { Name: 'wave-2' }))['TotalCount'], 1);
      assert.equal((await theirs.request('DescribeWorkgroups', { Tag: [{ Key: 'team', Value: 'db' }] }))['TotalCount'], 1);
      assert.equal(Number((await theirs.request('DescribeSourceServers', { WorkgroupId: workgroupId, PageSize: 50 }))['TotalCount']), 50);
      const paged = await theirs.request('DescribeWorkgroups', { PageSize: 1, PageNumber: 2 });
      assert.deepEqual([paged['TotalCount'], list(paged, 'Workgroups', 'Workgroup').length], [2, 1]);
      await rejectsWith(theirs.request('DeleteWorkgroup', { WorkgroupId: workgroupId }), 'Workgroup.NotEmpty');
      await theirs.request('ModifyWorkgroupAttribute', { WorkgroupId: workgroupId, Name: 'wave-one', Description: 'renamed' });
      await rejectsWith(theirs.request('ModifyWorkgroupAttribute', { WorkgroupId: workgroupId, Name: 'w' }), 'InvalidParameter', /Name/);
      await theirs.request('DisassociateSourceServers', { WorkgroupId: workgroupId, SourceId: sources.slice(0, 50) });
      await theirs.request('DeleteWorkgroup', { WorkgroupId: workgroupId });
      await rejectsWith(theirs.request('DeleteWorkgroup', { WorkgroupId: workgroupId }), 'InvalidWorkgroupId.NotFound');
      for (let i = 2; i < 50; i += 1) await theirs.request('CreateWorkgroup', { Name: `wave-${i + 1}` });
      await theirs.request('CreateWorkgroup', { Name: 'wave-50' });
      await rejectsWith(theirs.request('CreateWorkgroup', { Name: 'wave-51' }), 'QuotaExceeded.Workgroup');
    });

    it('tags: TagResources, ListTagResources with NextToken, UntagResources, and their codes', async () => {
      const key = keys.tags;
      const theirs = popClient(ferry.server.url, key);
      const ids: string[] = [];
      for (let i = 0; i < 3; i += 1) ids.push(await contractSource(ferry, key, `tagged-${i}`, machineFacts([10 * gib])));
      const tags = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ Key: `key-${String(from + i).padStart(2, '0')}`, Value: `value-${from + i}` }));
      await theirs.request('TagResources', { ResourceType: 'sourceserver', ResourceId: ids, Tag: tags(0, 20) });
      await rejectsWith(theirs.request('TagResources', { ResourceType: 'sourceserver', ResourceId: [ids[0]], Tag: tags(20, 1) }), 'NumberExceed.Tags');
      await theirs.request('TagResources', { ResourceType: 'sourceserver', ResourceId: [ids[0]], Tag: [{ Key: 'key-00', Value: 'changed' }] });
      const first = await theirs.request('ListTagResources', { ResourceType: 'sourceserver', ResourceId: ids });
      const page1 = list<Record<string, string>>(first, 'TagResources', 'TagResource');
      assert.equal(page1.length, 50);
      assert.deepEqual(plain(page1[0]), { ResourceId: [...ids].sort()[0], ResourceType: 'ALIYUN::SMC::SOURCESERVER', TagKey: 'key-00', TagValue: [...ids].sort()[0] === ids[0] ? 'changed' : 'value-0' });
      assert.notEqual(first['NextToken'], '');
      const second = await theirs.request('ListTagResources', { ResourceType: 'sourceserver', ResourceId: ids, NextToken: first['NextToken'] });
      assert.equal(list(second, 'TagResources', 'TagResource').length, 10);
      assert.equal(second['NextToken'], '');
      const filtered = await theirs.request('ListTagResources', { ResourceType: 'sourceserver', Tag: [{ Key: 'key-00', Value: 'changed' }] });
      assert.deepEqual(new Set(list<Record<string, string>>(filtered, 'TagResources', 'TagResource').map((t) => t['ResourceId'])), new Set([ids[0]]));
      assert.equal(Number((await theirs.request('DescribeSourceServers', { Tag: [{ Key: 'key-05' }] }))['TotalCount']), 3);
      const untagged = await contractSource(ferry, key, 'untagged', machineFacts([10 * gib]));
      const shown = list<Record<string, unknown>>(await theirs.request('DescribeSourceServers', { SourceId: [...ids, untagged] }), 'SourceServers', 'SourceServer');
      const tagsOf = (id: string | undefined) => plain((shown.find((s) => s['SourceId'] === id)?.['Tags'] as { Tag: unknown[] } | undefined)?.Tag);
      assert.deepEqual(tagsOf(untagged), []);
      assert.equal((tagsOf(ids[1]) as unknown[]).length, 20);
      assert.deepEqual((tagsOf(ids[0]) as unknown[])[0], { Key: 'key-00', Value: 'changed' });
      await theirs.request('UntagResources', { ResourceType: 'sourceserver', ResourceId: [ids[1]], TagKey: ['key-01', 'key-02'] });
      await theirs.request('UntagResources', { ResourceType: 'sourceserver', ResourceId: [ids[2]], All: true });
      const remaining = await theirs.request('ListTagResources', { ResourceType: 'sourceserver', ResourceId: [ids[1], ids[2]] });
      assert.equal(list(remaining, 'TagResources', 'TagResource').length, 18);
      const shownAfter = list<Record<string, unknown>>(await theirs.request('DescribeSourceServers', { SourceId: [ids[1], ids[2]] }), 'SourceServers', 'SourceServer');
      assert.deepEqual(
        [ids[1], ids[2]].map((id) => (shownAfter.find((s) => s['SourceId'] === id)?.['Tags'] as { Tag: unknown[] }).Tag.length),
        [18, 0],
        'untagged sources read untagged on the next call',
      );
      await rejectsWith(theirs.request('ListTagResources', {}), 'MissingParameter.ResourceType');
      await rejectsWith(theirs.request('TagResources', { ResourceType: 'disk', ResourceId: ids, Tag: tags(0, 1) }), 'InvalidResourceType.NotFound');
      await rejectsWith(theirs.request('TagResources', { ResourceType: 'sourceserver', ResourceId: Array.from({ length: 51 }, (_, i) => `s-${i}`), Tag: tags(0, 1) }), 'NumberExceed.ResourceIds');
      await rejectsWith(theirs.request('TagResources', { ResourceType: 'sourceserver', ResourceId: [ids[0], ids[0]], Tag: tags(0, 1) }), 'Duplicate.ResourceId');
      await rejectsWith(theirs.request('TagResources', { ResourceType: 'sourceserver', ResourceId: ['s-nosuch'], Tag: tags(0, 1) }), 'InvalidResourceId.NotFound', /s-nosuch/);
      await rejectsWith(theirs.request('TagResources', { ResourceType: 'sourceserver', ResourceId: [ids[0]], Tag: tags(0, 21) }), 'NumberExceed.Tags');
      await rejectsWith(theirs.request('ListTagResources', { ResourceType: 'sourceserver', Tag: [{ Value: 'v' }] }), 'InvalidParameter.TagValue');
      await rejectsWith(theirs.request('UntagResources', { ResourceType: 'sourceserver', ResourceId: [ids[0]], TagKey: ['key-00'], All: true }), 'InvalidParameter', /All/);
      await rejectsWith(theirs.request('ListTagResources', { ResourceType: 'sourceserver', NextToken: 'garbage' }), 'InvalidParameter', /NextToken/);
      const job = (await theirs.request('CreateReplicationJob', { RegionId: 'cn-hangzhou', SourceId: ids[0], ImageName: 'tagged-job', SystemDiskSize: 20 })) as { JobId: string };
      await theirs.request('TagResources', { ResourceType: 'replicationjob', ResourceId: [job.JobId], Tag: [{ Key: 'env', Value: 'prod' }] });
      const jobTags = await theirs.request('ListTagResources', { ResourceType: 'replicationjob', ResourceId: [job.JobId] });
      assert.deepEqual(plain(list(jobTags, 'TagResources', 'TagResource')), [{ ResourceId: job.JobId, ResourceType: 'ALIYUN::SMC::REPLICATIONJOB', TagKey: 'env', TagValue: 'prod' }]);

      // DescribeSourceServers filters: tags with and without values, mixed, and the related job.
      const sourcesWith = async (filter: Params): Promise<string[]> =>
        list<Record<string, unknown>>(await theirs.request('DescribeSourceServers', { PageSize: 50, ...filter }), 'SourceServers', 'SourceServer').map((s) => String(s['SourceId']));
      assert.deepEqual(await sourcesWith({ Tag: [{ Key: 'key-00', Value: 'changed' }] }), [ids[0]]);
      assert.deepEqual(await sourcesWith({ Tag: [{ Key: 'key-03' }, { Key: 'key-00', Value: 'value-0' }] }), [ids[1]]);
      assert.deepEqual(await sourcesWith({ Tag: [{ Key: 'key-00', Value: 'value-0' }, { Key: 'key-01' }] }), []);
      assert.deepEqual(await sourcesWith({ Tag: [{ Key: 'key-01' }, { Key: 'key-04', Value: 'value-4' }] }), [ids[0]]);
      assert.deepEqual(await sourcesWith({ JobId: job.JobId }), [ids[0]]);
      assert.deepEqual(await sourcesWith({ RelatedJobType: ['0'] }), [ids[0]]);
      assert.deepEqual(await sourcesWith({ RelatedJobType: ['1', '3'] }), []);
      assert.deepEqual(await sourcesWith({ SourceId: ids, State: 'InUse' }), [ids[0]]);
      assert.deepEqual((await sourcesWith({ SourceId: ids, State: 'Available' })).sort(), [ids[1], ids[2]].sort());
    });

    it('another account\'s key finds none of these resources', async () => {
      const stranger = popClient(ferry.server.url, keys.stranger);
      const { JobId } = (await client.request('CreateReplicationJob', imageJob())) as { JobId: string };
      assert.equal((await stranger.request('DescribeReplicationJobs', { JobId: [JobId] }))['TotalCount'], 0);
      assert.equal((await stranger.request('DescribeSourceServers', { SourceId: [basic] }))['TotalCount'], 0);
      for (const action of ['StartReplicationJob', 'StopReplicationJob', 'DeleteReplicationJob', 'CutOverReplicationJob']) await rejectsWith(stranger.request(action, { JobId }), 'InvalidJobId.NotFound');
      await rejectsWith(stranger.request('ModifyReplicationJobAttribute', { JobId, Name: 'mine-now' }), 'InvalidJobId.NotFound');
      await rejectsWith(stranger.request('CreateReplicationJob', imageJob()), 'InvalidSourceId.NotFound');
      await rejectsWith(stranger.request('ModifySourceServerAttribute', { SourceId: basic, Name: 'mine-now' }), 'InvalidSourceId.NotFound');
      await rejectsWith(stranger.request('DeleteSourceServer', { SourceId: basic, Force: true }), 'InvalidSourceId.NotFound');
      await rejectsWith(stranger.request('TagResources', { ResourceType: 'replicationjob', ResourceId: [JobId], Tag: [{ Key: 'k', Value: 'v' }] }), 'InvalidResourceId.NotFound');
      assert.equal((await describeJob(client, JobId))?.Status, 'Ready', 'nothing the stranger tried changed the job');
      await client.request('DeleteReplicationJob', { JobId });
    });
  });
}

