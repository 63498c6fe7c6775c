import { Type } from 'typebox';
import { answerEvent, getEvent, injectEvent, listEvents } from '../../../migration/events.ts';
import { changeHostState } from '../../../migration/events-host-state.ts';
import type { NativeRoutes } from '../native-door.ts';

const EventId = Type.Object({ eventId: Type.String({ maxLength: 64 }) });

/** A comma-joined query value as a list; absent or empty means no filter. */
function list(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  return value.split(',').map((v) => v.trim()).filter((v) => v !== '');
}

/**
 * ENS system events over the native API (`ferry events ...`, `ferry host set-state`): the same
 * services as the ENS actions at `/`, in Ferry's own words (camelCase, epoch milliseconds).
 */
export const eventRoutes: NativeRoutes = (scope, deps) => {
  scope.post(
    '/hosts/:hostId/state',
    {
      schema: {
        tags: ['events'],
        summary: 'Set a host to available, maintenance, failed or offline; maintenance and failed raise an event on each of its instances, available cancels those not started',
        params: Type.Object({ hostId: Type.String({ maxLength: 64 }) }),
        body: Type.Object({
          state: Type.String({ maxLength: 32 }),
          eventType: Type.Optional(Type.String({ maxLength: 64 })),
          deadlineMs: Type.Optional(Type.Integer({ minimum: 0, description: 'answer window: the system executes the events this long after publishing them' })),
        }),
      },
    },
    async (request) => {
      deps.authorize(request, 'SetHostState', `acs:ferry:*:*:host/${request.params.hostId}`);
      const { state, eventType, deadlineMs } = request.body;
      return changeHostState(deps.context(request), { hostId: request.params.hostId, state, eventType, deadlineMs });
    },
  );
  scope.post(
    '/events',
    {
      schema: {
        tags: ['events'],
        summary: 'Raise a system event on one of your instances, as the platform would (ferry events inject)',
        body: Type.Object({
          instanceId: Type.String({ maxLength: 64 }),
          eventType: Type.String({ maxLength: 64 }),
          deadlineMs: Type.Optional(Type.Integer({ minimum: 0, description: 'answer window; default per event type' })),
        }),
      },
    },
    async (request) => {
      const ctx = deps.context(request);
      deps.authorize(request, 'InjectEvent', `acs:ferry:*:${ctx.accountId}:instance/${request.body.instanceId}`);
      return injectEvent(ctx, { instanceId: request.body.instanceId, eventType: request.body.eventType, windowMs: request.body.deadlineMs });
    },
  );
  scope.get(
    '/events',
    {
      schema: {
        tags: ['events'],
        summary: 'Your system events, newest first; list filters are comma-joined',
        querystring: Type.Object({
          eventTypes: Type.String({ maxLength: 2000 }),
          statuses: Type.Optional(Type.String({ maxLength: 500 })),
          levels: Type.Optional(Type.String({ maxLength: 100 })),
          resourceIds: Type.Optional(Type.String({ maxLength: 7000 })),
          publishedFromMs: Type.Optional(Type.Integer()),
          publishedToMs: Type.Optional(Type.Integer()),
          notBeforeFromMs: Type.Optional(Type.Integer()),
          notBeforeToMs: Type.Optional(Type.Integer()),
          pageNumber: Type.Optional(Type.Integer()),
          pageSize: Type.Optional(Type.Integer()),
        }),
      },
    },
    async (request) => {
      deps.authorize(request, 'ListEvents');
      const q = request.query;
      return listEvents(deps.context(request), { ...q, eventTypes: list(q.eventTypes) ?? [], statuses: list(q.statuses), levels: list(q.levels), resourceIds: list(q.resourceIds) });
    },
  );
  scope.get('/events/:eventId', { schema: { tags: ['events'], summary: 'One of your system events', params: EventId } }, async (request) => {
    deps.authorize(request, 'GetEvent');
    return getEvent(deps.context(request), request.params.eventId);
  });
  scope.post(
    '/events/:eventId/answer',
    {
      schema: {
        tags: ['events'],
        summary: 'Answer an event as EventMigrateInstance, EventRedeployInstance or EventRebootInstance do',
        params: EventId,
        body: Type.Object({
          action: Type.Union([Type.Literal('migrate'), Type.Literal('redeploy'), Type.Literal('reboot')]),
          resourceId: Type.String({ maxLength: 64 }),
          opsType: Type.String({ maxLength: 32 }),
          planTimeMs: Type.Optional(Type.Integer()),
          dataPolicy: Type.Optional(Type.String({ maxLength: 32 })),
          password: Type.Optional(Type.String({ maxLength: 64 })),
        }),
      },
    },
    async (request) => {
      const ctx = deps.context(request);
      const b = request.body;
      deps.authorize(request, 'AnswerEvent', `acs:ferry:*:${ctx.accountId}:instance/${b.resourceId}`);
      await answerEvent(ctx, b.action, { eventId: request.params.eventId, resourceId: b.resourceId, opsType: b.opsType, planTime: b.planTimeMs, dataPolicy: b.dataPolicy, password: b.password });
      return getEvent(ctx, request.params.eventId);
    },
  );
};
