/**
 * Read views of the fleet: `fleet show` and `instance show`, as plain JSON-ready objects in the
 * fleet file's words (GiB, camelCase), with what only the database knows (state, NUMA use, paths).
 */
import { AppError } from '../core/errors.ts';
import type { Database, Db } from '../store/database.ts';
import type { DiskTable } from '../store/schema-fleet.ts';
import type { HostState } from './host-states.ts';
import type { InstanceStatus } from './instance-states.ts';

export interface DiskView {
  readonly id: string;
  readonly kind: string;
  readonly category: string;
  readonly performanceLevel: string;
  readonly sizeGiB: number;
  readonly fillMiB: number;
  /** The backing file. */
  readonly path: string;
  /** The host whose storage pool holds the backing file. */
  readonly hostId: string;
}

export interface InstanceView {
  readonly id: string;
  readonly accountId: string;
  readonly accountName: string;
  readonly regionId: string;
  readonly zoneId: string;
  readonly hostId: string;
  /** The DeH id when the instance runs on a dedicated host, else null. */
  readonly dedicatedHostId: string | null;
  readonly numaNode: number;
  readonly status: InstanceStatus;
  readonly instanceType: string;
  readonly family: string;
  readonly vcpus: number;
  readonly memoryGiB: number;
  readonly vswitchId: string;
  readonly vpcId: string;
  readonly disks: readonly DiskView[];
}

export interface NumaNodeView {
  readonly node: number;
  readonly vcpus: number;
  readonly memoryGiB: number;
  readonly usedVcpus: number;
  readonly usedMemoryGiB: number;
  readonly freeVcpus: number;
  readonly freeMemoryGiB: number;
}

export interface HostView {
  readonly id: string;
  readonly state: HostState;
  readonly vcpus: number;
  readonly memoryGiB: number;
  readonly numaNodes: number;
  readonly dedicatedHostId: string | null;
  /** Owner account name of a dedicated host. */
  readonly account: string | null;
  readonly allowedFamilies: readonly string[] | null;
  readonly numa: readonly NumaNodeView[];
  readonly instanceIds: readonly string[];
}

export interface FleetView {
  readonly regions: readonly {
    readonly id: string;
    readonly zones: readonly {
      readonly id: string;
      readonly vswitches: readonly { readonly id: string; readonly vpcId: string; readonly cidr: string }[];
      readonly hosts: readonly HostView[];
    }[];
  }[];
  readonly instanceTypes: readonly { readonly id: string; readonly family: string; readonly vcpus: number; readonly memoryGiB: number }[];
  readonly instances: readonly InstanceView[];
  readonly heldClaims: number;
}

const gib = (mib: number): number => Number(mib) / 1024;

function toDiskView(d: DiskTable): DiskView {
  return {
    id: d.id,
    kind: d.kind,
    category: d.category,
    performanceLevel: d.performance_level,
    sizeGiB: Number(d.size_gib),
    fillMiB: Number(d.fill_mib),
    path: d.path,
    hostId: d.host_id,
  };
}

function instanceQuery(db: Db) {
  return db
    .selectFrom('instances as i')
    .innerJoin('hosts as h', 'h.id', 'i.host_id')
    .innerJoin('zones as z', 'z.id', 'h.zone_id')
    .innerJoin('instance_types as t', 't.id', 'i.instance_type_id')
    .innerJoin('vswitches as v', 'v.id', 'i.vswitch_id')
    .innerJoin('accounts as a', 'a.id', 'i.account_id')
    .select([
      'i.id',
      'i.account_id',
      'a.name as account_name',
      'z.region_id',
      'h.zone_id',
      'i.host_id',
      'h.dedicated_host_id',
      'i.numa_node',
      'i.status',
      'i.instance_type_id',
      't.family',
      'i.vcpus',
      'i.memory_mib',
      'i.vswitch_id',
      'v.vpc_id',
    ]);
}

type InstanceRow = Awaited<ReturnType<ReturnType<typeof instanceQuery>['executeTakeFirstOrThrow']>>;

function toInstanceView(r: InstanceRow, disks: readonly DiskTable[]): InstanceView {
  return {
    id: r.id,
    accountId: r.account_id,
    accountName: r.account_name,
    regionId: r.region_id,
    zoneId: r.zone_id,
    hostId: r.host_id,
    dedicatedHostId: r.dedicated_host_id,
    numaNode: Number(r.numa_node),
    status: r.status as InstanceStatus,
    instanceType: r.instance_type_id,
    family: r.family,
    vcpus: Number(r.vcpus),
    memoryGiB: gib(r.memory_mib),
    vswitchId: r.vswitch_id,
    vpcId: r.vpc_id,
    disks: [...disks].sort((a, b) => Number(a.device_index) - Number(b.device_index)).map(toDiskView),
  };
}

/** One instance with its host, zone, DeH, status, type and disks (backing file paths included). */
export async function showInstance(database: Database, instanceId: string): Promise<InstanceView> {
  const row = await instanceQuery(database.db).where('i.id', '=', instanceId).executeTakeFirst();
  if (row === undefined) throw new AppError('NotFound', { resource: 'instance', id: instanceId });
  const disks = await database.db.selectFrom('disks').selectAll().where('instance_id', '=', instanceId).execute();
  return toInstanceView(row, disks);
}

/** The whole inventory, shaped like the fleet file, with state and NUMA use. */
export async function showFleet(database: Database): Promise<FleetView> {
  const { db } = database;
  const [regions, zones, vswitches, hosts, numa, types, instances, disks, accounts, held] = [
    await db.selectFrom('regions').selectAll().orderBy('id').execute(),
    await db.selectFrom('zones').selectAll().orderBy('id').execute(),
    await db.selectFrom('vswitches').selectAll().orderBy('id').execute(),
    await db.selectFrom('hosts').selectAll().orderBy('id').execute(),
    await db.selectFrom('host_numa_nodes').selectAll().orderBy('host_id').orderBy('node').execute(),
    await db.selectFrom('instance_types').selectAll().orderBy('id').execute(),
    await instanceQuery(db).orderBy('i.id').execute(),
    await db.selectFrom('disks').selectAll().execute(),
    await db.selectFrom('accounts').select(['id', 'name']).execute(),
    await db.selectFrom('placement_claims').select((eb) => eb.fn.countAll<number>().as('n')).where('state', '=', 'held').executeTakeFirstOrThrow(),
  ];
  const group = <T, K>(rows: readonly T[], key: (row: T) => K): Map<K, T[]> => {
    const out = new Map<K, T[]>();
    for (const row of rows) {
      const k = key(row);
      let list = out.get(k);
      if (list === undefined) out.set(k, (list = []));
      list.push(row);
    }
    return out;
  };
  const accountName = new Map(accounts.map((a) => [a.id, a.name]));
  const numaOf = group(numa, (n) => n.host_id);
  const instancesOf = group(instances, (i) => i.host_id);
  const disksOf = group(disks, (d) => d.instance_id);
  const zonesOf = group(zones, (z) => z.region_id);
  const vswitchesOf = group(vswitches, (v) => v.zone_id);
  const hostsOf = group(hosts, (h) => h.zone_id);
  return {
    regions: regions.map((r) => ({
      id: r.id,
      zones: (zonesOf.get(r.id) ?? []).map((z) => ({
        id: z.id,
        vswitches: (vswitchesOf.get(z.id) ?? []).map((v) => ({ id: v.id, vpcId: v.vpc_id, cidr: v.cidr })),
        hosts: (hostsOf.get(z.id) ?? []).map((h) => ({
          id: h.id,
          state: h.state as HostState,
          vcpus: Number(h.vcpus),
          memoryGiB: gib(h.memory_mib),
          numaNodes: Number(h.numa_nodes),
          dedicatedHostId: h.dedicated_host_id,
          account: h.owner_account_id === null ? null : (accountName.get(h.owner_account_id) ?? h.owner_account_id),
          allowedFamilies: h.allowed_families === null ? null : (JSON.parse(h.allowed_families) as string[]),
          numa: (numaOf.get(h.id) ?? []).map((n) => ({
            node: Number(n.node),
            vcpus: Number(n.vcpus_total),
            memoryGiB: gib(n.memory_mib_total),
            usedVcpus: Number(n.vcpus_used),
            usedMemoryGiB: gib(n.memory_mib_used),
            freeVcpus: Number(n.vcpus_total) - Number(n.vcpus_used),
            freeMemoryGiB: gib(Number(n.memory_mib_total) - Number(n.memory_mib_used)),
          })),
          instanceIds: (instancesOf.get(h.id) ?? []).map((i) => i.id),
        })),
      })),
    })),
    instanceTypes: types.map((t) => ({ id: t.id, family: t.family, vcpus: Number(t.vcpus), memoryGiB: gib(t.memory_mib) })),
    instances: instances.map((i) => toInstanceView(i, disksOf.get(i.id) ?? [])),
    heldClaims: Number(held.n),
  };
}
