import type { DiskFacts, PartitionFacts, SourceFacts } from '../core/agent-protocol.ts';
import { AppError } from '../core/errors.ts';
import { InputMemo } from '../core/input-memo.ts';
import { sql } from 'kysely';
import { setAccessKeyStatus } from '../identity/access-keys.ts';
import type { Db } from '../store/database.ts';
import { PreparedQuery, type Slots } from '../store/prepared-query.ts';
import type { SourceServerTable } from '../store/schema-smc.ts';
import { type AgentSettings, agentSettings, offlineAfterMs } from './agent-settings.ts';
import { isUniqueViolation } from './db-errors.ts';
import { type Page, type PageRequest, idFilter, pageTotal, pageWindow } from './paging.ts';
import { jobState, transition } from './replication-job-rows.ts';
import { statusOf } from './replication-job-states.ts';
import { scheduleSmcJob, smcJobKinds } from './replication-schedules.ts';
import type { ServiceContext } from './service-context.ts';
import { activeJobStates } from './replication-job-states.ts';
import { type SourceServerState, offlineErrorCode, requireSource, requireSourceState, sourceServerStates, sourceState, sourceStateSql } from './source-server-state.ts';
import { type Tag, type TagFilter, checkTagFilters, hasTags, tagsOf } from './tags.ts';
import { checkDescription, checkName, isoUtc } from './validation.ts';

const gibBytes = 1024 ** 3;

export interface SourcePartView {
  readonly device: string;
  readonly path: string;
  readonly sizeBytes: number;
  readonly canBlock: boolean;
  readonly need: boolean;
}

export interface SourceDiskPartView {
  readonly path: string;
  readonly sizeBytes: number;
  readonly canBlock: boolean;
  readonly type: string;
}

export interface SourceDiskView {
  /** GiB. */
  readonly size: number;
  /** Bytes from the start of the disk to its first partition. */
  readonly offset: number;
  readonly parts: readonly SourceDiskPartView[];
}

/** A source server as DescribeSourceServers reports it; field names are the API's, camel-cased. */
export interface SourceServerView {
  readonly sourceId: string;
  readonly name: string;
  readonly description: string;
  readonly state: SourceServerState;
  /** JSON `{error_code, error_msg}` while Unavailable, else empty. */
  readonly statusInfo: string;
  readonly errorCode: string;
  /** The source's newest job. */
  readonly jobId: string;
  readonly workgroupId: string;
  readonly resourceGroupId: string;
  readonly creationTime: string;
  /** Seconds. */
  readonly heartbeatRate: number;
  readonly agentVersion: string;
  readonly architecture: string;
  readonly platform: string;
  readonly kernelLevel: number;
  readonly replicationDriver: string;
  /** GiB. */
  readonly systemDiskSize: number;
  readonly systemInfo: string;
  readonly systemDiskParts: readonly SourcePartView[];
  readonly dataDisks: readonly { readonly index: number; readonly path: string; readonly size: number; readonly parts: readonly SourcePartView[] }[];
  readonly disks: { readonly system: SourceDiskView; readonly data: readonly SourceDiskView[] };
  readonly tags: readonly Tag[];
}

const gib = (bytes: number): number => Math.ceil(bytes / gibBytes);

function partViews(disk: DiskFacts): SourcePartView[] {
  return disk.parts.map((p) => ({ device: `${disk.index}_${p.index}`, path: p.path, sizeBytes: p.sizeBytes, canBlock: true, need: true }));
}

function diskView(disk: DiskFacts | undefined): SourceDiskView {
  const parts = disk?.parts ?? [];
  return {
    size: gib(disk?.sizeBytes ?? 0),
    offset: parts[0]?.offsetBytes ?? 0,
    parts: parts.map((p: PartitionFacts) => ({ path: p.path, sizeBytes: p.sizeBytes, canBlock: true, type: p.type })),
  };
}

/** The columns of a source row that its view reads. */
const viewColumns = [
  'id',
  'name',
  'description',
  'deleting',
  'workgroup_id',
  'resource_group_id',
  'agent_version',
  'architecture',
  'platform',
  'kernel_level',
  'facts',
  'last_seen_at',
  'created_at',
] as const satisfies readonly (keyof SourceServerTable)[];

type SourceViewRow = Pick<SourceServerTable, (typeof viewColumns)[number]>;

/** A source row with its derived state, newest job and tags, as the API reports it; sizes in GiB, parts in bytes. */
export function sourceServerView(row: SourceViewRow, state: SourceServerState, jobId: string, tags: readonly Tag[], settings: AgentSettings): SourceServerView {
  const facts = JSON.parse(row.facts) as SourceFacts;
  const system = facts.disks[0];
  const data = facts.disks.filter((d) => d.index > 0);
  const offline = state === 'Unavailable';
  return {
    sourceId: row.id,
    name: row.name,
    description: row.description,
    state,
    statusInfo: offline ? JSON.stringify({ error_code: offlineErrorCode, error_msg: `The agent has not been heard from since ${isoUtc(Number(row.last_seen_at))}.` }) : '',
    errorCode: offline ? offlineErrorCode : '',
    jobId,
    workgroupId: row.workgroup_id ?? '',
    resourceGroupId: row.resource_group_id,
    creationTime: isoUtc(Number(row.created_at)),
    heartbeatRate: settings.heartbeatSeconds,
    agentVersion: row.agent_version,
    architecture: row.architecture,
    platform: row.platform,
    kernelLevel: Number(row.kernel_level),
    replicationDriver: 'SMT',
    systemDiskSize: gib(system?.sizeBytes ?? 0),
    systemInfo: JSON.stringify({
      agent_mode: 'Agent',
      agent_type: 'ferry',
      client_type: 'ferry-agent',
      hostname: facts.hostname,
      ipv4: facts.ipv4.join(','),
      ipv6: '',
      cores: facts.cores,
      cpu_usage: 0,
      memory: facts.memoryBytes,
      memory_usage: 0,
    }),
    systemDiskParts: system === undefined ? [] : partViews(system),
    dataDisks: data.map((d) => ({ index: d.index, path: d.path, size: gib(d.sizeBytes), parts: partViews(d) })),
    disks: { system: diskView(system), data: data.map(diskView) },
    tags,
  };
}

export interface DescribeSourceServersFilter extends PageRequest {
  readonly sourceIds?: readonly string[] | undefined;
  readonly jobId?: string | undefined;
  readonly name?: string | undefined;
  readonly state?: string | undefined;
  readonly workgroupId?: string | undefined;
  /** Job types (as text, e.g. `0`) of a related job the source must have. */
  readonly relatedJobTypes?: readonly string[] | undefined;
  readonly resourceGroupId?: string | undefined;
  readonly tags?: readonly TagFilter[] | undefined;
}

// Most sources look the same from one Describe call to the next; a view is rebuilt only when
// something it is made of changed. Every input is still read from the database on each call.
const sourceViews = new InputMemo<SourceServerView>(10_000);

/** sourceServerView, remembered per source for exactly its inputs: the row's view columns, the state, job, tags and settings. */
function rememberedView(row: SourceViewRow, state: SourceServerState, jobId: string, tags: readonly Tag[], settings: AgentSettings): SourceServerView {
  const settingValues: unknown[] = Object.values(settings);
  const inputs: unknown[] = viewColumns.map((column) => row[column]);
  inputs.push(state, jobId, ...settingValues);
  for (const tag of tags) inputs.push(tag.key, tag.value);
  return sourceViews.get(row.id, inputs, () => sourceServerView(row, state, jobId, tags, settings));
}

/** The values of a DescribeSourceServers call, as its prepared statements take them. */
interface SourcePageArgs {
  readonly accountId: string;
  readonly sourceIds: readonly string[] | undefined;
  readonly name: string | undefined;
  readonly workgroupId: string | undefined;
  readonly resourceGroupId: string | undefined;
  /** A shape argument: each state is its own SQL. */
  readonly state: SourceServerState | undefined;
  /** With `state`: ms since the epoch before which a silent agent is offline. */
  readonly silentSince: number | undefined;
  readonly jobId: string | undefined;
  readonly jobTypes: readonly number[] | undefined;
  readonly tagKeys: readonly string[];
  /** The values of the tag filters that have one, in order. */
  readonly tagValues: readonly string[];
  /** A shape argument: which tag filters have a value. */
  readonly tagHasValue: readonly boolean[];
  /** A shape argument, 1-50: SQLite re-prepares a statement whose LIMIT is a parameter on every run, to plan with its value. */
  readonly limit: number;
  readonly offset: number;
}

const pageShapeArgs = ['state', 'tagHasValue', 'limit'] as const;

/** The account's source servers that pass every given filter. */
function filteredSources(db: Db, slot: Slots<SourcePageArgs>) {
  let query = db.selectFrom('source_servers').where('source_servers.account_id', '=', slot.value('accountId'));
  const sourceIds = slot.items('sourceIds');
  if (sourceIds.length > 0) query = query.where('source_servers.id', 'in', sourceIds);
  if (slot.given('name')) query = query.where('source_servers.name', '=', slot.value('name'));
  if (slot.given('workgroupId')) query = query.where('source_servers.workgroup_id', '=', slot.value('workgroupId'));
  if (slot.given('resourceGroupId')) query = query.where('source_servers.resource_group_id', '=', slot.value('resourceGroupId'));
  const state = slot.shaped('state');
  if (state !== undefined) query = query.where(sourceStateSql(state, slot.value('silentSince')));
  if (slot.given('jobId')) {
    const jobId = slot.value('jobId');
    query = query.where((eb) => eb.exists(eb.selectFrom('replication_jobs').select('replication_jobs.id').whereRef('replication_jobs.source_id', '=', 'source_servers.id').where('replication_jobs.id', '=', jobId)));
  }
  const jobTypes = slot.items('jobTypes');
  if (jobTypes.length > 0) {
    query = query.where((eb) => eb.exists(eb.selectFrom('replication_jobs').select('replication_jobs.id').whereRef('replication_jobs.source_id', '=', 'source_servers.id').where('replication_jobs.job_type', 'in', jobTypes)));
  }
  const values = slot.items('tagValues');
  let nextValue = 0;
  const tags = slot.items('tagKeys').map((key, i) => (slot.shaped('tagHasValue')[i] === true ? { key, value: values[nextValue++] } : { key }));
  for (const condition of hasTags('sourceserver', 'source_servers.id', tags)) query = query.where(condition);
  return query;
}

// Whether a source has any job or tag at all: an index probe each, so a page of sources without
// them (new ones; most have no tags) skips the statement that would find none.
const hasJobsSql = sql<number | boolean>`exists (select 1 from replication_jobs rj where rj.source_id = source_servers.id)`;
const hasTagsSql = sql<number | boolean>`exists (select 1 from smc_tags st where st.resource_type = 'sourceserver' and st.resource_id = source_servers.id)`;

const sourcePage = new PreparedQuery(
  (db, slot: Slots<SourcePageArgs>) =>
    filteredSources(db, slot)
      .select(viewColumns.map((column) => `source_servers.${column}` as const))
      .select([hasJobsSql.as('has_jobs'), hasTagsSql.as('has_tags')])
      .orderBy('source_servers.created_at', 'desc')
      .orderBy('source_servers.id')
      .limit(sql.lit(slot.shaped('limit')))
      .offset(slot.value('offset')),
  pageShapeArgs,
);

const sourceCount = new PreparedQuery((db, slot: Slots<SourcePageArgs>) => filteredSources(db, slot).select((eb) => eb.fn.countAll<number>().as('n')), pageShapeArgs);

const jobsOfSources = new PreparedQuery((db, slot: Slots<{ ids: readonly string[] }>) =>
  db.selectFrom('replication_jobs').select(['id', 'source_id', 'state']).where('source_id', 'in', slot.items('ids')).orderBy('created_at', 'desc').orderBy('id', 'desc'),
);

/** One page of the account's source servers, newest first, with every given filter applied. */
export async function describeSourceServers(ctx: ServiceContext, filter: DescribeSourceServersFilter): Promise<Page<SourceServerView>> {
  const { pageNumber, pageSize, offset } = pageWindow(filter);
  const settings = agentSettings();
  const now = ctx.clock.nowMs();
  const tagFilters = checkTagFilters(filter.tags);
  const given = (text: string | undefined): string | undefined => (text === undefined || text === '' ? undefined : text);
  const state = given(filter.state);
  if (state !== undefined && !(sourceServerStates as readonly string[]).includes(state)) {
    throw new AppError('InvalidParameter', { name: 'State', reason: `must be one of: ${sourceServerStates.join(', ')}` });
  }
  const jobTypes = (filter.relatedJobTypes ?? []).map(Number);
  if (jobTypes.some((t) => !Number.isInteger(t))) throw new AppError('InvalidParameter', { name: 'RelatedJobType', reason: 'must be job types 0, 1, 2 or 3' });
  const args: SourcePageArgs = {
    accountId: ctx.accountId,
    sourceIds: idFilter('SourceId', filter.sourceIds),
    name: given(filter.name),
    workgroupId: given(filter.workgroupId),
    resourceGroupId: given(filter.resourceGroupId),
    state: state as SourceServerState | undefined,
    silentSince: state === undefined ? undefined : now - offlineAfterMs(settings),
    jobId: given(filter.jobId),
    jobTypes: jobTypes.length === 0 ? undefined : jobTypes,
    tagKeys: tagFilters.map((f) => f.key ?? ''),
    tagValues: tagFilters.flatMap((f) => (f.value === undefined ? [] : [f.value])),
    tagHasValue: tagFilters.map((f) => f.value !== undefined),
    limit: pageSize,
    offset,
  };
  const db = ctx.database.db;
  // Three plain statements (page, the page's jobs, their tags) cost less here than one with
  // correlated subqueries for the active job, the newest job and the tags (27 us against 48 in
  // a loop); the last two run only for the sources that have any.
  const rows = await sourcePage.rows(db, args);
  const totalCount = await pageTotal({ offset, pageSize }, rows.length, async () => Number((await sourceCount.rows(db, args))[0]?.n ?? 0));
  // SQLite answers EXISTS with 0 or 1, PostgreSQL with a boolean.
  const withJobs = rows.filter((r) => Number(r.has_jobs) === 1).map((r) => r.id);
  const jobs = withJobs.length === 0 ? [] : await jobsOfSources.rows(db, { ids: withJobs });
  const tags = await tagsOf(db, 'sourceserver', rows.filter((r) => Number(r.has_tags) === 1).map((r) => r.id));
  const items = rows.map((row) => {
    const own = jobs.filter((j) => j.source_id === row.id);
    const hasActiveJob = own.some((j) => (activeJobStates as readonly string[]).includes(j.state));
    const sourceStateNow = sourceState({ deleting: Number(row.deleting) === 1, lastSeenAtMs: Number(row.last_seen_at), hasActiveJob }, now, settings);
    return rememberedView(row, sourceStateNow, own[0]?.id ?? '', tags.get(row.id) ?? [], settings);
  });
  return { pageNumber, pageSize, totalCount, items };
}

/** Rename or redescribe a source server, in any state but Deleting; names stay unique in the account. */
export async function modifySourceServerAttribute(ctx: ServiceContext, sourceId: string, change: { name?: string | undefined; description?: string | undefined }): Promise<void> {
  if (change.name !== undefined) checkName('Name', change.name);
  if (change.description !== undefined) checkDescription('Description', change.description);
  const now = ctx.clock.nowMs();
  await ctx.database.db.transaction().execute(async (trx) => {
    const { state } = await requireSource(trx, ctx.accountId, sourceId, now, agentSettings());
    requireSourceState(sourceId, state, ['Available', 'InUse', 'Unavailable']);
    if (change.name !== undefined) {
      const taken = await trx.selectFrom('source_servers').select('id').where('account_id', '=', ctx.accountId).where('name', '=', change.name).where('id', '!=', sourceId).executeTakeFirst();
      if (taken !== undefined) throw new AppError('SourceServerNameDuplicate', { name: change.name });
    }
    await trx
      .updateTable('source_servers')
      .set({ updated_at: now, ...(change.name === undefined ? {} : { name: change.name }), ...(change.description === undefined ? {} : { description: change.description }) })
      .where('id', '=', sourceId)
      .execute()
      .catch((err: unknown) => {
        throw isUniqueViolation(err, 'source_servers_name', ['account_id', 'name']) ? new AppError('SourceServerNameDuplicate', { name: change.name ?? '' }) : err;
      });
  });
}

/**
 * DeleteSourceServer: refused while one of its jobs runs; with other related jobs only with Force,
 * which deletes them too. The source turns Deleting, its agent's key is disabled at once (the
 * agent stops on its next call), and a cleanup job removes the rows.
 */
export async function deleteSourceServer(ctx: ServiceContext, sourceId: string, force: boolean): Promise<void> {
  const now = ctx.clock.nowMs();
  await ctx.database.db.transaction().execute(async (trx) => {
    const { row, state } = await requireSource(trx, ctx.accountId, sourceId, now, agentSettings());
    requireSourceState(sourceId, state, ['Available', 'InUse', 'Unavailable']);
    const related = (await trx.selectFrom('replication_jobs').selectAll().where('source_id', '=', sourceId).orderBy('created_at').execute()).filter((j) => jobState(j) !== 'Deleting/Cleaning');
    const running = related.find((j) => statusOf(jobState(j)) === 'Running');
    if (running !== undefined) throw new AppError('SourceServerWithRunningJob', { sourceId, jobId: running.id });
    if (related.length > 0 && !force) throw new AppError('ReplicationJobRelated', { sourceId, jobIds: related.map((j) => j.id).join(', ') });
    for (const job of related) {
      await transition(trx, job, 'delete', now, { next_run_at: null });
      await scheduleSmcJob(ctx.jobs, trx, smcJobKinds.deleteJob, { accountId: ctx.accountId, jobId: job.id }, now);
    }
    await trx.updateTable('source_servers').set({ deleting: 1, workgroup_id: null, updated_at: now }).where('id', '=', sourceId).execute();
    await setAccessKeyStatus(trx, row.agent_key_id, 'Inactive');
    await scheduleSmcJob(ctx.jobs, trx, smcJobKinds.deleteSource, { accountId: ctx.accountId, sourceId }, now);
  });
}
