/**
 * Instance moves: the one durable workflow behind SMC cross-zone jobs, Huawei cold migration and
 * ENS migrate/redeploy events. `startInstanceMove` checks the request (instance-move-plan.ts),
 * records the move in `instance_moves` and queues its engine job in one transaction; the job
 * (instance-move-run.ts) claims placement, stops the instance, copies its disks, switches it over,
 * applies the changes asked for and starts it again. Front doors read the record back with
 * `getInstanceMove` / `listInstanceMoves` and answer it in their own words.
 */
import { sql } from 'kysely';
import { AppError, type ErrorCode, errorCatalogue, isAppError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { NewJob, Trx } from '../engine/job-store.ts';
import type { InstanceMoveTable } from '../store/schema-moves.ts';
import { type DataDiskPolicy, type InstanceMoveRequest, type MovePlan, movingAlready, planMove } from './instance-move-plan.ts';
import type { ServiceContext } from './service-context.ts';

export { type DataDiskPolicy, type DiskChange, type InstanceMoveRequest, type MovePlan, dataDiskPolicies } from './instance-move-plan.ts';

export const instanceMoveJobKind = 'instance-move';

/** Attempts before a move that keeps failing for reasons a retry might fix is rolled back. */
export const instanceMoveMaxAttempts = 8;

export const moveStates = ['queued', 'running', 'succeeded', 'failed'] as const;
export type MoveState = (typeof moveStates)[number];

export const movePhases = ['preparing', 'stopping', 'copying', 'switching', 'starting', 'rolling-back', 'done'] as const;
export type MovePhase = (typeof movePhases)[number];

/** The engine job's payload; `accountId` lets the native jobs API show the job to its owner. */
export interface MoveJobPayload {
  readonly moveId: string;
  readonly accountId: string;
  /** Set on a job that only rolls back a move whose own job (this id) ended without finishing it. */
  readonly rollbackOf?: string;
}

/** What a finished move did. */
export interface MoveOutcome {
  /** Where the instance is now: the target host, or its source after a rollback. */
  readonly hostId: string;
  readonly rolledBack: boolean;
  /** Data bytes written to the target by all attempts that this one knows of. */
  readonly copiedBytes: number;
  /** True when some disk's copy continued from a checkpoint of an earlier attempt. */
  readonly resumed: boolean;
  /** Data disks recreated empty on the target (abandon, or try_transfer after a failed copy). */
  readonly abandonedDiskIds: readonly string[];
  /** Files that could not be deleted (their host did not answer): garbage, not the instance's disks. */
  readonly leftoverPaths: readonly string[];
}

export interface InstanceMoveView {
  readonly moveId: string;
  readonly accountId: string;
  readonly instanceId: string;
  readonly origin: string;
  readonly jobId: string;
  readonly state: MoveState;
  readonly phase: MovePhase;
  /** 0–100, by bytes copied; 100 once succeeded. */
  readonly progressPercent: number;
  readonly plan: MovePlan;
  readonly fromHostId: string;
  readonly toHostId: string | null;
  readonly wasRunning: boolean | null;
  /** A catalogue code: each door answers it with its own code (errorCatalogue[code].alibabaCode / huaweiCode). */
  readonly errorCode: ErrorCode | null;
  readonly errorMessage: string | null;
  readonly outcome: MoveOutcome | null;
  readonly createdAtMs: number;
  readonly startedAtMs: number | null;
  readonly finishedAtMs: number | null;
}

function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(errorCatalogue, value);
}

export function toMoveView(row: InstanceMoveTable): InstanceMoveView {
  return {
    moveId: row.id,
    accountId: row.account_id,
    instanceId: row.instance_id,
    origin: row.origin,
    jobId: row.job_id,
    state: row.state as MoveState,
    phase: row.phase as MovePhase,
    progressPercent: Number(row.progress_bp) / 100,
    plan: JSON.parse(row.plan) as MovePlan,
    fromHostId: row.from_host_id,
    toHostId: row.to_host_id,
    wasRunning: row.was_running === null ? null : Number(row.was_running) === 1,
    errorCode: row.error_code === null ? null : isErrorCode(row.error_code) ? row.error_code : 'InternalError',
    errorMessage: row.error_message,
    outcome: row.result === null ? null : (JSON.parse(row.result) as MoveOutcome),
    createdAtMs: Number(row.created_at),
    startedAtMs: row.started_at === null ? null : Number(row.started_at),
    finishedAtMs: row.finished_at === null ? null : Number(row.finished_at),
  };
}

/**
 * Check `request`, record the move and queue its job, all in `t`; with `fromHostId`, only while the
 * instance is still on that host. Every refusal is a catalogue error thrown before anything is
 * written: the move row goes first, and a move another node started meanwhile makes it write
 * nothing (ON CONFLICT on the one-open-move index), so `t` stays usable on PostgreSQL too.
 * With `deferJobs` the job is added there, for the caller to insert later in `t` (enqueueMany).
 */
async function recordMove(ctx: ServiceContext, t: Trx, request: InstanceMoveRequest, fromHostId?: string, deferJobs?: NewJob[]): Promise<InstanceMoveTable> {
  const plan = await planMove(t, ctx.accountId, request);
  if (fromHostId !== undefined && plan.fromHostId !== fromHostId) {
    throw new AppError('Conflict', { reason: `Instance ${plan.instanceId} is on host ${plan.fromHostId} now, not ${fromHostId}.` });
  }
  const now = ctx.clock.nowMs();
  const moveId = request.moveId ?? newId('mv');
  const jobId = newId('job');
  const row: InstanceMoveTable = {
    id: moveId,
    account_id: ctx.accountId,
    instance_id: plan.instanceId,
    origin: plan.origin,
    job_id: jobId,
    state: 'queued',
    phase: 'preparing',
    progress_bp: 0,
    plan: JSON.stringify(plan),
    from_host_id: plan.fromHostId,
    to_host_id: null,
    claim_id: null,
    was_running: null,
    error_code: null,
    error_message: null,
    result: null,
    created_at: now,
    started_at: null,
    finished_at: null,
    updated_at: now,
  };
  const inserted = await t
    .insertInto('instance_moves')
    .values(row)
    // Literal values: SQLite matches a partial index to the conflict target by the WHERE's text, not its parameters.
    .onConflict((oc) => oc.column('instance_id').where(sql.ref('state'), 'in', [sql.lit('queued'), sql.lit('running')]).doNothing())
    .returning('id')
    .executeTakeFirst();
  if (inserted === undefined) throw movingAlready(plan.instanceId, 'another move');
  const payload: MoveJobPayload = { moveId, accountId: ctx.accountId };
  const job: NewJob = { kind: instanceMoveJobKind, payload, options: { id: jobId, maxAttempts: instanceMoveMaxAttempts } };
  if (deferJobs === undefined) await ctx.jobs.enqueueMany([job], t);
  else deferJobs.push(job);
  return row;
}

/**
 * Check `request`, record the move and queue its job. With `trx` both commit with the caller's
 * own writes (and every read goes through it). Refuses a second unfinished move of an instance.
 */
export async function startInstanceMove(ctx: ServiceContext, request: InstanceMoveRequest, trx?: Trx): Promise<InstanceMoveView> {
  if (trx === undefined) await rollBackStalledMove(ctx, request.instanceId);
  const row = trx === undefined ? await ctx.database.db.transaction().execute((t) => recordMove(ctx, t, request)) : await recordMove(ctx, trx, request);
  return toMoveView(row);
}

/**
 * An unfinished move whose job has ended (cancelled while queued, or given up after its workers
 * kept dying) would hold its instance forever: queue a job that rolls it back. The instance stays
 * refused until that job has run.
 */
async function rollBackStalledMove(ctx: ServiceContext, instanceId: string): Promise<void> {
  const stalled = await ctx.database.db
    .selectFrom('instance_moves as m')
    .innerJoin('jobs as j', 'j.id', 'm.job_id')
    .select(['m.id', 'm.job_id', 'm.account_id'])
    .where('m.instance_id', '=', instanceId)
    .where('m.account_id', '=', ctx.accountId)
    .where('m.state', 'in', ['queued', 'running'])
    .where('j.state', 'in', ['failed', 'cancelled'])
    .executeTakeFirst();
  if (stalled === undefined) return;
  await ctx.database.db.transaction().execute(async (t) => {
    const jobId = newId('job');
    // Two callers may both see the stalled move: only the one that swaps its job id queues the rollback.
    const swapped = await t.updateTable('instance_moves').set({ job_id: jobId, updated_at: ctx.clock.nowMs() }).where('id', '=', stalled.id).where('job_id', '=', stalled.job_id).executeTakeFirst();
    if (Number(swapped.numUpdatedRows) !== 1) return;
    const payload: MoveJobPayload = { moveId: stalled.id, accountId: stalled.account_id, rollbackOf: stalled.job_id };
    await ctx.jobs.enqueue(instanceMoveJobKind, payload, { id: jobId, maxAttempts: instanceMoveMaxAttempts }, t);
  });
}

/** The origin of the moves ENS events start. */
export const eventMoveOrigin = 'ens-event';

/**
 * ENS events: move the instance off its host (same zone, public pool), with `dataPolicy` for its
 * data disks. The move keeps `eventId` among its attributes, so that it ends that event when it ends.
 */
export async function startEventMove(
  ctx: ServiceContext,
  input: { readonly instanceId: string; readonly dataPolicy: DataDiskPolicy; readonly eventId: string; readonly moveId?: string; readonly startAfter?: boolean },
  trx?: Trx,
): Promise<InstanceMoveView> {
  return startInstanceMove(
    ctx,
    {
      instanceId: input.instanceId,
      origin: eventMoveOrigin,
      dataDiskPolicy: input.dataPolicy,
      attributes: { eventId: input.eventId },
      ...(input.moveId === undefined ? {} : { moveId: input.moveId }),
      ...(input.startAfter === undefined ? {} : { startAfter: input.startAfter }),
    },
    trx,
  );
}

/**
 * startEventMove inside `trx`, for a caller with another way on (an ENS answer hands its event to
 * the event's job instead): undefined, with nothing written, when the move is refused for a reason
 * a user could be told (a catalogue error) or the instance is no longer on `fromHostId`. With
 * `deferJobs` the move's job is added there, for the caller to insert later in `trx`.
 */
export async function tryStartEventMove(
  ctx: ServiceContext,
  input: { readonly instanceId: string; readonly dataPolicy: DataDiskPolicy; readonly eventId: string; readonly moveId: string; readonly fromHostId: string },
  trx: Trx,
  deferJobs?: NewJob[],
): Promise<InstanceMoveView | undefined> {
  const request: InstanceMoveRequest = { instanceId: input.instanceId, origin: eventMoveOrigin, dataDiskPolicy: input.dataPolicy, attributes: { eventId: input.eventId }, moveId: input.moveId };
  try {
    return toMoveView(await recordMove(ctx, trx, request, input.fromHostId, deferJobs));
  } catch (err) {
    if (isAppError(err)) return undefined;
    throw err;
  }
}

/** One move of the caller's account, or undefined. */
export async function getInstanceMove(ctx: Pick<ServiceContext, 'database' | 'accountId'>, moveId: string, trx?: Trx): Promise<InstanceMoveView | undefined> {
  const row = await (trx ?? ctx.database.db).selectFrom('instance_moves').selectAll().where('id', '=', moveId).where('account_id', '=', ctx.accountId).executeTakeFirst();
  return row === undefined ? undefined : toMoveView(row);
}

export interface MoveListFilter {
  readonly origin?: string;
  readonly moveIds?: readonly string[];
  readonly instanceIds?: readonly string[];
  readonly states?: readonly MoveState[];
  /** From 1. */
  readonly pageNumber: number;
  readonly pageSize: number;
}

/** The caller's moves matching every given filter, newest first, one page of them. */
export async function listInstanceMoves(ctx: Pick<ServiceContext, 'database' | 'accountId'>, filter: MoveListFilter): Promise<{ totalCount: number; items: InstanceMoveView[] }> {
  let query = ctx.database.db.selectFrom('instance_moves').where('account_id', '=', ctx.accountId);
  if (filter.origin !== undefined) query = query.where('origin', '=', filter.origin);
  if (filter.moveIds !== undefined && filter.moveIds.length > 0) query = query.where('id', 'in', [...filter.moveIds]);
  if (filter.instanceIds !== undefined && filter.instanceIds.length > 0) query = query.where('instance_id', 'in', [...filter.instanceIds]);
  if (filter.states !== undefined) {
    if (filter.states.length === 0) return { totalCount: 0, items: [] };
    query = query.where('state', 'in', [...filter.states]);
  }
  const total = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  const rows = await query
    .selectAll()
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(filter.pageSize)
    .offset((filter.pageNumber - 1) * filter.pageSize)
    .execute();
  return { totalCount: Number(total.n), items: rows.map(toMoveView) };
}
