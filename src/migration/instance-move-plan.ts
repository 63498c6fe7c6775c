/**
 * What a move asks for, checked and resolved against the fleet before anything is queued: every
 * rule a front door shares (the instance is the caller's, the zone in its region, the vSwitch in
 * that zone and the instance's VPC, the type of the same family, the disks its own) lives here.
 */
import { sql } from 'kysely';
import { AppError } from '../core/errors.ts';
import { diskCategories, performanceLevels } from '../fleet/fleet-spec.ts';
import type { Db } from '../store/database.ts';
import type { Trx } from '../engine/job-store.ts';

export type DiskCategory = (typeof diskCategories)[number];
export type PerformanceLevel = (typeof performanceLevels)[number];

/**
 * What happens to an instance's data disks (the system disk is always copied):
 * - `force_transfer` (default): every data disk is copied and verified; if one cannot be, the move
 *   fails and rolls back, and the instance stays on its source host with all its data.
 * - `try_transfer`: every data disk is copied when it can be; a disk whose copy fails for a reason a
 *   retry cannot fix (its source unreadable, the target pool full for it, a failed verify) is
 *   recreated empty, same size, on the target instead, and listed in the outcome's `abandonedDiskIds`.
 * - `abandon`: data disks are not copied; each is recreated empty, same size, on the target host,
 *   and its old copy is deleted once the move commits.
 */
export const dataDiskPolicies = ['force_transfer', 'try_transfer', 'abandon'] as const;
export type DataDiskPolicy = (typeof dataDiskPolicies)[number];

/** A disk's new category and performance level after the move (Alibaba `Disk.N`). */
export interface DiskChange {
  readonly diskId: string;
  readonly category?: string;
  readonly performanceLevel?: string;
}

export interface InstanceMoveRequest {
  readonly instanceId: string;
  /** Who asks (`smc-cross-zone`, `ecs-cold-migration`, `ens-event`, ...): each door lists its own moves. */
  readonly origin: string;
  /** The move's id in the asking door's form (SMC `j-…`, Huawei 32 hex); default `mv-…`. */
  readonly moveId?: string;
  /** Default: the target vSwitch's zone, else the dedicated host's zone, else the instance's own zone. */
  readonly targetZoneId?: string;
  /** Default: the instance's vSwitch when the zone stays, else the first vSwitch of its VPC in the target zone. */
  readonly targetVSwitchId?: string;
  /** Land on this dedicated host (the account's own); absent: the public pool, never a dedicated host. */
  readonly dedicatedHostId?: string;
  /** A type of the instance's own family; default its current type. */
  readonly targetInstanceType?: string;
  readonly diskChanges?: readonly DiskChange[];
  readonly dataDiskPolicy?: DataDiskPolicy;
  /** Start the instance after the move; default: start it when it was running when the move began. */
  readonly startAfter?: boolean;
  /** Door-specific values kept with the move and shown by its views (ResourceGroupId, AutoPay, ...). */
  readonly attributes?: Readonly<Record<string, string | number | boolean>>;
}

/** A request resolved against the fleet: what the move's job runs from (stored as JSON). */
export interface MovePlan {
  readonly instanceId: string;
  readonly origin: string;
  readonly regionId: string;
  readonly fromZoneId: string;
  readonly fromHostId: string;
  readonly fromDedicatedHostId: string | null;
  readonly fromInstanceType: string;
  readonly fromVSwitchId: string;
  readonly vpcId: string;
  readonly targetZoneId: string;
  /** null: the public pool. */
  readonly dedicatedHostId: string | null;
  readonly instanceType: string;
  readonly vSwitchId: string;
  readonly diskChanges: readonly { readonly diskId: string; readonly category: DiskCategory; readonly performanceLevel: PerformanceLevel }[];
  readonly dataDiskPolicy: DataDiskPolicy;
  readonly startAfter: boolean | null;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
}

function isOneOf<T extends string>(list: readonly T[], value: string): value is T {
  return (list as readonly string[]).includes(value);
}

async function loadInstance(db: Db | Trx, accountId: string, instanceId: string) {
  const row = await db
    .selectFrom('instances as i')
    .innerJoin('hosts as h', 'h.id', 'i.host_id')
    .innerJoin('zones as z', 'z.id', 'h.zone_id')
    .innerJoin('instance_types as t', 't.id', 'i.instance_type_id')
    .innerJoin('vswitches as v', 'v.id', 'i.vswitch_id')
    .select(['i.id', 'i.status', 'i.host_id', 'i.instance_type_id', 'i.vswitch_id', 'h.zone_id', 'h.dedicated_host_id', 'z.region_id', 't.family', 'v.vpc_id'])
    // Its unfinished move, if any (literal states: SQLite picks the index by the statement's text).
    .select((eb) =>
      eb
        .selectFrom('instance_moves as m')
        .select('m.id')
        .whereRef('m.instance_id', '=', 'i.id')
        .where(sql.ref('m.state'), 'in', [sql.lit('queued'), sql.lit('running')])
        .limit(1)
        .as('open_move_id'),
    )
    .where('i.id', '=', instanceId)
    .where('i.account_id', '=', accountId)
    .executeTakeFirst();
  if (row === undefined) throw new AppError('InstanceNotFound', { instanceId });
  return row;
}

/** The refusal of a move of an instance that `moveId` (or another move) is moving already. */
export function movingAlready(instanceId: string, moveId: string, cause?: unknown): AppError {
  return new AppError(
    'InstanceStatusInvalid',
    { instanceId, status: `being moved (${moveId})`, action: 'another move', allowed: 'Running or Stopped with no move under way' },
    cause === undefined ? {} : { cause },
  );
}

/**
 * Check `request` for `accountId` and resolve its defaults; throws the catalogue error of the first
 * rule it breaks, the last being that the instance has no unfinished move.
 */
export async function planMove(db: Db | Trx, accountId: string, request: InstanceMoveRequest): Promise<MovePlan> {
  const instance = await loadInstance(db, accountId, request.instanceId);
  const instanceId = instance.id;
  if (instance.status !== 'Running' && instance.status !== 'Stopped') {
    throw new AppError('InstanceStatusInvalid', { instanceId, status: instance.status, action: 'a move', allowed: 'Running or Stopped' });
  }

  let dedicatedHostZone: string | undefined;
  if (request.dedicatedHostId !== undefined) {
    const deh = await db
      .selectFrom('hosts')
      .select(['zone_id', 'dedicated_host_id'])
      .where('dedicated_host_id', '=', request.dedicatedHostId)
      .where('owner_account_id', '=', accountId)
      .executeTakeFirst();
    if (deh === undefined) throw new AppError('DedicatedHostNotFound', { dedicatedHostId: request.dedicatedHostId });
    if (deh.dedicated_host_id === instance.dedicated_host_id) throw new AppError('AlreadyOnDedicatedHost', { instanceId, dedicatedHostId: request.dedicatedHostId });
    dedicatedHostZone = deh.zone_id;
  }

  const targetVSwitch =
    request.targetVSwitchId === undefined
      ? undefined
      : await db
          .selectFrom('vswitches as v')
          .innerJoin('zones as z', 'z.id', 'v.zone_id')
          .select(['v.id', 'v.vpc_id', 'v.zone_id'])
          .where('v.id', '=', request.targetVSwitchId)
          .where('z.region_id', '=', instance.region_id)
          .executeTakeFirst();
  if (request.targetVSwitchId !== undefined && targetVSwitch === undefined) {
    throw new AppError('InvalidVSwitchIdNotFound', { vSwitchId: request.targetVSwitchId, regionId: instance.region_id });
  }

  const targetZoneId = request.targetZoneId ?? targetVSwitch?.zone_id ?? dedicatedHostZone ?? instance.zone_id;
  if (request.targetZoneId !== undefined) {
    const zone = await db.selectFrom('zones').select('id').where('id', '=', targetZoneId).where('region_id', '=', instance.region_id).executeTakeFirst();
    if (zone === undefined) throw new AppError('ZoneNotFound', { zoneId: targetZoneId, regionId: instance.region_id });
  }
  if (dedicatedHostZone !== undefined && dedicatedHostZone !== targetZoneId) {
    throw new AppError('InvalidParameter', { name: 'dedicatedHostId', reason: `dedicated host ${request.dedicatedHostId ?? ''} is in zone ${dedicatedHostZone}, not the target zone ${targetZoneId}` });
  }

  let vSwitchId: string;
  if (targetVSwitch !== undefined) {
    if (targetVSwitch.vpc_id !== instance.vpc_id) {
      throw new AppError('VSwitchIdVpcIdMismatch', { vSwitchId: targetVSwitch.id, vpcId: instance.vpc_id, actualVpcId: targetVSwitch.vpc_id });
    }
    if (targetVSwitch.zone_id !== targetZoneId) {
      throw new AppError('VSwitchZoneMismatch', { vSwitchId: targetVSwitch.id, reason: `is in zone ${targetVSwitch.zone_id}, not the target zone ${targetZoneId}`, vpcId: instance.vpc_id, zoneId: targetZoneId });
    }
    vSwitchId = targetVSwitch.id;
  } else if (targetZoneId === instance.zone_id) {
    vSwitchId = instance.vswitch_id;
  } else {
    const inZone = await db.selectFrom('vswitches').select('id').where('zone_id', '=', targetZoneId).where('vpc_id', '=', instance.vpc_id).orderBy('id').executeTakeFirst();
    if (inZone === undefined) {
      throw new AppError('VSwitchZoneMismatch', { vSwitchId: instance.vswitch_id, reason: `of the instance is in zone ${instance.zone_id} and its VPC has no vSwitch in zone ${targetZoneId}`, vpcId: instance.vpc_id, zoneId: targetZoneId });
    }
    vSwitchId = inZone.id;
  }

  let instanceType = instance.instance_type_id;
  if (request.targetInstanceType !== undefined) {
    const type = await db.selectFrom('instance_types').select(['id', 'family']).where('id', '=', request.targetInstanceType).executeTakeFirst();
    if (type === undefined) throw new AppError('InvalidInstanceTypeNotFound', { instanceType: request.targetInstanceType });
    if (type.family !== instance.family) {
      throw new AppError('InstanceTypeFamilyMismatch', { instanceType: type.id, family: type.family, instanceId, currentFamily: instance.family });
    }
    instanceType = type.id;
  }

  // Only disk changes need the instance's disks.
  const disks =
    (request.diskChanges ?? []).length === 0
      ? []
      : await db.selectFrom('disks').select(['id', 'category', 'performance_level']).where('instance_id', '=', instanceId).orderBy('device_index').execute();
  const seen = new Set<string>();
  const diskChanges = (request.diskChanges ?? []).map((change, index) => {
    const disk = disks.find((d) => d.id === change.diskId);
    if (disk === undefined) throw new AppError('InstanceDiskNotFound', { diskId: change.diskId, instanceId, available: disks.map((d) => d.id).join(', ') });
    if (seen.has(disk.id)) throw new AppError('InvalidParameter', { name: `Disk.${index + 1}.DiskId`, reason: `disk ${disk.id} is listed more than once` });
    seen.add(disk.id);
    const category = change.category ?? disk.category;
    if (!isOneOf(diskCategories, category)) throw new AppError('InvalidParameter', { name: `Disk.${index + 1}.Category`, reason: `use one of ${diskCategories.join(', ')}` });
    const performanceLevel = change.performanceLevel ?? disk.performance_level;
    if (!isOneOf(performanceLevels, performanceLevel)) throw new AppError('InvalidParameter', { name: `Disk.${index + 1}.PerformanceLevel`, reason: `use one of ${performanceLevels.join(', ')}` });
    if (change.performanceLevel !== undefined && category !== 'cloud_essd') {
      throw new AppError('InvalidParameter', { name: `Disk.${index + 1}.PerformanceLevel`, reason: `performance levels apply to cloud_essd disks; disk ${disk.id} would be ${category}` });
    }
    return { diskId: disk.id, category, performanceLevel };
  });

  const dataDiskPolicy = request.dataDiskPolicy ?? 'force_transfer';
  if (!isOneOf(dataDiskPolicies, dataDiskPolicy)) throw new AppError('InvalidParameter', { name: 'dataDiskPolicy', reason: `use one of ${dataDiskPolicies.join(', ')}` });
  if (instance.open_move_id !== null) throw movingAlready(instanceId, instance.open_move_id);

  return {
    instanceId,
    origin: request.origin,
    regionId: instance.region_id,
    fromZoneId: instance.zone_id,
    fromHostId: instance.host_id,
    fromDedicatedHostId: instance.dedicated_host_id,
    fromInstanceType: instance.instance_type_id,
    fromVSwitchId: instance.vswitch_id,
    vpcId: instance.vpc_id,
    targetZoneId,
    dedicatedHostId: request.dedicatedHostId ?? null,
    instanceType,
    vSwitchId,
    diskChanges,
    dataDiskPolicy,
    startAfter: request.startAfter ?? null,
    attributes: request.attributes ?? {},
  };
}
