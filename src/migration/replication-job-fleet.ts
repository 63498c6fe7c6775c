import type { SourceFacts } from '../core/agent-protocol.ts';
import { AppError } from '../core/errors.ts';
import type { Trx } from '../engine/job-store.ts';
import type { JobSettings } from './replication-job-params.ts';

const gibBytes = 1024 ** 3;

/** An instance disk as the TargetInstance rule reads it. */
export interface InstanceDiskSlot {
  readonly id: string;
  readonly kind: string;
  readonly size_gib: number;
}

/**
 * Which disk of instance `instanceId` takes each source disk of a TargetInstance job: source disk 0
 * the system disk, source data disk N the N-th data disk (`instanceDisks` in device order). Refused
 * with TargetInstance.DiskMismatch, saying what to change, when one is missing or smaller than the source's.
 */
export function targetDisksFor<D extends InstanceDiskSlot>(instanceId: string, sourceDisks: readonly { readonly index: number; readonly sizeBytes: number }[], instanceDisks: readonly D[]): { index: number; target: D }[] {
  const system = instanceDisks.find((d) => d.kind === 'system');
  const data = instanceDisks.filter((d) => d.kind !== 'system');
  return sourceDisks.map((disk) => {
    const target = disk.index === 0 ? system : data[disk.index - 1];
    const mismatch = (reason: string): AppError => new AppError('TargetInstanceDiskMismatch', { instanceId, diskIndex: disk.index, reason });
    if (target === undefined) throw mismatch(disk.index === 0 ? 'it has no system disk' : `it has ${data.length} data disks; attach data disk ${disk.index} first`);
    if (disk.sizeBytes > Number(target.size_gib) * gibBytes) throw mismatch(`the source disk holds ${disk.sizeBytes} bytes, its disk ${target.id} only ${Number(target.size_gib)} GiB; resize that disk first`);
    return { index: disk.index, target };
  });
}

/**
 * Check the settings that name fleet resources against the inventory of `regionId`: the vSwitch
 * (and that VpcId, when given, is its VPC; when not, it is taken from the vSwitch), the destination
 * instance of this account (for TargetInstance: with a disk big enough for each of the source's
 * disks as `facts` last reported them), and the intermediate instance type. Returns the settings with VpcId filled in.
 */
export async function checkFleetRefs(trx: Trx, accountId: string, regionId: string, s: JobSettings, facts: SourceFacts): Promise<JobSettings> {
  let vpcId = s.vpcId;
  if (s.vSwitchId !== '') {
    const vswitch = await trx
      .selectFrom('vswitches')
      .innerJoin('zones', 'zones.id', 'vswitches.zone_id')
      .select(['vswitches.vpc_id'])
      .where('vswitches.id', '=', s.vSwitchId)
      .where('zones.region_id', '=', regionId)
      .executeTakeFirst();
    if (vswitch === undefined) throw new AppError('InvalidVSwitchIdNotFound', { vSwitchId: s.vSwitchId, regionId });
    if (vpcId !== '' && vpcId !== vswitch.vpc_id) throw new AppError('VSwitchIdVpcIdMismatch', { vSwitchId: s.vSwitchId, vpcId, actualVpcId: vswitch.vpc_id });
    vpcId = vswitch.vpc_id;
  }
  if (s.instanceId !== '') {
    const instance = await trx
      .selectFrom('instances')
      .innerJoin('hosts', 'hosts.id', 'instances.host_id')
      .innerJoin('zones', 'zones.id', 'hosts.zone_id')
      .select('instances.id')
      .where('instances.id', '=', s.instanceId)
      .where('instances.account_id', '=', accountId)
      .where('zones.region_id', '=', regionId)
      .executeTakeFirst();
    if (instance === undefined) throw new AppError('InvalidInstanceIdNotFound', { instanceId: s.instanceId, regionId });
    if (s.targetType === 'TargetInstance') {
      const disks = await trx.selectFrom('disks').select(['id', 'kind', 'size_gib']).where('instance_id', '=', s.instanceId).orderBy('device_index').execute();
      targetDisksFor(s.instanceId, facts.disks, disks);
    }
  }
  if (s.instanceType !== '') {
    const type = await trx.selectFrom('instance_types').select('id').where('id', '=', s.instanceType).executeTakeFirst();
    if (type === undefined) throw new AppError('InvalidInstanceTypeNotFound', { instanceType: s.instanceType });
  }
  return vpcId === s.vpcId ? s : { ...s, vpcId };
}
