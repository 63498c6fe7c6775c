import { Type } from 'typebox';
import { AppError } from '../../../core/errors.ts';
import { applyFleet } from '../../../fleet/apply-fleet.ts';
import { dryRun } from '../../../fleet/placement/placement.ts';
import { showFleet, showInstance } from '../../../fleet/show-fleet.ts';
import { isOperator, requireOperator } from '../../../migration/operators.ts';
import type { NativeRoutes } from '../native-door.ts';

/** Fleet inventory: apply a fleet file, show the fleet, show an instance, explain a placement. */
export const fleetRoutes: NativeRoutes = (scope, deps) => {
  scope.post(
    '/fleet/apply',
    { schema: { tags: ['fleet'], summary: 'Apply a fleet file (the YAML of DESIGN.md, sent as JSON); idempotent', body: Type.Unknown() } },
    async (request) => {
      const ctx = deps.context(request);
      await requireOperator(ctx);
      deps.authorize(request, 'ApplyFleet');
      return applyFleet(deps.runtime.database, deps.runtime.driver, request.body, { clock: deps.runtime.clock });
    },
  );
  scope.get('/fleet', { schema: { tags: ['fleet'], summary: 'The whole fleet with capacity per NUMA node' } }, async (request) => {
    await requireOperator(deps.context(request));
    deps.authorize(request, 'ShowFleet');
    return showFleet(deps.runtime.database);
  });
  scope.get(
    '/instances/:instanceId',
    { schema: { tags: ['fleet'], summary: 'An instance: host, zone, dedicated host, status, type and disks with their backing files', params: Type.Object({ instanceId: Type.String({ maxLength: 64 }) }) } },
    async (request) => {
      const ctx = deps.context(request);
      deps.authorize(request, 'ShowInstance', `acs:ferry:*:${ctx.accountId}:instance/${request.params.instanceId}`);
      const instance = await showInstance(deps.runtime.database, request.params.instanceId).catch(() => undefined);
      if (instance === undefined || (instance.accountId !== ctx.accountId && !(await isOperator(ctx)))) {
        throw new AppError('NotFound', { resource: 'instance', id: request.params.instanceId });
      }
      return instance;
    },
  );
  scope.post(
    '/placement/dry-run',
    {
      schema: {
        tags: ['fleet'],
        summary: 'Which host a placement would choose and why every other host was rejected',
        body: Type.Object({
          instanceId: Type.String({ maxLength: 64 }),
          zoneId: Type.Optional(Type.String({ maxLength: 64 })),
          dedicatedHostId: Type.Optional(Type.String({ maxLength: 64 })),
          instanceTypeId: Type.Optional(Type.String({ maxLength: 64 })),
          weigher: Type.Optional(Type.Union([Type.Literal('spread'), Type.Literal('pack')])),
        }),
      },
    },
    async (request) => {
      await requireOperator(deps.context(request));
      deps.authorize(request, 'DryRunPlacement');
      const { instanceId, zoneId, dedicatedHostId, instanceTypeId, weigher } = request.body;
      return dryRun(deps.runtime.database, {
        instanceId,
        ...(zoneId === undefined ? {} : { zoneId }),
        ...(dedicatedHostId === undefined ? {} : { dedicatedHostId }),
        ...(instanceTypeId === undefined ? {} : { instanceTypeId }),
        ...(weigher === undefined ? {} : { weigher }),
      });
    },
  );
};
