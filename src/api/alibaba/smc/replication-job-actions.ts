/** SMC replication job actions (smc-CreateReplicationJob.txt, smc-api.md §5). Translation only: the rules are in src/migration/replication-*.ts. */
import { type Static, Type } from 'typebox';
import { cutOverReplicationJob, startReplicationJob, stopReplicationJob } from '../../../migration/replication-job-actions.ts';
import type { DataDiskInput, JobSettingsInput, PartInput } from '../../../migration/replication-job-params.ts';
import type { PartView, ReplicationJobView } from '../../../migration/replication-job-views.ts';
import { createReplicationJob, deleteReplicationJob, describeReplicationJobs, modifyReplicationJobAttribute } from '../../../migration/replication-jobs.ts';
import type { ServiceContext } from '../../../migration/service-context.ts';
import { popAction } from '../action-registry.ts';
import { idList, pageParams, pageWire, pascalKeys, tagFilters, tagList, tagsWire, text } from './smc-wire.ts';

const jobArn = (account: string, jobId: string): string => `acs:smc:*:${account}:replicationjob/${jobId}`;
const sourceArn = (account: string, sourceId: string): string => `acs:smc:*:${account}:sourceserver/${sourceId}`;

const partList = Type.Optional(
  Type.Array(Type.Object({ SizeBytes: Type.Optional(Type.Integer()), Block: Type.Optional(Type.Boolean()), Device: text(64) }), { maxItems: 1000 }),
);
const dataDiskList = Type.Optional(Type.Array(Type.Object({ Index: Type.Optional(Type.Integer()), Size: Type.Optional(Type.Integer()), Part: partList }), { maxItems: 1000 }));

/** The params Create and Modify share: the job's settings. */
const settingsParams = {
  Name: text(),
  Description: text(),
  TargetType: text(32),
  ScheduledStartTime: text(64),
  ValidTime: text(64),
  ImageName: text(),
  InstanceId: text(128),
  SystemDiskSize: Type.Optional(Type.Integer()),
  VpcId: text(128),
  VSwitchId: text(128),
  ReplicationParameters: text(4096),
  NetMode: Type.Optional(Type.Integer()),
  Frequency: Type.Optional(Type.Integer()),
  MaxNumberOfImageToKeep: Type.Optional(Type.Integer()),
  InstanceType: text(128),
  LaunchTemplateId: text(128),
  LaunchTemplateVersion: text(32),
  InstanceRamRole: text(128),
  ContainerNamespace: text(128),
  ContainerRepository: text(128),
  ContainerTag: text(256),
  DataDisk: dataDiskList,
  SystemDiskPart: partList,
};
/** The decoded settings params, as Type.Object(settingsParams) would give them. */
type SettingsParams = { [K in keyof typeof settingsParams]?: Static<(typeof settingsParams)[K]> };

function parts(list: Static<typeof partList> | undefined): PartInput[] | undefined {
  return list?.map((p) => ({ device: p.Device, sizeBytes: p.SizeBytes, block: p.Block }));
}

function dataDisks(list: Static<typeof dataDiskList> | undefined): DataDiskInput[] | undefined {
  return list?.map((d) => ({ index: d.Index, size: d.Size, parts: parts(d.Part) }));
}

function settingsInput(p: SettingsParams): JobSettingsInput {
  return {
    name: p.Name,
    description: p.Description,
    targetType: p.TargetType,
    scheduledStartTime: p.ScheduledStartTime,
    validTime: p.ValidTime,
    imageName: p.ImageName,
    instanceId: p.InstanceId,
    systemDiskSize: p.SystemDiskSize,
    vpcId: p.VpcId,
    vSwitchId: p.VSwitchId,
    replicationParameters: p.ReplicationParameters,
    netMode: p.NetMode,
    frequency: p.Frequency,
    maxNumberOfImageToKeep: p.MaxNumberOfImageToKeep,
    instanceType: p.InstanceType,
    launchTemplateId: p.LaunchTemplateId,
    launchTemplateVersion: p.LaunchTemplateVersion,
    instanceRamRole: p.InstanceRamRole,
    containerNamespace: p.ContainerNamespace,
    containerRepository: p.ContainerRepository,
    containerTag: p.ContainerTag,
    dataDisks: dataDisks(p.DataDisk),
    systemDiskParts: parts(p.SystemDiskPart),
  };
}

function partsWire(list: readonly PartView[]) {
  return list.map((v) => pascalKeys(v));
}

/** The newer `Disks` layout, mirrored from SystemDiskSize, SystemDiskPart and DataDisk. */
function disksWire(j: ReplicationJobView) {
  const layoutParts = (list: readonly PartView[]) => ({ Part: list.map((p) => ({ Path: '', SizeBytes: p.sizeBytes, Block: p.block })) });
  return {
    System: { DiskId: '', Size: j.systemDiskSize, LVM: false, Parts: layoutParts(j.systemDiskParts) },
    Data: { Data: j.dataDisks.map((d) => ({ DiskId: '', Size: d.size, LVM: false, Parts: layoutParts(d.parts) })) },
  };
}

function jobWire(j: ReplicationJobView): Record<string, unknown> {
  const { systemDiskParts, dataDisks: disks, replicationJobRuns, tags, ...scalars } = j;
  return {
    ...pascalKeys(scalars),
    SystemDiskParts: { SystemDiskPart: partsWire(systemDiskParts) },
    DataDisks: { DataDisk: disks.map((d) => ({ Index: d.index, Size: d.size, Parts: { Part: partsWire(d.parts) } })) },
    Disks: disksWire(j),
    ReplicationJobRuns: { ReplicationJobRun: replicationJobRuns.map((v) => pascalKeys(v)) },
    Tags: tagsWire(tags),
  };
}

/** An action whose only param is JobId and whose answer is RequestId alone. */
function jobVerb(name: string, verb: (ctx: ServiceContext, jobId: string) => Promise<void>) {
  return popAction({
    product: 'smc',
    name,
    params: Type.Object({ JobId: Type.String({ minLength: 1, maxLength: 128 }) }),
    resources: (p, account) => [jobArn(account, p.JobId)],
    handle: async (ctx, p) => {
      await verb(ctx, p.JobId);
      return {};
    },
  });
}

export const replicationJobActions = [
  popAction({
    product: 'smc',
    name: 'CreateReplicationJob',
    summary: 'Create a migration job for an Available source server',
    idempotent: true,
    params: Type.Object({
      RegionId: Type.String({ minLength: 1, maxLength: 64 }),
      ClientToken: Type.Optional(Type.String({ maxLength: 64, pattern: '^[\\x20-\\x7E]*$' })),
      SourceId: Type.String({ minLength: 1, maxLength: 128 }),
      RunOnce: Type.Optional(Type.Boolean()),
      JobType: Type.Optional(Type.Integer()),
      ResourceGroupId: text(128),
      LicenseType: text(32),
      Tag: tagList,
      ...settingsParams,
    }),
    resources: (p, account) => [jobArn(account, '*'), sourceArn(account, p.SourceId)],
    handle: async (ctx, p) => {
      const created = await createReplicationJob(ctx, {
        ...settingsInput(p),
        regionId: p.RegionId,
        sourceId: p.SourceId,
        runOnce: p.RunOnce,
        jobType: p.JobType,
        resourceGroupId: p.ResourceGroupId,
        licenseType: p.LicenseType,
        tags: tagFilters(p.Tag),
      });
      return { JobId: created.jobId };
    },
  }),
  popAction({
    product: 'smc',
    name: 'DescribeReplicationJobs',
    summary: 'List migration jobs with their runs, with paging and filters',
    params: Type.Object({
      RegionId: text(64),
      JobId: idList,
      SourceId: idList,
      InstanceId: idList,
      Name: text(),
      Status: text(32),
      BusinessStatus: text(32),
      JobType: Type.Optional(Type.Integer()),
      ResourceGroupId: text(128),
      Tag: tagList,
      ...pageParams,
    }),
    handle: async (ctx, p) => {
      const page = await describeReplicationJobs(ctx, {
        regionId: p.RegionId,
        jobIds: p.JobId,
        sourceIds: p.SourceId,
        instanceIds: p.InstanceId,
        name: p.Name,
        status: p.Status,
        businessStatus: p.BusinessStatus,
        jobType: p.JobType,
        resourceGroupId: p.ResourceGroupId,
        tags: tagFilters(p.Tag),
        pageNumber: p.PageNumber,
        pageSize: p.PageSize,
      });
      return pageWire(page, 'ReplicationJobs', 'ReplicationJob', jobWire);
    },
  }),
  popAction({
    product: 'smc',
    name: 'ModifyReplicationJobAttribute',
    params: Type.Object({ JobId: Type.String({ minLength: 1, maxLength: 128 }), ...settingsParams }),
    resources: (p, account) => [jobArn(account, p.JobId)],
    handle: async (ctx, p) => {
      await modifyReplicationJobAttribute(ctx, { ...settingsInput(p), jobId: p.JobId });
      return {};
    },
  }),
  jobVerb('StartReplicationJob', startReplicationJob),
  jobVerb('StopReplicationJob', stopReplicationJob),
  jobVerb('DeleteReplicationJob', deleteReplicationJob),
  popAction({
    product: 'smc',
    name: 'CutOverReplicationJob',
    params: Type.Object({ JobId: Type.String({ minLength: 1, maxLength: 128 }), SyncData: Type.Optional(Type.Boolean()) }),
    resources: (p, account) => [jobArn(account, p.JobId)],
    handle: async (ctx, p) => {
      await cutOverReplicationJob(ctx, p.JobId, p.SyncData ?? false);
      return {};
    },
  }),
];
