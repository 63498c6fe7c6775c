import { AppError } from '../core/errors.ts';
import type { Trx } from '../engine/job-store.ts';
import type { JobSettings } from './replication-job-params.ts';

/**
 * Check the settings that name fleet resources against the inventory of `regionId`: the vSwitch
 * (and that VpcId, when given, is its VPC; when not, it is taken from the vSwitch), the destination
 * instance of this account, and the intermediate instance type. Returns the settings with VpcId filled in.
 */
export async function checkFleetRefs(trx: Trx, accountId: string, regionId: string, s: JobSettings): Promise<JobSettings> {
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
  }
  if (s.instanceType !== '') {
    const type = await trx.selectFrom('instance_types').select('id').where('id', '=', s.instanceType).executeTakeFirst();
    if (type === undefined) throw new AppError('InvalidInstanceTypeNotFound', { instanceType: s.instanceType });
  }
  return vpcId === s.vpcId ? s : { ...s, vpcId };
}
