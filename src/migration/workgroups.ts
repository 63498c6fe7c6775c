import { AppError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Trx } from '../engine/job-store.ts';
import type { WorkgroupTable } from '../store/schema-smc.ts';
import { lockAccount } from './account-lock.ts';
import { agentSettings } from './agent-settings.ts';
import { type Page, type PageRequest, idFilter, maxIdsPerFilter, pageWindow } from './paging.ts';
import { type ReplicationJobState, statusOf } from './replication-job-states.ts';
import type { ServiceContext } from './service-context.ts';
import { sourceState } from './source-server-state.ts';
import { type Tag, type TagFilter, checkTagFilters, checkTags, deleteTagsOf, setTags, tagsOf } from './tags.ts';
import { checkDescription, checkName } from './validation.ts';

/** Workgroup limits (smc-api.md §5): per account, per workgroup; a source is in at most one. */
export const workgroupLimits = { perAccount: 50, sourcesPerWorkgroup: 50 } as const;

export const workgroupStatuses = ['NotStarted', 'InProgress', 'Cutover', 'Completed'] as const;
export type WorkgroupStatus = (typeof workgroupStatuses)[number];

export interface WorkgroupWarning {
  /** InError: a member's job failed; UnRelated: a member has no job; NotPassed: a member is Unavailable. */
  readonly warningType: 'InError' | 'UnRelated' | 'NotPassed';
  readonly sourceIds: readonly string[];
}

export interface WorkgroupView {
  readonly workgroupId: string;
  readonly name: string;
  readonly description: string;
  readonly status: WorkgroupStatus;
  readonly tags: readonly Tag[];
  readonly warnings: readonly WorkgroupWarning[];
}

async function requireWorkgroup(trx: Trx, accountId: string, workgroupId: string): Promise<WorkgroupTable> {
  const row = await trx.selectFrom('workgroups').selectAll().where('id', '=', workgroupId).where('account_id', '=', accountId).executeTakeFirst();
  if (row === undefined) throw new AppError('InvalidWorkgroupIdNotFound', { workgroupId });
  return row;
}

/** CreateWorkgroup: at most 50 per account. */
export async function createWorkgroup(ctx: ServiceContext, input: { name?: string | undefined; description?: string | undefined; tags?: readonly TagFilter[] | undefined }): Promise<{ workgroupId: string }> {
  if (input.name !== undefined) checkName('Name', input.name);
  if (input.description !== undefined) checkDescription('Description', input.description);
  const tags = checkTags(input.tags, 'on a workgroup');
  const now = ctx.clock.nowMs();
  const id = newId('w');
  return ctx.database.db.transaction().execute(async (trx) => {
    await lockAccount(trx, ctx.database.dialect, ctx.accountId);
    const count = await trx.selectFrom('workgroups').select((eb) => eb.fn.countAll<number>().as('n')).where('account_id', '=', ctx.accountId).executeTakeFirstOrThrow();
    if (Number(count.n) >= workgroupLimits.perAccount) throw new AppError('QuotaExceededWorkgroup', { limit: workgroupLimits.perAccount });
    await trx.insertInto('workgroups').values({ id, account_id: ctx.accountId, name: input.name ?? id, description: input.description ?? '', created_at: now, updated_at: now }).execute();
    await setTags(trx, ctx.accountId, 'workgroup', [id], tags, now);
    return { workgroupId: id };
  });
}

/** DeleteWorkgroup: only an empty one; its sources must be disassociated first. */
export async function deleteWorkgroup(ctx: ServiceContext, workgroupId: string): Promise<void> {
  await ctx.database.db.transaction().execute(async (trx) => {
    await requireWorkgroup(trx, ctx.accountId, workgroupId);
    const members = await trx.selectFrom('source_servers').select('id').where('workgroup_id', '=', workgroupId).execute();
    if (members.length > 0) throw new AppError('WorkgroupNotEmpty', { workgroupId, sourceIds: members.map((m) => m.id).join(', ') });
    await deleteTagsOf(trx, 'workgroup', [workgroupId]);
    await trx.deleteFrom('workgroups').where('id', '=', workgroupId).execute();
  });
}

export async function modifyWorkgroupAttribute(ctx: ServiceContext, workgroupId: string, change: { name?: string | undefined; description?: string | undefined }): Promise<void> {
  if (change.name !== undefined) checkName('Name', change.name);
  if (change.description !== undefined) checkDescription('Description', change.description);
  await ctx.database.db.transaction().execute(async (trx) => {
    await requireWorkgroup(trx, ctx.accountId, workgroupId);
    await trx
      .updateTable('workgroups')
      .set({ updated_at: ctx.clock.nowMs(), ...(change.name === undefined ? {} : { name: change.name }), ...(change.description === undefined ? {} : { description: change.description }) })
      .where('id', '=', workgroupId)
      .execute();
  });
}

function checkSourceIds(sourceIds: readonly string[]): void {
  if (sourceIds.length === 0) throw new AppError('MissingParameter', { name: 'SourceId.N' });
  if (sourceIds.length > maxIdsPerFilter) throw new AppError('InvalidParameter', { name: 'SourceId', reason: `has ${sourceIds.length} ids; at most ${maxIdsPerFilter} are accepted` });
}

/**
 * AssociateSourceServers: each source must exist and be in no other workgroup; the workgroup may
 * hold at most 50. Counted under the account lock, so two racing calls cannot overfill it.
 */
export async function associateSourceServers(ctx: ServiceContext, workgroupId: string, sourceIds: readonly string[]): Promise<void> {
  checkSourceIds(sourceIds);
  const unique = [...new Set(sourceIds)];
  await ctx.database.db.transaction().execute(async (trx) => {
    await lockAccount(trx, ctx.database.dialect, ctx.accountId);
    await requireWorkgroup(trx, ctx.accountId, workgroupId);
    const sources = await trx.selectFrom('source_servers').select(['id', 'workgroup_id', 'deleting']).where('account_id', '=', ctx.accountId).where('id', 'in', unique).execute();
    const missing = unique.find((id) => !sources.some((s) => s.id === id && Number(s.deleting) === 0));
    if (missing !== undefined) throw new AppError('InvalidSourceIdNotFound', { sourceId: missing });
    const elsewhere = sources.find((s) => s.workgroup_id !== null && s.workgroup_id !== workgroupId);
    if (elsewhere !== undefined) throw new AppError('SourceServerInOtherWorkgroup', { sourceId: elsewhere.id, workgroupId: elsewhere.workgroup_id ?? '' });
    const already = await trx.selectFrom('source_servers').select('id').where('workgroup_id', '=', workgroupId).execute();
    const count = new Set([...already.map((a) => a.id), ...unique]).size;
    if (count > workgroupLimits.sourcesPerWorkgroup) throw new AppError('QuotaExceededWorkgroupSourceServer', { limit: workgroupLimits.sourcesPerWorkgroup, workgroupId, count });
    await trx.updateTable('source_servers').set({ workgroup_id: workgroupId, updated_at: ctx.clock.nowMs() }).where('id', 'in', unique).execute();
  });
}

/** DisassociateSourceServers: the named sources leave the workgroup; one not in it is left alone. */
export async function disassociateSourceServers(ctx: ServiceContext, workgroupId: string, sourceIds: readonly string[]): Promise<void> {
  checkSourceIds(sourceIds);
  const unique = [...new Set(sourceIds)];
  await ctx.database.db.transaction().execute(async (trx) => {
    await requireWorkgroup(trx, ctx.accountId, workgroupId);
    const sources = await trx.selectFrom('source_servers').select('id').where('account_id', '=', ctx.accountId).where('id', 'in', unique).execute();
    const missing = unique.find((id) => !sources.some((s) => s.id === id));
    if (missing !== undefined) throw new AppError('InvalidSourceIdNotFound', { sourceId: missing });
    await trx.updateTable('source_servers').set({ workgroup_id: null, updated_at: ctx.clock.nowMs() }).where('id', 'in', unique).where('workgroup_id', '=', workgroupId).execute();
  });
}

interface Member {
  readonly id: string;
  readonly unavailable: boolean;
  readonly newestJob: { readonly state: ReplicationJobState; readonly cutOver: boolean } | undefined;
}

/** A workgroup's Status from its members' newest jobs, and its warnings. */
export function workgroupProgress(members: readonly Member[]): { status: WorkgroupStatus; warnings: WorkgroupWarning[] } {
  const withJobs = members.filter((m) => m.newestJob !== undefined);
  let status: WorkgroupStatus = 'InProgress';
  if (withJobs.length === 0) status = 'NotStarted';
  else if (withJobs.length === members.length && withJobs.every((m) => m.newestJob?.state === 'Finished')) status = 'Completed';
  else if (withJobs.some((m) => m.newestJob?.cutOver === true && statusOf(m.newestJob.state) === 'Running')) status = 'Cutover';
  const warnings: WorkgroupWarning[] = [];
  const add = (warningType: WorkgroupWarning['warningType'], ids: string[]): void => {
    if (ids.length > 0) warnings.push({ warningType, sourceIds: ids });
  };
  add('InError', members.filter((m) => m.newestJob?.state === 'InError').map((m) => m.id));
  add('UnRelated', members.filter((m) => m.newestJob === undefined).map((m) => m.id));
  add('NotPassed', members.filter((m) => m.unavailable).map((m) => m.id));
  return { status, warnings };
}

export interface DescribeWorkgroupsFilter extends PageRequest {
  readonly workgroupIds?: readonly string[] | undefined;
  readonly name?: string | undefined;
  readonly status?: string | undefined;
  readonly tags?: readonly TagFilter[] | undefined;
}

/** DescribeWorkgroups: an account has at most 50, so they are read whole, then filtered and paged. */
export async function describeWorkgroups(ctx: ServiceContext, filter: DescribeWorkgroupsFilter): Promise<Page<WorkgroupView>> {
  const { pageNumber, pageSize, offset } = pageWindow(filter);
  const ids = idFilter('WorkgroupId', filter.workgroupIds);
  const tagFilters = checkTagFilters(filter.tags);
  if (filter.status !== undefined && filter.status !== '' && !(workgroupStatuses as readonly string[]).includes(filter.status)) {
    throw new AppError('InvalidParameter', { name: 'Status', reason: `must be one of: ${workgroupStatuses.join(', ')}` });
  }
  const db = ctx.database.db;
  const groups = await db.selectFrom('workgroups').selectAll().where('account_id', '=', ctx.accountId).orderBy('created_at', 'desc').orderBy('id').execute();
  const groupIds = groups.map((g) => g.id);
  const sources = groupIds.length === 0 ? [] : await db.selectFrom('source_servers').select(['id', 'workgroup_id', 'deleting', 'last_seen_at']).where('workgroup_id', 'in', groupIds).execute();
  const sourceIds = sources.map((s) => s.id);
  const jobs = sourceIds.length === 0 ? [] : await db.selectFrom('replication_jobs').select(['source_id', 'state', 'cut_over']).where('source_id', 'in', sourceIds).orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
  const tags = await tagsOf(db, 'workgroup', groupIds);
  const now = ctx.clock.nowMs();
  const settings = agentSettings();
  const views = groups.map((g): WorkgroupView => {
    const members = sources
      .filter((s) => s.workgroup_id === g.id)
      .map((s): Member => {
        const job = jobs.find((j) => j.source_id === s.id);
        const state = sourceState({ deleting: Number(s.deleting) === 1, lastSeenAtMs: Number(s.last_seen_at), hasActiveJob: false }, now, settings);
        return { id: s.id, unavailable: state === 'Unavailable', newestJob: job === undefined ? undefined : { state: job.state as ReplicationJobState, cutOver: Number(job.cut_over) === 1 } };
      });
    return { workgroupId: g.id, name: g.name, description: g.description, tags: tags.get(g.id) ?? [], ...workgroupProgress(members) };
  });
  const matching = views.filter(
    (v) =>
      (ids === undefined || ids.includes(v.workgroupId)) &&
      (filter.name === undefined || filter.name === '' || v.name === filter.name) &&
      (filter.status === undefined || filter.status === '' || v.status === filter.status) &&
      tagFilters.every((f) => v.tags.some((t) => t.key === f.key && (f.value === undefined || t.value === f.value))),
  );
  return { pageNumber, pageSize, totalCount: matching.length, items: matching.slice(offset, offset + pageSize) };
}
