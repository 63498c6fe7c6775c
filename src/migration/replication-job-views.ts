import type { ReplicationJobRunTable, ReplicationJobTable } from '../store/schema-smc.ts';
import { settingsOf } from './replication-job-rows.ts';
import { businessStatusOf, statusOf } from './replication-job-states.ts';
import { jobState } from './replication-job-rows.ts';
import type { Tag } from './tags.ts';
import { isoUtc } from './validation.ts';

export interface PartView {
  readonly device: string;
  readonly sizeBytes: number;
  readonly block: boolean;
}

export interface DataDiskView {
  readonly index: number;
  /** GiB. */
  readonly size: number;
  readonly parts: readonly PartView[];
}

export interface RunView {
  readonly imageId: string;
  readonly startTime: string;
  readonly endTime: string;
  /** Manual | Schedule. */
  readonly type: string;
}

/** A replication job as DescribeReplicationJobs reports it; field names are the API's, camel-cased. */
export interface ReplicationJobView {
  readonly jobId: string;
  readonly name: string;
  readonly description: string;
  readonly sourceId: string;
  readonly regionId: string;
  readonly jobType: number;
  readonly targetType: string;
  readonly status: string;
  readonly businessStatus: string;
  readonly statusInfo: string;
  readonly errorCode: string;
  /** 0-100. */
  readonly progress: number;
  readonly creationTime: string;
  readonly startTime: string;
  readonly endTime: string;
  readonly scheduledStartTime: string;
  readonly validTime: string;
  readonly imageId: string;
  readonly imageName: string;
  readonly instanceId: string;
  /** Ferry streams straight into the image store; there is no intermediate instance. */
  readonly transitionInstanceId: string;
  readonly instanceType: string;
  readonly instanceRamRole: string;
  readonly launchTemplateId: string;
  readonly launchTemplateVersion: string;
  readonly licenseType: string;
  readonly netMode: number;
  readonly vpcId: string;
  readonly vSwitchId: string;
  readonly replicationParameters: string;
  readonly runOnce: boolean;
  /** Hours; 0 for a run-once job. */
  readonly frequency: number;
  readonly maxNumberOfImageToKeep: number;
  /** GiB; 0 when not set. */
  readonly systemDiskSize: number;
  readonly containerNamespace: string;
  readonly containerRepository: string;
  readonly containerTag: string;
  readonly resourceGroupId: string;
  readonly workgroupId: string;
  readonly systemDiskParts: readonly PartView[];
  readonly dataDisks: readonly DataDiskView[];
  readonly replicationJobRuns: readonly RunView[];
  readonly tags: readonly Tag[];
}

const timeOrEmpty = (ms: number | null): string => (ms === null ? '' : isoUtc(Number(ms)));

/** A job row with its runs (in order), tags and its source's workgroup, as the API reports it. */
export function replicationJobView(row: ReplicationJobTable, runs: readonly ReplicationJobRunTable[], tags: readonly Tag[], workgroupId: string): ReplicationJobView {
  const settings = settingsOf(row);
  const state = jobState(row);
  return {
    jobId: row.id,
    name: row.name,
    description: row.description,
    sourceId: row.source_id,
    regionId: row.region_id,
    jobType: Number(row.job_type),
    targetType: row.target_type,
    status: statusOf(state),
    businessStatus: businessStatusOf(state),
    statusInfo: row.status_info,
    errorCode: row.error_code,
    progress: Number(row.progress),
    creationTime: isoUtc(Number(row.created_at)),
    startTime: timeOrEmpty(row.start_time),
    endTime: timeOrEmpty(row.end_time),
    scheduledStartTime: timeOrEmpty(row.scheduled_start_time),
    validTime: timeOrEmpty(row.valid_time),
    imageId: row.image_id,
    imageName: row.image_name,
    instanceId: row.instance_id,
    transitionInstanceId: '',
    instanceType: row.instance_type,
    instanceRamRole: row.instance_ram_role,
    launchTemplateId: row.launch_template_id,
    launchTemplateVersion: row.launch_template_version,
    licenseType: row.license_type,
    netMode: settings.netMode,
    vpcId: row.vpc_id,
    vSwitchId: row.vswitch_id,
    replicationParameters: row.replication_parameters,
    runOnce: settings.runOnce,
    frequency: settings.frequencyHours ?? 0,
    maxNumberOfImageToKeep: settings.maxImages ?? 0,
    systemDiskSize: settings.systemDiskSizeGib ?? 0,
    containerNamespace: row.container_namespace,
    containerRepository: row.container_repository,
    containerTag: row.container_tag,
    resourceGroupId: row.resource_group_id,
    workgroupId,
    systemDiskParts: settings.systemDiskParts,
    dataDisks: settings.dataDisks.map((d) => ({ index: d.index, size: d.sizeGib, parts: d.parts })),
    replicationJobRuns: runs.map((r) => ({ imageId: r.image_id, startTime: isoUtc(Number(r.start_time)), endTime: timeOrEmpty(r.end_time), type: r.type })),
    tags,
  };
}
