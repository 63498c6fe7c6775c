/**
 * ENS instance system events: raising them (a host state change, `ferry events inject`), listing
 * them (DescribeHistoryEvents), and their owners' answers (Event*Instance and the Batch forms).
 * Every open event has exactly one live engine job, named by `job_id`: at first the deadline job,
 * which executes the event by itself when nobody answered in time; an answer replaces it with a job
 * at the planned time or now, except a migrate or redeploy to run now, whose answer starts the
 * instance move itself (the event then names its move, which ends it). A job whose id the event no
 * longer names does nothing.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Clock } from '../core/clock.ts';
import { AppError, isAppError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { JobStore, NewJob, Trx } from '../engine/job-store.ts';
import type { Database, Db } from '../store/database.ts';
import type { EnsEventTable } from '../store/schema-ens.ts';
import {
  type DataPolicy,
  type EventAction,
  type EventLevel,
  type EventStatus,
  type EventTransition,
  type EventType,
  type OpsType,
  eventActionNames,
  eventLevels,
  eventMachine,
  eventStatuses,
  eventTarget,
  eventTypeInfo,
  eventTypes,
  isEventLevel,
  isEventStatus,
  isEventType,
  openEventStatuses,
  raisableEventTypes,
  typesHandledBy,
} from './events-model.ts';
import { type EventAnswer, type EventAnswerInput, type EventField, checkEventAnswer, eventParamError, hashPassword } from './events-params.ts';
import { tryStartEventMove } from './instance-move.ts';
import type { Page, PageRequest } from './paging.ts';
import type { ServiceContext } from './service-context.ts';

/** The engine job kind that executes events (at their deadline, planned time, or at once). */
export const eventJobKind = 'ens-event';

export interface EventJobPayload {
  readonly eventId: string;
  /** The event owner's: the native jobs API shows the job to that account. */
  readonly accountId: string;
}

/** Attempts of an event job: a move that fails for good fails the event, it is not retried forever. */
export const eventJobMaxAttempts = 5;

export type EventSource = 'host' | 'inject';

export interface EventView {
  readonly eventId: string;
  readonly eventType: EventType;
  readonly status: EventStatus;
  readonly level: EventLevel;
  /** The instance. */
  readonly resourceId: string;
  readonly reason: string;
  readonly source: EventSource;
  readonly hostId: string;
  readonly publishTimeMs: number;
  /** When the event runs: the deadline while Inquiring, the planned time once Scheduled. */
  readonly notBeforeMs: number;
  /** When the system executes the event itself if nobody answers. */
  readonly deadlineMs: number;
  readonly opsType: OpsType | null;
  readonly dataPolicy: DataPolicy | null;
  readonly executedBy: 'owner' | 'system' | null;
  readonly moveId: string | null;
  readonly result: unknown;
  readonly error: string | null;
  readonly finishedAtMs: number | null;
}

export function toEventView(row: EnsEventTable): EventView {
  return {
    eventId: row.id,
    eventType: row.event_type as EventType,
    status: row.status as EventStatus,
    level: row.level as EventLevel,
    resourceId: row.instance_id,
    reason: row.reason,
    source: row.source as EventSource,
    hostId: row.host_id,
    publishTimeMs: Number(row.published_at),
    notBeforeMs: Number(row.not_before),
    deadlineMs: Number(row.deadline_at),
    opsType: row.ops_type as OpsType | null,
    dataPolicy: row.data_policy as DataPolicy | null,
    executedBy: row.executed_by as EventView['executedBy'],
    moveId: row.move_id,
    result: row.result === null ? null : (JSON.parse(row.result) as unknown),
    error: row.error,
    finishedAtMs: row.finished_at === null ? null : Number(row.finished_at),
  };
}

/** An ENS event id: `e-` and 32 hex characters. */
function newEventId(): string {
  return `e-${randomBytes(16).toString('hex')}`;
}

/** The store, time and job queue that raising and answering events need. */
export interface EventPorts {
  readonly database: Database;
  readonly clock: Clock;
  readonly jobs: JobStore;
}

/** Longest answer window accepted: 30 days. */
const maxWindowMs = 30 * 24 * 60 * 60_000;

/** The answer window of a new `eventType` event: `windowMs` checked, or the type's default. */
export function eventWindowMs(eventType: EventType, windowMs?: number): number {
  const info = eventTypeInfo[eventType];
  if (info === undefined) {
    throw new AppError('InvalidParameter', { name: 'eventType', reason: `Ferry raises only ${raisableEventTypes.join(', ')}, not ${eventType}` });
  }
  const ms = windowMs ?? info.defaultWindowMs;
  if (!Number.isInteger(ms) || ms < 0 || ms > maxWindowMs) {
    throw new AppError('InvalidParameter', { name: 'deadlineMs', reason: `must be a whole number of milliseconds from 0 to ${maxWindowMs}` });
  }
  return ms;
}

interface InstanceRef {
  readonly id: string;
  readonly account_id: string;
  readonly host_id: string;
}

/**
 * Raise one event on an instance inside `trx`, with its deadline job. Answers undefined when the
 * instance already has an open event (the partial unique index decides, so two nodes raising at
 * once cannot both win).
 */
async function raiseInTrx(ports: EventPorts, trx: Trx, instance: InstanceRef, eventType: EventType, source: EventSource, windowMs: number): Promise<EnsEventTable | undefined> {
  const nowMs = ports.clock.nowMs();
  const info = eventTypeInfo[eventType];
  if (info === undefined) return undefined;
  const jobId = newId('job');
  const row: EnsEventTable = {
    id: newEventId(),
    account_id: instance.account_id,
    instance_id: instance.id,
    event_type: eventType,
    status: 'Inquiring',
    level: info.level,
    reason: `Instance ${instance.id} on host ${instance.host_id}: ${info.reason}.`,
    source,
    host_id: instance.host_id,
    published_at: nowMs,
    not_before: nowMs + windowMs,
    deadline_at: nowMs + windowMs,
    ops_type: null,
    data_policy: null,
    password_hash: null,
    executed_by: null,
    job_id: jobId,
    move_id: null,
    result: null,
    error: null,
    created_at: nowMs,
    updated_at: nowMs,
    finished_at: null,
  };
  const inserted = await trx
    .insertInto('ens_events')
    .values(row)
    // Literal values: SQLite matches a partial index to the conflict target by the WHERE's text, not its parameters.
    .onConflict((oc) => oc.column('instance_id').where(sql.ref('status'), 'in', openEventStatuses.map((s) => sql.lit(s))).doNothing())
    .returning('id')
    .executeTakeFirst();
  if (inserted === undefined) return undefined;
  const payload: EventJobPayload = { eventId: row.id, accountId: row.account_id };
  await ports.jobs.enqueue(eventJobKind, payload, { id: jobId, runAtMs: row.deadline_at, maxAttempts: eventJobMaxAttempts }, trx);
  return row;
}

async function openEventOf(db: Db | Trx, instanceId: string): Promise<EnsEventTable | undefined> {
  return db.selectFrom('ens_events').selectAll().where('instance_id', '=', instanceId).where('status', 'in', [...openEventStatuses]).executeTakeFirst();
}

/**
 * `ferry events inject`: raise an event on one of the caller's instances, as the platform would.
 * An instance has at most one open event: a second is refused with EventAlreadyOpen.
 */
export async function injectEvent(ctx: ServiceContext, request: { readonly instanceId: string; readonly eventType: string; readonly windowMs?: number | undefined }): Promise<EventView> {
  const { eventType } = request;
  if (!isEventType(eventType) || eventTypeInfo[eventType] === undefined) {
    throw new AppError('InvalidParameter', { name: 'eventType', reason: `use one of ${raisableEventTypes.join(', ')}` });
  }
  const windowMs = eventWindowMs(eventType, request.windowMs);
  const row = await ctx.database.db.transaction().execute(async (trx) => {
    const instance = await trx.selectFrom('instances').select(['id', 'account_id', 'host_id']).where('id', '=', request.instanceId).where('account_id', '=', ctx.accountId).executeTakeFirst();
    if (instance === undefined) throw new AppError('InstanceNotFound', { instanceId: request.instanceId });
    const raised = await raiseInTrx(ctx, trx, instance, eventType, 'inject', windowMs);
    if (raised !== undefined) return raised;
    const open = await openEventOf(trx, instance.id);
    throw new AppError('EventAlreadyOpen', { instanceId: instance.id, eventId: open?.id ?? 'unknown', eventType: open?.event_type ?? 'unknown' });
  });
  return toEventView(row);
}

/**
 * Raise `eventType` on every instance on `hostId` that has no open event yet (a host state change).
 * Returns the new events; instances that already had one keep it.
 */
export async function raiseHostEvents(ports: EventPorts, hostId: string, eventType: EventType, requestedWindowMs?: number): Promise<EventView[]> {
  const windowMs = eventWindowMs(eventType, requestedWindowMs);
  const rows = await ports.database.db.transaction().execute(async (trx) => {
    const instances = await trx.selectFrom('instances').select(['id', 'account_id', 'host_id']).where('host_id', '=', hostId).orderBy('id').execute();
    const raised: EnsEventTable[] = [];
    for (const instance of instances) {
      const row = await raiseInTrx(ports, trx, instance, eventType, 'host', windowMs);
      if (row !== undefined) raised.push(row);
    }
    return raised;
  });
  return rows.map(toEventView);
}

/**
 * The operator ended the host's trouble (it is Available again): events raised by its state change
 * that have not started are Canceled. Executing ones run to their end.
 */
export async function cancelHostEvents(ports: EventPorts, hostId: string): Promise<EventView[]> {
  const nowMs = ports.clock.nowMs();
  const rows = await ports.database.db
    .updateTable('ens_events')
    .set({ status: eventTarget('cancel'), job_id: null, updated_at: nowMs, finished_at: nowMs, error: `Host ${hostId} is Available again; the event was canceled.` })
    .where('host_id', '=', hostId)
    .where('source', '=', 'host')
    .where('status', 'in', eventMachine.sourcesOf('cancel'))
    .returningAll()
    .execute();
  return rows.map(toEventView);
}

/** One of the caller's events. */
export async function getEvent(ctx: ServiceContext, eventId: string): Promise<EventView> {
  const row = await ctx.database.db.selectFrom('ens_events').selectAll().where('id', '=', eventId).where('account_id', '=', ctx.accountId).executeTakeFirst();
  if (row === undefined) throw new AppError('EventNotFound', { eventId });
  return toEventView(row);
}

export interface ListEventsFilter extends PageRequest {
  /** At least one (DescribeHistoryEvents requires EventTypes). */
  readonly eventTypes: readonly string[];
  readonly statuses?: readonly string[] | undefined;
  readonly levels?: readonly string[] | undefined;
  readonly resourceIds?: readonly string[] | undefined;
  /** PublishTime range, epoch ms, inclusive. */
  readonly publishedFromMs?: number | undefined;
  readonly publishedToMs?: number | undefined;
  /** NotBefore range, epoch ms, inclusive. */
  readonly notBeforeFromMs?: number | undefined;
  readonly notBeforeToMs?: number | undefined;
}

export const defaultEventPageSize = 10;
export const maxEventPageSize = 100;
const maxResourceIds = 100;

function checkValues(field: EventField, values: readonly string[] | undefined, valid: (v: string) => boolean, allowed: readonly string[]): string[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const bad = values.find((v) => !valid(v));
  if (bad !== undefined) throw eventParamError(field, `${bad.slice(0, 64)} is not one of ${allowed.join(', ')}`);
  return [...new Set(values)];
}

function checkPaging(field: EventField, value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) throw eventParamError(field, `must be a whole number from 1 to ${max}`);
  return value;
}

/**
 * The caller's events matching every given filter, newest first (PublishTime, then id), a page at
 * a time. EventTypes is required; unknown enum values are InvalidParameter.<Field>.
 */
export async function listEvents(ctx: ServiceContext, filter: ListEventsFilter): Promise<Page<EventView>> {
  const types = checkValues('EventTypes', filter.eventTypes, isEventType, eventTypes);
  if (types === undefined) throw new AppError('MissingParameter', { name: 'EventTypes' });
  const statuses = checkValues('EventStatus', filter.statuses, isEventStatus, eventStatuses);
  const levels = checkValues('EventLevels', filter.levels, isEventLevel, eventLevels);
  const resourceIds = filter.resourceIds === undefined || filter.resourceIds.length === 0 ? undefined : [...new Set(filter.resourceIds)];
  if (resourceIds !== undefined && resourceIds.length > maxResourceIds) throw eventParamError('ResourceIds', `has ${resourceIds.length} ids; at most ${maxResourceIds} are accepted`);
  const pageNumber = checkPaging('PageNumber', filter.pageNumber, 1, 1_000_000);
  const pageSize = checkPaging('PageSize', filter.pageSize, defaultEventPageSize, maxEventPageSize);
  let query = ctx.database.db.selectFrom('ens_events').where('account_id', '=', ctx.accountId).where('event_type', 'in', types);
  if (statuses !== undefined) query = query.where('status', 'in', statuses);
  if (levels !== undefined) query = query.where('level', 'in', levels);
  if (resourceIds !== undefined) query = query.where('instance_id', 'in', resourceIds);
  if (filter.publishedFromMs !== undefined) query = query.where('published_at', '>=', filter.publishedFromMs);
  if (filter.publishedToMs !== undefined) query = query.where('published_at', '<=', filter.publishedToMs);
  if (filter.notBeforeFromMs !== undefined) query = query.where('not_before', '>=', filter.notBeforeFromMs);
  if (filter.notBeforeToMs !== undefined) query = query.where('not_before', '<=', filter.notBeforeToMs);
  const counted = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  const rows = await query
    .selectAll()
    .orderBy('published_at', 'desc')
    .orderBy('id', 'desc')
    .limit(pageSize)
    .offset((pageNumber - 1) * pageSize)
    .execute();
  return { pageNumber, pageSize, totalCount: Number(counted.n), items: rows.map(toEventView) };
}

/**
 * Apply the owner's answer inside `trx`: check the event against the action, its state and its
 * deadline, then move it along the table and hand it to a new job (now, or at the planned time).
 * A migrate or redeploy to run now starts its instance move right here, in `trx`, as the event's
 * job would (the move ends the event when it ends); when the move cannot start, the job runs as
 * it would have, and fails or avoids the event. The new job is added to `newJobs`, which the caller
 * inserts in `trx` (a batch's jobs with one INSERT). The event is read (and locked) here, or taken
 * from `prefetched`, which a batch reads with one query; each row there serves one answer.
 * Returns the job the answer replaced, which the caller cancels once committed.
 */
async function answerInTrx(
  ctx: ServiceContext,
  trx: Trx,
  action: EventAction,
  answer: EventAnswer,
  passwordHash: string | null,
  newJobs: NewJob[],
  prefetched?: Map<string, EnsEventTable>,
): Promise<string | null> {
  const ports: EventPorts = ctx;
  const nowMs = ports.clock.nowMs();
  const fetched = prefetched?.get(answer.eventId);
  // A second answer to the same event in one batch reads it again, as the first one left it.
  prefetched?.delete(answer.eventId);
  const row = fetched ?? (await lockedEvents(ctx, trx, [answer.eventId]))[0];
  if (row === undefined) throw new AppError('EventNotFound', { eventId: answer.eventId });
  if (row.instance_id !== answer.resourceId) throw eventParamError('ResourceId', `event ${row.id} concerns instance ${row.instance_id}, not ${answer.resourceId}`);
  const accepted = typesHandledBy(action);
  if (!(accepted as readonly string[]).includes(row.event_type)) {
    throw eventParamError('EventId', `event ${row.id} is of type ${row.event_type}; ${eventActionNames[action]} handles only ${accepted.join(', ')}`);
  }
  const transition: EventTransition = answer.opsType === 'immediate' ? 'execute' : 'schedule';
  const status = row.status as EventStatus;
  const to = eventMachine.next(status, transition);
  if (to === undefined) {
    throw new AppError('EventStatusConflict', { eventId: row.id, status, action: eventActionNames[action], allowed: eventMachine.sourcesOf(transition).join(' or ') });
  }
  const deadlineMs = Number(row.deadline_at);
  if (answer.planTimeMs !== undefined) {
    if (answer.planTimeMs <= nowMs) throw eventParamError('PlanTime', `${new Date(answer.planTimeMs).toISOString()} is not in the future`);
    if (answer.planTimeMs > deadlineMs) {
      throw eventParamError('PlanTime', `${new Date(answer.planTimeMs).toISOString()} is after the event's deadline ${new Date(deadlineMs).toISOString()}, when the system runs it`);
    }
  }
  const runAtMs = answer.planTimeMs ?? nowMs;
  const jobId = newId('job');
  const dataPolicy = action === 'reboot' ? null : action === 'redeploy' ? 'force_transfer' : answer.dataPolicy;
  // The event names its move before the move is recorded: the move's end finds the event by it.
  const moveId = to === 'Executing' && dataPolicy !== null ? newId('mv') : null;
  const updated = await trx
    .updateTable('ens_events')
    .set({
      status: to,
      ops_type: answer.opsType,
      data_policy: dataPolicy,
      password_hash: passwordHash,
      executed_by: to === 'Executing' ? 'owner' : null,
      not_before: runAtMs,
      job_id: moveId === null ? jobId : null,
      move_id: moveId,
      updated_at: nowMs,
    })
    .where('id', '=', row.id)
    .where('status', '=', status)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) !== 1) {
    throw new AppError('EventStatusConflict', { eventId: row.id, status: 'changing', action: eventActionNames[action], allowed: eventMachine.sourcesOf(transition).join(' or ') });
  }
  if (moveId !== null && dataPolicy !== null) {
    const move = await tryStartEventMove(ctx, { instanceId: row.instance_id, dataPolicy, eventId: row.id, moveId, fromHostId: row.host_id }, trx, newJobs);
    if (move !== undefined) return row.job_id;
    // The move cannot start now: the event's job decides, as for a planned answer (it fails or avoids the event).
    await trx.updateTable('ens_events').set({ job_id: jobId, move_id: null }).where('id', '=', row.id).execute();
  }
  const payload: EventJobPayload = { eventId: row.id, accountId: row.account_id };
  newJobs.push({ kind: eventJobKind, payload, options: { id: jobId, runAtMs, maxAttempts: eventJobMaxAttempts } });
  return row.job_id;
}

/** The caller's events among `eventIds`, locked for this transaction on PostgreSQL (in id order, so batches take turns). */
async function lockedEvents(ctx: ServiceContext, trx: Trx, eventIds: readonly string[]): Promise<EnsEventTable[]> {
  if (eventIds.length === 0) return [];
  return trx
    .selectFrom('ens_events')
    .selectAll()
    .where('id', 'in', [...eventIds])
    .where('account_id', '=', ctx.accountId)
    .orderBy('id')
    .$if(ctx.database.dialect === 'postgres', (qb) => qb.forUpdate())
    .execute();
}

/** The replaced jobs would find themselves stale and do nothing; cancelling them (with the answers) keeps the queue short. */
async function dropJobs(jobs: JobStore, trx: Trx, jobIds: readonly (string | null)[]): Promise<void> {
  await jobs.cancelMany(
    jobIds.filter((id) => id !== null),
    trx,
  );
}

/**
 * EventMigrateInstance, EventRedeployInstance, EventRebootInstance: the owner runs the event now
 * (OpsType immediate) or plans it (scheduled, PlanTime before the event's deadline).
 */
export async function answerEvent(ctx: ServiceContext, action: EventAction, input: EventAnswerInput): Promise<void> {
  const answer = checkEventAnswer(input, action === 'migrate');
  // scrypt is slow on purpose: hash before the transaction, not while holding its locks.
  const passwordHash = answer.password === undefined ? null : hashPassword(answer.password);
  await ctx.database.db.transaction().execute(async (trx) => {
    const newJobs: NewJob[] = [];
    const replaced = await answerInTrx(ctx, trx, action, answer, passwordHash, newJobs);
    await ctx.jobs.enqueueMany(newJobs, trx);
    await dropJobs(ctx.jobs, trx, [replaced]);
  });
}

export interface BatchItemResult {
  readonly eventId: string;
  readonly resourceId: string;
  /** 200 on success; else the HTTP status the single action would have answered. */
  readonly code: number;
  readonly message: string;
  /** The error's Alibaba code, e.g. `InvalidParameter.PlanTime`, when code is not 200. */
  readonly errorCode: string | null;
}

/**
 * Batch answers: each item is checked and applied on its own; one item breaking a rule leaves the
 * others done. All are written in one transaction (a rule's error is raised before its item writes
 * anything), so a batch costs a few round trips per item, not a transaction each.
 */
export async function answerEvents(ctx: ServiceContext, action: EventAction, inputs: readonly EventAnswerInput[]): Promise<BatchItemResult[]> {
  const failed = (input: EventAnswerInput, err: unknown): BatchItemResult => {
    // An unexpected failure fails the whole request, so the door logs it; a rule's error is this item's answer.
    if (!isAppError(err)) throw err;
    return { ...itemIds(input), code: err.httpStatus, message: err.message, errorCode: err.alibabaCode };
  };
  // scrypt is slow on purpose: hash before the transaction, not while holding its locks.
  const checked = inputs.map((input) => {
    try {
      const answer = checkEventAnswer(input, action === 'migrate');
      return { input, answer, passwordHash: answer.password === undefined ? null : hashPassword(answer.password) };
    } catch (err) {
      return { input, result: failed(input, err) };
    }
  });
  return ctx.database.db.transaction().execute(async (trx) => {
    const results: BatchItemResult[] = [];
    const replaced: (string | null)[] = [];
    // Only answers that succeeded add a job: each adds it as its last step.
    const newJobs: NewJob[] = [];
    const prefetched = new Map((await lockedEvents(ctx, trx, checked.flatMap((item) => (item.result === undefined ? [item.answer.eventId] : [])))).map((row) => [row.id, row]));
    for (const item of checked) {
      if (item.result !== undefined) {
        results.push(item.result);
        continue;
      }
      try {
        replaced.push(await answerInTrx(ctx, trx, action, item.answer, item.passwordHash, newJobs, prefetched));
        results.push({ ...itemIds(item.input), code: 200, message: 'success', errorCode: null });
      } catch (err) {
        results.push(failed(item.input, err));
      }
    }
    await ctx.jobs.enqueueMany(newJobs, trx);
    await dropJobs(ctx.jobs, trx, replaced);
    return results;
  });
}

function itemIds(input: EventAnswerInput): Pick<BatchItemResult, 'eventId' | 'resourceId'> {
  return { eventId: typeof input.eventId === 'string' ? input.eventId : '', resourceId: typeof input.resourceId === 'string' ? input.resourceId : '' };
}
