import type { SourceFacts } from '../core/agent-protocol.ts';
import { AppError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Trx } from '../engine/job-store.ts';
import type { ReplicationJobTable } from '../store/schema-smc.ts';
import { lockAccount } from './account-lock.ts';
import { agentSettings } from './agent-settings.ts';
import { isUniqueViolation } from './db-errors.ts';
import { type Page, type PageRequest, idFilter, pageWindow } from './paging.ts';
import { crossZoneJobsFor, newestFirst } from './replication-job-list.ts';
import { checkFleetRefs } from './replication-job-fleet.ts';
import { type JobSettings, type JobSettingsInput, applySettings, checkAgainstSource, checkSettings, defaultSettings, jobLimits } from './replication-job-params.ts';
import { jobState, requireJob, settingsColumns, settingsOf, transition } from './replication-job-rows.ts';
import {
  type ReplicationJobState,
  businessStatuses,
  describeState,
  replicationJobStatuses,
  statesWithBusinessStatus,
  statesWithStatus,
} from './replication-job-states.ts';
import { type ReplicationJobView, replicationJobView } from './replication-job-views.ts';
import { scheduleSmcJob, smcJobKinds } from './replication-schedules.ts';
import type { ServiceContext } from './service-context.ts';
import { requireSource, requireSourceState } from './source-server-state.ts';
import { type TagFilter, checkTagFilters, checkTags, hasTags, setTags, tagsOf } from './tags.ts';
import { checkFormat } from './validation.ts';

export interface CreateReplicationJobInput extends JobSettingsInput {
  readonly regionId: string;
  readonly sourceId: string;
  readonly runOnce?: boolean | undefined;
  readonly jobType?: number | undefined;
  readonly resourceGroupId?: string | undefined;
  readonly tags?: readonly TagFilter[] | undefined;
}

/** Job types CreateReplicationJob accepts: 0 server migration and 1 OS migration run through the agent. */
const agentJobTypes: Record<number, string | undefined> = {
  0: undefined,
  1: undefined,
  2: 'cross-zone jobs are created with CreateCrossZoneMigrationJob',
  3: 'agentless VMware migration is not offered; register the server with the Ferry agent',
};

function checkJobType(jobType: number): void {
  if (!Number.isInteger(jobType) || !(jobType in agentJobTypes)) throw new AppError('InvalidParameter', { name: 'JobType', reason: 'must be 0, 1, 2 or 3' });
  const refusal = agentJobTypes[jobType];
  if (refusal !== undefined) throw new AppError('InvalidParameter', { name: 'JobType', reason: refusal });
}

/** Names are unique per account; image names per account and region among live jobs. */
async function checkNamesFree(trx: Trx, accountId: string, regionId: string, settings: JobSettings, exceptJobId: string): Promise<void> {
  const sameName = await trx.selectFrom('replication_jobs').select('id').where('account_id', '=', accountId).where('name', '=', settings.name).where('id', '!=', exceptJobId).executeTakeFirst();
  if (sameName !== undefined) throw new AppError('ReplicationJobNameDuplicate', { name: settings.name });
  if (settings.imageName === '') return;
  const sameImage = await trx
    .selectFrom('replication_jobs')
    .select('id')
    .where('account_id', '=', accountId)
    .where('region_id', '=', regionId)
    .where('image_name', '=', settings.imageName)
    .where('state', '!=', 'Deleting/Cleaning')
    .where('id', '!=', exceptJobId)
    .executeTakeFirst();
  if (sameImage !== undefined) throw new AppError('ImageNameUsedByReplicationJob', { imageName: settings.imageName });
}

/** Map the database's own refusals (the unique indexes) to the codes the checks before them give. */
function uniqueViolationError(err: unknown, row: { source_id: string; name: string }, sourceState: string): unknown {
  if (isUniqueViolation(err, 'replication_jobs_one_active', ['source_id'])) return new AppError('SourceServerStateInvalid', { state: sourceState === 'Available' ? 'InUse' : sourceState, allowed: 'Available', sourceId: row.source_id });
  if (isUniqueViolation(err, 'replication_jobs_name', ['account_id', 'name'])) return new AppError('ReplicationJobNameDuplicate', { name: row.name });
  return err;
}

/**
 * Create a replication job (smc-CreateReplicationJob.txt): the source must be Available (which
 * also means no other active job holds it, a rule the database enforces too), at most 1,000 jobs
 * per account, every parameter checked. Scheduled start and expiry are queued with the job.
 */
export async function createReplicationJob(ctx: ServiceContext, input: CreateReplicationJobInput): Promise<{ jobId: string }> {
  const now = ctx.clock.nowMs();
  const settingsAgent = agentSettings();
  checkFormat('RegionId', input.regionId, /^[a-z0-9-]{1,64}$/, 'a region id like cn-hangzhou');
  checkFormat('ResourceGroupId', input.resourceGroupId, /^rg-[A-Za-z0-9]{1,62}$/, 'a resource group id like rg-acfmw3ty5y7xxxx');
  const jobType = input.jobType ?? 0;
  checkJobType(jobType);
  const tags = checkTags(input.tags, 'on a replication job');
  const jobId = newId('j');
  const base = defaultSettings(now, input.runOnce ?? true);
  const applied = applySettings({ ...base, name: jobId }, input, now, now);
  checkSettings(applied);
  return ctx.database.db.transaction().execute(async (trx) => {
    await lockAccount(trx, ctx.database.dialect, ctx.accountId);
    const source = await requireSource(trx, ctx.accountId, input.sourceId, now, settingsAgent);
    requireSourceState(input.sourceId, source.state, ['Available']);
    const facts = JSON.parse(source.row.facts) as SourceFacts;
    checkAgainstSource(applied, input.sourceId, facts, jobType);
    const settings = await checkFleetRefs(trx, ctx.accountId, input.regionId, applied, facts);
    const count = await trx.selectFrom('replication_jobs').select((eb) => eb.fn.countAll<number>().as('n')).where('account_id', '=', ctx.accountId).executeTakeFirstOrThrow();
    if (Number(count.n) >= jobLimits.jobsPerAccount) throw new AppError('QuotaExceededReplicationJob', { limit: jobLimits.jobsPerAccount });
    await checkNamesFree(trx, ctx.accountId, input.regionId, settings, jobId);
    const row: ReplicationJobTable = {
      ...(settingsColumns(settings) as Omit<ReplicationJobTable, 'id'>),
      id: jobId,
      account_id: ctx.accountId,
      source_id: input.sourceId,
      region_id: input.regionId,
      job_type: jobType,
      state: 'Ready',
      progress: 0,
      error_code: '',
      status_info: '',
      created_at: now,
      start_time: null,
      end_time: null,
      resource_group_id: input.resourceGroupId ?? '',
      image_id: '',
      current_run_id: null,
      next_run_at: null,
      cut_over: 0,
      expired_at: null,
      updated_at: now,
    };
    await trx
      .insertInto('replication_jobs')
      .values(row)
      .execute()
      .catch((err: unknown) => {
        throw uniqueViolationError(err, row, source.state);
      });
    await setTags(trx, ctx.accountId, 'replicationjob', [jobId], tags, now);
    await scheduleSmcJob(ctx.jobs, trx, smcJobKinds.expire, { accountId: ctx.accountId, jobId }, settings.validTimeMs);
    if (settings.scheduledStartTimeMs !== null) await scheduleSmcJob(ctx.jobs, trx, smcJobKinds.runDue, { accountId: ctx.accountId, jobId }, settings.scheduledStartTimeMs);
    return { jobId };
  });
}

export interface DescribeReplicationJobsFilter extends PageRequest {
  readonly regionId?: string | undefined;
  readonly jobIds?: readonly string[] | undefined;
  readonly sourceIds?: readonly string[] | undefined;
  readonly instanceIds?: readonly string[] | undefined;
  readonly name?: string | undefined;
  readonly status?: string | undefined;
  readonly businessStatus?: string | undefined;
  readonly jobType?: number | undefined;
  readonly resourceGroupId?: string | undefined;
  readonly tags?: readonly TagFilter[] | undefined;
}

function statesFor(filter: DescribeReplicationJobsFilter): ReplicationJobState[] | undefined {
  let states: ReplicationJobState[] | undefined;
  if (filter.status !== undefined && filter.status !== '') {
    if (!replicationJobStatuses.includes(filter.status)) throw new AppError('InvalidParameter', { name: 'Status', reason: `must be one of: ${replicationJobStatuses.join(', ')}` });
    states = statesWithStatus(filter.status);
  }
  if (filter.businessStatus !== undefined && filter.businessStatus !== '') {
    if (!businessStatuses.includes(filter.businessStatus)) throw new AppError('InvalidParameter', { name: 'BusinessStatus', reason: `must be one of: ${businessStatuses.join(', ')}` });
    const business = statesWithBusinessStatus(filter.businessStatus);
    states = states === undefined ? business : states.filter((s) => business.includes(s));
  }
  return states;
}

/**
 * One page of the account's jobs, newest first; every given filter must hold (empty ones are
 * ignored). Cross-zone jobs (JobType 2) are merged in by creation time.
 */
export async function describeReplicationJobs(ctx: ServiceContext, filter: DescribeReplicationJobsFilter): Promise<Page<ReplicationJobView>> {
  const { pageNumber, pageSize, offset } = pageWindow(filter);
  const jobIds = idFilter('JobId', filter.jobIds);
  const sourceIds = idFilter('SourceId', filter.sourceIds);
  const instanceIds = idFilter('InstanceId', filter.instanceIds);
  const tagFilters = checkTagFilters(filter.tags);
  const states = statesFor(filter);
  const db = ctx.database.db;
  let query = db.selectFrom('replication_jobs').where('replication_jobs.account_id', '=', ctx.accountId);
  if (jobIds !== undefined) query = query.where('replication_jobs.id', 'in', [...jobIds]);
  if (sourceIds !== undefined) query = query.where('replication_jobs.source_id', 'in', [...sourceIds]);
  if (instanceIds !== undefined) query = query.where('replication_jobs.instance_id', 'in', [...instanceIds]);
  if (filter.regionId !== undefined && filter.regionId !== '') query = query.where('replication_jobs.region_id', '=', filter.regionId);
  if (filter.name !== undefined && filter.name !== '') query = query.where('replication_jobs.name', '=', filter.name);
  if (states !== undefined) query = states.length === 0 ? query.where((eb) => eb.lit(false)) : query.where('replication_jobs.state', 'in', states);
  if (filter.jobType !== undefined) query = query.where('replication_jobs.job_type', '=', filter.jobType);
  if (filter.resourceGroupId !== undefined && filter.resourceGroupId !== '') query = query.where('replication_jobs.resource_group_id', '=', filter.resourceGroupId);
  for (const condition of hasTags('replicationjob', 'replication_jobs.id', tagFilters)) query = query.where(condition);
  const crossZone = await crossZoneJobsFor(ctx, { ...filter, jobIds, sourceIds, instanceIds, tagCount: tagFilters.length });
  const total = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  // Without cross-zone jobs the page is a plain window; with them, both lists' first offset + pageSize merge.
  const window = crossZone.length === 0 ? { limit: pageSize, offset } : { limit: offset + pageSize, offset: 0 };
  const rows = await query
    .leftJoin('source_servers', 'source_servers.id', 'replication_jobs.source_id')
    .selectAll('replication_jobs')
    .select('source_servers.workgroup_id')
    .orderBy('replication_jobs.created_at', 'desc')
    .orderBy('replication_jobs.id')
    .limit(window.limit)
    .offset(window.offset)
    .execute();
  const merged = [
    ...rows.map((row) => ({ createdAtMs: Number(row.created_at), id: row.id, row })),
    ...crossZone.map((view) => ({ createdAtMs: Date.parse(view.creationTime), id: view.jobId, view })),
  ].sort(newestFirst);
  const picked = crossZone.length === 0 ? merged : merged.slice(offset, offset + pageSize);
  const ids = picked.flatMap((p) => ('row' in p ? [p.id] : []));
  const runs = ids.length === 0 ? [] : await db.selectFrom('replication_job_runs').selectAll().where('job_id', 'in', ids).orderBy('seq').execute();
  const tags = await tagsOf(db, 'replicationjob', ids);
  const items = picked.map((p) => {
    if (!('row' in p)) return p.view;
    const { workgroup_id, ...row } = p.row;
    return replicationJobView(row, runs.filter((r) => r.job_id === row.id), tags.get(row.id) ?? [], workgroup_id ?? '');
  });
  return { pageNumber, pageSize, totalCount: Number(total.n) + crossZone.length, items };
}

export interface ModifyReplicationJobInput extends JobSettingsInput {
  readonly jobId: string;
}

const anyTimeFields = ['name', 'description'] as const;
const incrementalFields = ['frequency', 'maxNumberOfImageToKeep'] as const;
const validTimeStates: readonly ReplicationJobState[] = ['Ready', 'Running/Preparing', 'Running/Syncing', 'Running/Processing', 'Stopped', 'InError', 'Waiting'];

/**
 * Which fields may change now (smc-api.md §3): Name and Description any time; Frequency and
 * MaxNumberOfImageToKeep before the first run or while Waiting; ValidTime while the job is not
 * ended; everything else only before the first run.
 */
function checkModifiable(row: ReplicationJobTable, input: ModifyReplicationJobInput): void {
  const state = jobState(row);
  const neverRan = state === 'Ready' && row.start_time === null;
  const given = (Object.keys(input) as (keyof ModifyReplicationJobInput)[]).filter((k) => k !== 'jobId' && input[k] !== undefined);
  const refuse = (allowed: string): never => {
    throw new AppError('ReplicationJobInvalidStatus', { status: describeState(state), allowed, jobId: row.id });
  };
  if (state === 'Deleting/Cleaning') refuse('any state but Deleting');
  for (const field of given) {
    if ((anyTimeFields as readonly string[]).includes(field)) continue;
    if ((incrementalFields as readonly string[]).includes(field)) {
      if (!neverRan && state !== 'Waiting') refuse('Ready (before the first run), Waiting');
      if (Number(row.run_once) === 1) throw new AppError('InvalidParameter', { name: field === 'frequency' ? 'Frequency' : 'MaxNumberOfImageToKeep', reason: 'applies only to incremental jobs (RunOnce=false)' });
    } else if (field === 'validTime') {
      if (!validTimeStates.includes(state)) refuse('Ready, Running, Stopped, InError, Waiting');
    } else if (!neverRan) refuse('Ready (before the first run)');
  }
}

const sourceFields: readonly (keyof JobSettingsInput)[] = ['systemDiskSize', 'systemDiskParts', 'dataDisks', 'targetType'];
const fleetFields: readonly (keyof JobSettingsInput)[] = ['vSwitchId', 'vpcId', 'netMode', 'instanceId', 'instanceType'];

/** Change a job's settings, within what its state allows; a new schedule, expiry or frequency is queued at once. */
export async function modifyReplicationJobAttribute(ctx: ServiceContext, input: ModifyReplicationJobInput): Promise<void> {
  const now = ctx.clock.nowMs();
  await ctx.database.db.transaction().execute(async (trx) => {
    await lockAccount(trx, ctx.database.dialect, ctx.accountId);
    const row = await requireJob(trx, ctx.accountId, input.jobId);
    checkModifiable(row, input);
    const before = settingsOf(row);
    let settings = applySettings(before, input, now, Number(row.created_at));
    checkSettings(settings);
    const sourceChanged = sourceFields.some((f) => input[f] !== undefined);
    const fleetChanged = fleetFields.some((f) => input[f] !== undefined);
    if (sourceChanged || fleetChanged) {
      const source = await requireSource(trx, ctx.accountId, row.source_id, now, agentSettings());
      const facts = JSON.parse(source.row.facts) as SourceFacts;
      if (sourceChanged) checkAgainstSource(settings, row.source_id, facts, Number(row.job_type));
      // A new TargetType or InstanceId is a new pairing of source and instance disks.
      settings = await checkFleetRefs(trx, ctx.accountId, row.region_id, settings, facts);
    }
    await checkNamesFree(trx, ctx.accountId, row.region_id, settings, row.id);
    const changes: Partial<ReplicationJobTable> = { ...settingsColumns(settings), updated_at: now };
    const waiting = jobState(row) === 'Waiting';
    if (waiting && settings.frequencyHours !== before.frequencyHours && settings.frequencyHours !== null) {
      const lastRun = await trx.selectFrom('replication_job_runs').select('start_time').where('job_id', '=', row.id).orderBy('seq', 'desc').executeTakeFirst();
      changes.next_run_at = Math.max(now, Number(lastRun?.start_time ?? now) + settings.frequencyHours * 3_600_000);
      await scheduleSmcJob(ctx.jobs, trx, smcJobKinds.runDue, { accountId: ctx.accountId, jobId: row.id }, changes.next_run_at);
    }
    await trx
      .updateTable('replication_jobs')
      .set(changes)
      .where('id', '=', row.id)
      .where('state', '=', row.state)
      .execute()
      .catch((err: unknown) => {
        throw isUniqueViolation(err, 'replication_jobs_name', ['account_id', 'name']) ? new AppError('ReplicationJobNameDuplicate', { name: settings.name }) : err;
      });
    if (settings.scheduledStartTimeMs !== null && settings.scheduledStartTimeMs !== before.scheduledStartTimeMs) {
      await scheduleSmcJob(ctx.jobs, trx, smcJobKinds.runDue, { accountId: ctx.accountId, jobId: row.id }, settings.scheduledStartTimeMs);
    }
    if (settings.validTimeMs !== before.validTimeMs) await scheduleSmcJob(ctx.jobs, trx, smcJobKinds.expire, { accountId: ctx.accountId, jobId: row.id }, settings.validTimeMs);
  });
}

/** Mark a job Deleting; its cleanup job removes it (and its runs, commands and tags; images stay). Not while it runs. */
export async function deleteReplicationJob(ctx: ServiceContext, jobId: string): Promise<void> {
  const now = ctx.clock.nowMs();
  await ctx.database.db.transaction().execute(async (trx) => {
    const row = await requireJob(trx, ctx.accountId, jobId);
    await transition(trx, row, 'delete', now, { next_run_at: null });
    await scheduleSmcJob(ctx.jobs, trx, smcJobKinds.deleteJob, { accountId: ctx.accountId, jobId }, now);
  });
}
