/** SMC CreateCrossZoneMigrationJob (smc-CreateCrossZoneMigrationJob.txt). Translation only: the rules are in src/migration/cross-zone.ts. */
import { Type } from 'typebox';
import { createCrossZoneMigrationJob } from '../../../migration/cross-zone.ts';
import { popAction } from '../action-registry.ts';
import { text } from './smc-wire.ts';

const performanceLevel = Type.Optional(Type.Union([Type.Literal('PL0'), Type.Literal('PL1'), Type.Literal('PL2'), Type.Literal('PL3')]));

export const crossZoneActions = [
  popAction({
    product: 'smc',
    name: 'CreateCrossZoneMigrationJob',
    summary: 'Move an ECS instance to another zone of its region, optionally to another type of its family and to ESSD disks',
    idempotent: true,
    params: Type.Object({
      RegionId: Type.String({ minLength: 1, maxLength: 64 }),
      ClientToken: Type.Optional(Type.String({ maxLength: 64, pattern: '^[\\x20-\\x7E]*$' })),
      InstanceId: text(128),
      TargetZoneId: text(128),
      TargetVSwitchId: text(128),
      TargetInstanceType: text(128),
      AutoPay: Type.Optional(Type.Boolean()),
      ResourceGroupId: text(128),
      Disk: Type.Optional(Type.Array(Type.Object({ DiskId: text(128), Category: text(64), PerformanceLevel: performanceLevel }), { maxItems: 64 })),
    }),
    handle: async (ctx, p) => {
      const created = await createCrossZoneMigrationJob(ctx, {
        regionId: p.RegionId,
        instanceId: p.InstanceId,
        targetZoneId: p.TargetZoneId,
        targetVSwitchId: p.TargetVSwitchId,
        targetInstanceType: p.TargetInstanceType,
        autoPay: p.AutoPay,
        resourceGroupId: p.ResourceGroupId,
        disks: p.Disk?.map((d) => ({ diskId: d.DiskId, category: d.Category, performanceLevel: d.PerformanceLevel })),
      });
      return { JobId: created.jobId };
    },
  }),
];
