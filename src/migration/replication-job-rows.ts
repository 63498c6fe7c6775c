import { AppError } from '../core/errors.ts';
import type { Trx } from '../engine/job-store.ts';
import type { Db } from '../store/database.ts';
import type { ReplicationJobTable } from '../store/schema-smc.ts';
import type { JobSettings, StoredDataDisk, StoredPart, TargetType } from './replication-job-params.ts';
import { type ReplicationJobEvent, type ReplicationJobState, allowedStatusesFor, describeState, isReplicationJobState, replicationJobMachine } from './replication-job-states.ts';

/** A job row of the caller's account, or InvalidJobId.NotFound: another account's job is not found, never shown. */
export async function requireJob(db: Db | Trx, accountId: string, jobId: string): Promise<ReplicationJobTable> {
  const row = await db.selectFrom('replication_jobs').selectAll().where('id', '=', jobId).where('account_id', '=', accountId).executeTakeFirst();
  if (row === undefined) throw new AppError('InvalidJobIdNotFound', { jobId });
  return row;
}

/** The row's state, which the table must know. */
export function jobState(row: ReplicationJobTable): ReplicationJobState {
  if (!isReplicationJobState(row.state)) throw new Error(`replication job ${row.id} has the unknown state ${row.state}`);
  return row.state;
}

/** The state `event` leads to from the row's state, or ReplicationJob.InvalidStatus naming the states it needs. */
export function nextState(row: ReplicationJobTable, event: ReplicationJobEvent): ReplicationJobState {
  const from = jobState(row);
  const to = replicationJobMachine.next(from, event);
  if (to === undefined) throw new AppError('ReplicationJobInvalidStatus', { status: describeState(from), allowed: allowedStatusesFor(event), jobId: row.id });
  return to;
}

/**
 * Move the job along `event` with `changes`, as one conditional UPDATE on the state it was read
 * in: a concurrent change in between makes this refuse (InvalidStatus) instead of overwriting it.
 */
export async function transition(
  trx: Trx,
  row: ReplicationJobTable,
  event: ReplicationJobEvent,
  nowMs: number,
  changes: Partial<ReplicationJobTable> = {},
): Promise<ReplicationJobTable> {
  const to = nextState(row, event);
  const updated = await trx
    .updateTable('replication_jobs')
    .set({ ...changes, state: to, updated_at: nowMs })
    .where('id', '=', row.id)
    .where('state', '=', row.state)
    .returningAll()
    .executeTakeFirst();
  if (updated === undefined) {
    const now = await trx.selectFrom('replication_jobs').select('state').where('id', '=', row.id).executeTakeFirst();
    const status = now === undefined ? 'Deleted' : isReplicationJobState(now.state) ? describeState(now.state) : now.state;
    throw new AppError('ReplicationJobInvalidStatus', { status, allowed: allowedStatusesFor(event), jobId: row.id });
  }
  return updated;
}

/** The job's settings as JobSettings, to lay a Modify over them. */
export function settingsOf(row: ReplicationJobTable): JobSettings {
  return {
    name: row.name,
    description: row.description,
    targetType: row.target_type as TargetType,
    scheduledStartTimeMs: row.scheduled_start_time === null ? null : Number(row.scheduled_start_time),
    validTimeMs: Number(row.valid_time),
    imageName: row.image_name,
    instanceId: row.instance_id,
    systemDiskSizeGib: row.system_disk_size_gib === null ? null : Number(row.system_disk_size_gib),
    systemDiskParts: JSON.parse(row.system_disk_parts) as StoredPart[],
    dataDisks: JSON.parse(row.data_disks) as StoredDataDisk[],
    netMode: Number(row.net_mode),
    vpcId: row.vpc_id,
    vSwitchId: row.vswitch_id,
    replicationParameters: row.replication_parameters,
    runOnce: Number(row.run_once) === 1,
    frequencyHours: row.frequency_hours === null ? null : Number(row.frequency_hours),
    maxImages: row.max_images === null ? null : Number(row.max_images),
    instanceType: row.instance_type,
    launchTemplateId: row.launch_template_id,
    launchTemplateVersion: row.launch_template_version,
    instanceRamRole: row.instance_ram_role,
    licenseType: row.license_type,
    containerNamespace: row.container_namespace,
    containerRepository: row.container_repository,
    containerTag: row.container_tag,
  };
}

/** The row columns that hold a job's settings. */
export function settingsColumns(s: JobSettings): Partial<ReplicationJobTable> {
  return {
    name: s.name,
    description: s.description,
    target_type: s.targetType,
    scheduled_start_time: s.scheduledStartTimeMs,
    valid_time: s.validTimeMs,
    image_name: s.imageName,
    instance_id: s.instanceId,
    system_disk_size_gib: s.systemDiskSizeGib,
    system_disk_parts: JSON.stringify(s.systemDiskParts),
    data_disks: JSON.stringify(s.dataDisks),
    net_mode: s.netMode,
    vpc_id: s.vpcId,
    vswitch_id: s.vSwitchId,
    replication_parameters: s.replicationParameters,
    run_once: s.runOnce ? 1 : 0,
    frequency_hours: s.frequencyHours,
    max_images: s.maxImages,
    instance_type: s.instanceType,
    launch_template_id: s.launchTemplateId,
    launch_template_version: s.launchTemplateVersion,
    instance_ram_role: s.instanceRamRole,
    license_type: s.licenseType,
    container_namespace: s.containerNamespace,
    container_repository: s.containerRepository,
    container_tag: s.containerTag,
  };
}
