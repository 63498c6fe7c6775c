/**
 * SMC cross-zone migration (smc-CreateCrossZoneMigrationJob.txt): an ECS instance moves to another
 * zone of its region, optionally to another type of its family and with its disks changed to ESSD
 * at a performance level; it keeps its id and its data, and runs again if it ran. The move is an
 * instance move (instance-move.ts); this file holds SMC's rules and the job's view as
 * DescribeReplicationJobs lists it (JobType 2).
 */
import { AppError, errorCatalogue, isAppError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { type InstanceMoveView, type MoveState, listInstanceMoves, startInstanceMove } from './instance-move.ts';
import { type Page, idFilter, pageWindow } from './paging.ts';
import type { ReplicationJobView } from './replication-job-views.ts';
import type { ServiceContext } from './service-context.ts';
import { isoUtc } from './validation.ts';

export const crossZoneOrigin = 'smc-cross-zone';

/** DescribeReplicationJobs' JobType of a cross-zone job. */
export const crossZoneJobType = 2;

export interface CrossZoneDiskInput {
  readonly diskId?: string | undefined;
  /** `cloud_essd` (or another category Ferry knows). */
  readonly category?: string | undefined;
  /** PL0–PL3, for cloud_essd. */
  readonly performanceLevel?: string | undefined;
}

export interface CrossZoneJobInput {
  readonly regionId: string;
  readonly instanceId?: string | undefined;
  readonly targetZoneId?: string | undefined;
  readonly targetVSwitchId?: string | undefined;
  readonly targetInstanceType?: string | undefined;
  /** Default true. Ferry bills nothing: recorded and shown, it changes nothing. */
  readonly autoPay?: boolean | undefined;
  readonly resourceGroupId?: string | undefined;
  readonly disks?: readonly CrossZoneDiskInput[] | undefined;
}

/** Start a cross-zone job; answers its `j-…` id. ClientToken idempotency is the front door's. */
export async function createCrossZoneMigrationJob(ctx: ServiceContext, input: CrossZoneJobInput): Promise<{ jobId: string }> {
  if (input.instanceId === undefined || input.instanceId === '') throw new AppError('MissingParameter', { name: 'InstanceId' });
  const instance = await ctx.database.db
    .selectFrom('instances as i')
    .innerJoin('hosts as h', 'h.id', 'i.host_id')
    .innerJoin('zones as z', 'z.id', 'h.zone_id')
    .select(['i.id', 'i.status', 'z.region_id'])
    .where('i.id', '=', input.instanceId)
    .where('i.account_id', '=', ctx.accountId)
    .executeTakeFirst();
  if (instance === undefined || instance.region_id !== input.regionId) {
    throw new AppError('InvalidInstanceIdNotFound', { instanceId: input.instanceId, regionId: input.regionId });
  }
  const diskChanges = (input.disks ?? []).map((disk, index) => {
    if (disk.diskId === undefined || disk.diskId === '') throw new AppError('MissingParameter', { name: `Disk.${index + 1}.DiskId` });
    return {
      diskId: disk.diskId,
      ...(disk.category === undefined ? {} : { category: disk.category }),
      ...(disk.performanceLevel === undefined ? {} : { performanceLevel: disk.performanceLevel }),
    };
  });
  try {
    const move = await startInstanceMove(ctx, {
      instanceId: instance.id,
      origin: crossZoneOrigin,
      moveId: newId('j'),
      ...(input.targetZoneId === undefined ? {} : { targetZoneId: input.targetZoneId }),
      ...(input.targetVSwitchId === undefined ? {} : { targetVSwitchId: input.targetVSwitchId }),
      ...(input.targetInstanceType === undefined ? {} : { targetInstanceType: input.targetInstanceType }),
      diskChanges,
      attributes: { AutoPay: input.autoPay ?? true, ResourceGroupId: input.resourceGroupId ?? '' },
    });
    return { jobId: move.moveId };
  } catch (err) {
    // SMC documents its state refusal as SourceServerState.Invalid: the instance is this job's source.
    if (isAppError(err) && err.code === 'InstanceStatusInvalid') {
      throw new AppError('SourceServerStateInvalid', { state: String(err.params['status']), allowed: 'Running, Stopped (with no migration under way)' }, { cause: err });
    }
    throw err;
  }
}

const statusOfState: Record<MoveState, string> = { queued: 'Running', running: 'Running', succeeded: 'Finished', failed: 'InError' };

/** Running jobs say what they do: Preparing (claim, stop), Syncing (copy), Processing (switch, start), Cleaning (roll back). */
function businessStatusOf(move: InstanceMoveView): string {
  if (move.state !== 'queued' && move.state !== 'running') return '';
  switch (move.phase) {
    case 'copying':
      return 'Syncing';
    case 'switching':
    case 'starting':
    case 'done':
      return 'Processing';
    case 'rolling-back':
      return 'Cleaning';
    case 'preparing':
    case 'stopping':
      return 'Preparing';
  }
}

const timeOrEmpty = (ms: number | null): string => (ms === null ? '' : isoUtc(ms));

/** A cross-zone job as DescribeReplicationJobs reports a replication job. */
export function crossZoneJobView(move: InstanceMoveView): ReplicationJobView {
  const plan = move.plan;
  const resourceGroupId = plan.attributes['ResourceGroupId'];
  return {
    jobId: move.moveId,
    name: '',
    description: '',
    sourceId: '',
    regionId: plan.regionId,
    jobType: crossZoneJobType,
    targetType: 'TargetInstance',
    status: statusOfState[move.state],
    businessStatus: businessStatusOf(move),
    statusInfo: move.state === 'failed' ? (move.errorMessage ?? '') : '',
    errorCode: move.errorCode === null ? '' : errorCatalogue[move.errorCode].alibabaCode,
    progress: move.progressPercent,
    creationTime: isoUtc(move.createdAtMs),
    startTime: timeOrEmpty(move.startedAtMs),
    endTime: timeOrEmpty(move.finishedAtMs),
    scheduledStartTime: '',
    validTime: '',
    imageId: '',
    imageName: '',
    instanceId: move.instanceId,
    transitionInstanceId: '',
    instanceType: plan.instanceType,
    instanceRamRole: '',
    launchTemplateId: '',
    launchTemplateVersion: '',
    licenseType: '',
    netMode: 2,
    vpcId: plan.vpcId,
    vSwitchId: plan.vSwitchId,
    replicationParameters: '',
    runOnce: true,
    frequency: 0,
    maxNumberOfImageToKeep: 0,
    systemDiskSize: 0,
    containerNamespace: '',
    containerRepository: '',
    containerTag: '',
    resourceGroupId: typeof resourceGroupId === 'string' ? resourceGroupId : '',
    workgroupId: '',
    systemDiskParts: [],
    dataDisks: [],
    replicationJobRuns: [],
    tags: [],
  };
}

/** SMC Status → the move states it covers; an SMC status no cross-zone job ever has covers none. */
const statesOfStatus: Readonly<Record<string, readonly MoveState[]>> = { Running: ['queued', 'running'], Finished: ['succeeded'], InError: ['failed'] };

export interface CrossZoneJobFilter {
  readonly jobIds?: readonly string[] | undefined;
  readonly instanceIds?: readonly string[] | undefined;
  /** An SMC job Status (Running, Finished, InError, ...); empty: any. */
  readonly status?: string | undefined;
  readonly pageNumber?: number | undefined;
  readonly pageSize?: number | undefined;
}

/**
 * The caller's cross-zone jobs as DescribeReplicationJobs items (JobType 2), newest first; the
 * same page shape as describeReplicationJobs, so both lists can be merged.
 */
export async function describeCrossZoneJobs(ctx: ServiceContext, filter: CrossZoneJobFilter): Promise<Page<ReplicationJobView>> {
  const { pageNumber, pageSize } = pageWindow(filter);
  const jobIds = idFilter('JobId', filter.jobIds);
  const instanceIds = idFilter('InstanceId', filter.instanceIds);
  const status = filter.status === undefined || filter.status === '' ? undefined : filter.status;
  const page = await listInstanceMoves(ctx, {
    origin: crossZoneOrigin,
    ...(jobIds === undefined ? {} : { moveIds: jobIds }),
    ...(instanceIds === undefined ? {} : { instanceIds }),
    ...(status === undefined ? {} : { states: statesOfStatus[status] ?? [] }),
    pageNumber,
    pageSize,
  });
  return { pageNumber, pageSize, totalCount: page.totalCount, items: page.items.map(crossZoneJobView) };
}
