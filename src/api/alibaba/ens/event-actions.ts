/**
 * ENS 2017-11-10 system-event actions (ens-api.md §1): DescribeHistoryEvents, the three
 * Event*Instance answers and their Batch* forms. Translation only: the rules are in
 * src/migration/events*.ts. ENS documents every request error of these actions with HTTP 400
 * (InvalidParameter.<Field>, NoPermission), so a 4xx from the service is answered as 400 here.
 */
import { Type } from 'typebox';
import { AppError, isAppError } from '../../../core/errors.ts';
import { answerEvent, answerEvents, type EventView, listEvents } from '../../../migration/events.ts';
import type { EventAction } from '../../../migration/events-model.ts';
import { utcTimeMs } from '../../../migration/events-params.ts';
import { isoUtc } from '../../../migration/validation.ts';
import type { ServiceContext } from '../../../migration/service-context.ts';
import { type PopAction, popAction } from '../action-registry.ts';

/** ENS answers its documented request errors with HTTP 400 whatever Ferry's native status is. */
function asEnsError(err: unknown): unknown {
  if (!isAppError(err) || err.httpStatus === 400 || err.httpStatus < 400 || err.httpStatus >= 500) return err;
  return new AppError(err.code, err.params, { alibabaCode: err.alibabaCode, huaweiCode: err.huaweiCode, httpStatus: 400, cause: err });
}

async function ensCall<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw asEnsError(err);
  }
}

/** Ferry extension: ECS-style ranges on DescribeHistoryEvents, ISO 8601 UTC (ENS itself names none). */
const timeRange = Type.Optional(Type.Object({ Start: Type.Optional(Type.String({ maxLength: 40 })), End: Type.Optional(Type.String({ maxLength: 40 })) }));
const textList = (maxLength: number) => Type.Optional(Type.Array(Type.String({ maxLength }), { maxItems: 1000 }));

function utcMs(field: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const ms = utcTimeMs(value);
  if (!Number.isFinite(ms)) throw new AppError('InvalidParameter', { name: field, reason: 'must be a UTC time such as 2026-03-20T06:30:32Z' });
  return ms;
}

/** `ExtendedAttribute`: JSON text with what Ferry knows beyond the documented fields. */
function extendedAttribute(e: EventView): string {
  const attribute: Record<string, unknown> = { HostId: e.hostId, Source: e.source, Deadline: e.deadlineMs, DeadlineUtcTime: isoUtc(e.deadlineMs) };
  if (e.opsType !== null) attribute['OpsType'] = e.opsType;
  if (e.dataPolicy !== null) attribute['DataPolicy'] = e.dataPolicy;
  if (e.executedBy !== null) attribute['ExecutedBy'] = e.executedBy;
  if (e.result !== null) attribute['Result'] = e.result;
  if (e.error !== null) attribute['Error'] = e.error;
  return JSON.stringify(attribute);
}

function eventItem(e: EventView): Record<string, unknown> {
  return {
    EventId: e.eventId,
    EventType: e.eventType,
    EventStatus: e.status,
    EventLevel: e.level,
    ResourceId: e.resourceId,
    Reason: e.reason,
    ExtendedAttribute: extendedAttribute(e),
    NotBefore: e.notBeforeMs,
    NotBeforeUtcTime: isoUtc(e.notBeforeMs),
    PublishTime: e.publishTimeMs,
    PublishUtcTime: isoUtc(e.publishTimeMs),
  };
}

const describeHistoryEvents = popAction({
  product: 'ens',
  name: 'DescribeHistoryEvents',
  summary: 'List instance system events (at least one EventTypes value), newest first',
  params: Type.Object({
    EventTypes: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 50 }),
    EventStatus: textList(32),
    EventLevels: textList(32),
    ResourceIds: textList(64),
    PageNumber: Type.Optional(Type.Integer()),
    PageSize: Type.Optional(Type.Integer()),
    EventPublishTime: timeRange,
    NotBefore: timeRange,
  }),
  handle: (ctx, p) =>
    ensCall(async () => {
      const page = await listEvents(ctx, {
        eventTypes: p.EventTypes,
        statuses: p.EventStatus,
        levels: p.EventLevels,
        resourceIds: p.ResourceIds,
        publishedFromMs: utcMs('EventPublishTime.Start', p.EventPublishTime?.Start),
        publishedToMs: utcMs('EventPublishTime.End', p.EventPublishTime?.End),
        notBeforeFromMs: utcMs('NotBefore.Start', p.NotBefore?.Start),
        notBeforeToMs: utcMs('NotBefore.End', p.NotBefore?.End),
        pageNumber: p.PageNumber,
        pageSize: p.PageSize,
      });
      return { PageNumber: page.pageNumber, PageSize: page.pageSize, TotalCount: page.totalCount, Events: page.items.map(eventItem) };
    }),
});

/** Text the service checks itself, so a bad value is InvalidParameter.<Field> rather than a schema failure. */
const loose = (maxLength: number) => Type.Optional(Type.Union([Type.String({ maxLength }), Type.Number()]));

const answerFields = {
  EventId: Type.String({ maxLength: 128 }),
  ResourceId: Type.String({ maxLength: 128 }),
  OpsType: Type.String({ maxLength: 32 }),
  PlanTime: loose(32),
  PlanUtcTime: Type.Optional(Type.String({ maxLength: 40 })),
};
const migrateFields = { ...answerFields, DataPolicy: Type.Optional(Type.String({ maxLength: 32 })), Password: Type.Optional(Type.String({ maxLength: 64 })) };

interface AnswerParams {
  readonly EventId?: unknown;
  readonly ResourceId?: unknown;
  readonly OpsType?: unknown;
  readonly PlanTime?: unknown;
  readonly PlanUtcTime?: unknown;
  readonly DataPolicy?: unknown;
  readonly Password?: unknown;
}

function answerInput(p: AnswerParams) {
  return { eventId: p.EventId, resourceId: p.ResourceId, opsType: p.OpsType, planTime: p.PlanTime, planUtcTime: p.PlanUtcTime, dataPolicy: p.DataPolicy, password: p.Password };
}

function singleAction(name: string, action: EventAction, summary: string): PopAction {
  return popAction({
    product: 'ens',
    name,
    summary,
    params: Type.Object(action === 'migrate' ? migrateFields : answerFields),
    resources: (p, account) => [`acs:ens:*:${account}:instance/${p.ResourceId}`],
    handle: (ctx, p) =>
      ensCall(async () => {
        await answerEvent(ctx, action, answerInput(p));
        return {};
      }),
  });
}

const batchItem = {
  EventId: loose(128),
  ResourceId: loose(128),
  OpsType: loose(32),
  PlanTime: loose(32),
  PlanUtcTime: loose(40),
};

function batchAction(name: string, action: EventAction, summary: string): PopAction {
  const item = action === 'migrate' ? { ...batchItem, DataPolicy: loose(32), Password: loose(64) } : batchItem;
  return popAction({
    product: 'ens',
    name,
    summary,
    params: Type.Object({ EventInfos: Type.Array(Type.Object(item), { minItems: 1, maxItems: 100 }) }),
    handle: async (ctx: ServiceContext, p) => {
      const results = await answerEvents(ctx, action, p.EventInfos.map(answerInput));
      return {
        Results: results.map((r) => ({
          EventId: r.eventId,
          ResourceId: r.resourceId,
          // ENS's per-item Code: 200 for success, else the status the single action answers (400 for request errors).
          Code: r.code === 200 ? 200 : r.code < 500 ? 400 : r.code,
          Message: r.errorCode === null ? r.message : `${r.errorCode}: ${r.message}`,
        })),
      };
    },
  });
}

export const eventActions: readonly PopAction[] = [
  describeHistoryEvents,
  singleAction('EventMigrateInstance', 'migrate', 'Migrate an instance to another host for an Instance:SystemUpgrade.Migrate event, now or at PlanTime'),
  singleAction('EventRedeployInstance', 'redeploy', 'Redeploy an instance, with all its disks, for an Instance:System*.Redeploy event, now or at PlanTime'),
  singleAction('EventRebootInstance', 'reboot', 'Reboot an instance for an Instance:System*.Reboot event, now or at PlanTime'),
  batchAction('BatchEventMigrateInstance', 'migrate', 'EventMigrateInstance for several events; per-item results'),
  batchAction('BatchEventRedeployInstance', 'redeploy', 'EventRedeployInstance for several events; per-item results'),
  batchAction('BatchEventRebootInstance', 'reboot', 'EventRebootInstance for several events; per-item results'),
];
