/**
 * `fleet apply`: make the database say what the fleet file says, in one transaction, then
 * create the disks' backing files that do not exist yet. Idempotent; never deletes what a file
 * leaves out; refuses, changing nothing, a file that would leave an instance (or a held claim)
 * without room on its host's NUMA nodes, or that would undo what migrations did.
 */
import { type Kysely, sql } from 'kysely';
import { type Clock, systemClock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import type { Database } from '../store/database.ts';
import type {
  DiskTable,
  HostNumaNodeTable,
  HostTable,
  InstanceTable,
  InstanceTypeTable,
  PlacementClaimTable,
  RegionTable,
  VswitchTable,
  ZoneTable,
} from '../store/schema-fleet.ts';
import type { ComputeDriver } from './compute-driver.ts';
import { resolveAccountNames } from './fleet-accounts.ts';
import { type FleetIssue, type FleetPlan, FleetValidationError, type PlannedInstance, planFleet } from './fleet-spec.ts';
import { type Occupant, fitOccupants, numaCapacities } from './numa.ts';
import type { Trx } from './placement/claims.ts';
import { formatGib } from './placement/filters.ts';
import { forgetPlacement } from './placement/placement.ts';
import { mib } from './sparse-file.ts';

export const fleetKinds = ['accounts', 'regions', 'zones', 'vswitches', 'hosts', 'instanceTypes', 'instances', 'disks'] as const;
export type FleetKind = (typeof fleetKinds)[number];
export type ChangeKind = 'created' | 'updated' | 'unchanged';

export interface ApplyFleetResult {
  readonly created: Record<FleetKind, string[]>;
  readonly updated: Record<FleetKind, string[]>;
  readonly unchanged: Record<FleetKind, string[]>;
  /** Totals over all kinds. */
  readonly counts: Record<ChangeKind, number>;
  /** Disks whose backing file this apply wrote; every other disk's file already existed and was not touched. */
  readonly backingFilesCreated: string[];
}

export interface ApplyFleetOptions {
  readonly clock?: Clock;
  /** Aborts the creation of backing files (the database part is one short transaction). */
  readonly signal?: AbortSignal;
}

/** The file would leave an instance or a held claim without capacity; nothing was changed. */
export class FleetRefusedError extends AppError {
  constructor(
    readonly hostId: string,
    readonly occupantId: string,
    reason: string,
  ) {
    super('Conflict', { reason: `Fleet file refused, nothing was changed: ${reason}` });
  }
}

type Row<T> = Omit<T, 'created_at' | 'updated_at'>;

const gib = 1024 * mib;
const chunkSize = 500;

async function inChunks<T>(ids: Iterable<string>, load: (chunk: string[]) => Promise<T[]>): Promise<T[]> {
  const all = [...new Set(ids)];
  const out: T[] = [];
  for (let i = 0; i < all.length; i += chunkSize) out.push(...(await load(all.slice(i, i + chunkSize))));
  return out;
}

function byId<T extends { id: string }>(rows: readonly T[]): Map<string, T> {
  return new Map(rows.map((r) => [r.id, r]));
}

/** What the database holds of everything the file names or touches. */
interface Current {
  readonly regions: Map<string, RegionTable>;
  readonly zones: Map<string, ZoneTable>;
  readonly vswitches: Map<string, VswitchTable>;
  readonly hosts: Map<string, HostTable>;
  readonly types: Map<string, InstanceTypeTable>;
  readonly instances: Map<string, InstanceTable>;
  readonly disks: Map<string, DiskTable>;
  /** Hosts already holding a dedicated host id the file uses. */
  readonly dehHolders: Map<string, string>;
  /** Every instance on a host the file names or places an instance on. */
  readonly hosted: readonly InstanceTable[];
  readonly heldClaims: readonly PlacementClaimTable[];
}

function affectedHostIds(plan: FleetPlan): Set<string> {
  return new Set([...plan.hosts.map((h) => h.id), ...plan.instances.map((i) => i.hostId)]);
}

async function loadCurrent(trx: Trx, plan: FleetPlan): Promise<Current> {
  const affected = affectedHostIds(plan);
  const hosted = await inChunks(affected, (ids) => trx.selectFrom('instances').selectAll().where('host_id', 'in', ids).execute());
  const instanceIds = [...plan.instances.map((i) => i.id)];
  return {
    regions: byId(await inChunks(plan.regions.map((r) => r.id), (ids) => trx.selectFrom('regions').selectAll().where('id', 'in', ids).execute())),
    zones: byId(await inChunks(plan.zones.map((z) => z.id), (ids) => trx.selectFrom('zones').selectAll().where('id', 'in', ids).execute())),
    vswitches: byId(
      await inChunks([...plan.vswitches.map((v) => v.id), ...plan.instances.map((i) => i.vswitchId)], (ids) =>
        trx.selectFrom('vswitches').selectAll().where('id', 'in', ids).execute(),
      ),
    ),
    hosts: byId(await inChunks(affected, (ids) => trx.selectFrom('hosts').selectAll().where('id', 'in', ids).execute())),
    types: byId(
      await inChunks([...plan.instanceTypes.map((t) => t.id), ...plan.instances.map((i) => i.typeId)], (ids) =>
        trx.selectFrom('instance_types').selectAll().where('id', 'in', ids).execute(),
      ),
    ),
    instances: byId(await inChunks(instanceIds, (ids) => trx.selectFrom('instances').selectAll().where('id', 'in', ids).execute())),
    disks: byId(await inChunks(plan.disks.map((d) => d.id), (ids) => trx.selectFrom('disks').selectAll().where('id', 'in', ids).execute())),
    dehHolders: new Map(
      (
        await inChunks(
          plan.hosts.flatMap((h) => h.dedicatedHostId ?? []),
          (ids) => trx.selectFrom('hosts').select(['id', 'dedicated_host_id']).where('dedicated_host_id', 'in', ids).execute(),
        )
      ).map((r) => [r.dedicated_host_id ?? '', r.id]),
    ),
    hosted,
    heldClaims: await inChunks(affected, (ids) =>
      trx.selectFrom('placement_claims').selectAll().where('host_id', 'in', ids).where('state', '=', 'held').execute(),
    ),
  };
}

/** The rows the file asks for, keyed by id, in the order they must be written. */
interface Desired {
  readonly regions: Map<string, Row<RegionTable>>;
  readonly zones: Map<string, Row<ZoneTable>>;
  readonly vswitches: Map<string, Row<VswitchTable>>;
  readonly hosts: Map<string, Row<HostTable>>;
  readonly types: Map<string, Row<InstanceTypeTable>>;
  readonly instances: Map<string, Row<InstanceTable>>;
  readonly disks: Map<string, Row<DiskTable>>;
}

const settledStatuses = new Set(['Running', 'Stopped']);

/** Build the desired rows and check every reference against the file and the database. */
function desiredRows(plan: FleetPlan, current: Current, accountIdOf: ReadonlyMap<string, string>, driver: ComputeDriver, issues: FleetIssue[]): Desired {
  const desired: Desired = {
    regions: new Map(plan.regions.map((r) => [r.id, { id: r.id }])),
    zones: new Map(plan.zones.map((z) => [z.id, { id: z.id, region_id: z.regionId }])),
    vswitches: new Map(plan.vswitches.map((v) => [v.id, { id: v.id, zone_id: v.zoneId, vpc_id: v.vpcId, cidr: v.cidr }])),
    hosts: new Map(),
    types: new Map(plan.instanceTypes.map((t) => [t.id, { id: t.id, family: t.family, vcpus: t.vcpus, memory_mib: t.memoryMib }])),
    instances: new Map(),
    disks: new Map(),
  };
  const hostedCount = new Map<string, number>();
  for (const i of current.hosted) hostedCount.set(i.host_id, (hostedCount.get(i.host_id) ?? 0) + 1);

  for (const h of plan.hosts) {
    const existing = current.hosts.get(h.id);
    if (existing !== undefined && existing.zone_id !== h.zoneId && (hostedCount.get(h.id) ?? 0) > 0) {
      issues.push({ path: h.path, message: `host ${h.id} is in zone ${existing.zone_id} and has instances; move them before moving the host to zone ${h.zoneId}` });
    }
    const holder = h.dedicatedHostId === null ? undefined : current.dehHolders.get(h.dedicatedHostId);
    if (holder !== undefined && holder !== h.id) issues.push({ path: `${h.path}.dedicatedHostId`, message: `dedicated host id ${h.dedicatedHostId} already belongs to host ${holder}` });
    desired.hosts.set(h.id, {
      id: h.id,
      zone_id: h.zoneId,
      state: h.state ?? existing?.state ?? 'Available',
      vcpus: h.vcpus,
      memory_mib: h.memoryMib,
      numa_nodes: h.numaNodes,
      dedicated_host_id: h.dedicatedHostId,
      owner_account_id: h.accountName === null ? null : (accountIdOf.get(h.accountName) ?? null),
      allowed_families: h.allowedFamilies === null ? null : JSON.stringify(h.allowedFamilies),
    });
  }

  const hostOf = (id: string): Row<HostTable> | undefined => desired.hosts.get(id) ?? current.hosts.get(id);
  const typeOf = (id: string): Row<InstanceTypeTable> | undefined => desired.types.get(id) ?? current.types.get(id);
  const vswitchOf = (id: string): Row<VswitchTable> | undefined => desired.vswitches.get(id) ?? current.vswitches.get(id);

  for (const inst of plan.instances) {
    const host = hostOf(inst.hostId);
    const type = typeOf(inst.typeId);
    const vswitch = vswitchOf(inst.vswitchId);
    const accountId = accountIdOf.get(inst.accountName) ?? '';
    if (host === undefined) issues.push({ path: `${inst.path}.host`, message: `unknown host ${inst.hostId}` });
    if (type === undefined) issues.push({ path: `${inst.path}.type`, message: `unknown instance type ${inst.typeId}` });
    if (vswitch === undefined) issues.push({ path: `${inst.path}.vswitch`, message: `unknown vswitch ${inst.vswitchId}` });
    if (host !== undefined && vswitch !== undefined && host.zone_id !== vswitch.zone_id) {
      issues.push({ path: `${inst.path}.vswitch`, message: `vswitch ${inst.vswitchId} is in zone ${vswitch.zone_id}, but host ${inst.hostId} is in zone ${host.zone_id}` });
    }
    if (host !== undefined && host.dedicated_host_id !== null) {
      if (host.owner_account_id !== accountId) {
        issues.push({ path: `${inst.path}.account`, message: `host ${inst.hostId} is dedicated host ${host.dedicated_host_id} of another account; account ${inst.accountName} cannot run instances there` });
      }
      const families = host.allowed_families === null ? null : (JSON.parse(host.allowed_families) as string[]);
      if (type !== undefined && families !== null && !families.includes(type.family)) {
        issues.push({ path: `${inst.path}.type`, message: `dedicated host ${host.dedicated_host_id} accepts families ${families.join(', ')}, not ${type.family}` });
      }
    }
    const existing = current.instances.get(inst.id);
    if (existing !== undefined && existing.host_id !== inst.hostId) {
      issues.push({ path: `${inst.path}.host`, message: `instance ${inst.id} lives on host ${existing.host_id} now (a migration moved it); fleet apply does not move instances: write host: ${existing.host_id}` });
    }
    if (existing !== undefined && existing.status !== inst.status && !settledStatuses.has(existing.status)) {
      issues.push({ path: `${inst.path}.status`, message: `instance ${inst.id} is ${existing.status}; apply the file again when that operation has finished` });
    }
    desired.instances.set(inst.id, {
      id: inst.id,
      account_id: accountId,
      host_id: inst.hostId,
      numa_node: existing?.numa_node ?? 0, // settled by fitHosts
      instance_type_id: inst.typeId,
      vswitch_id: inst.vswitchId,
      status: inst.status,
      vcpus: type?.vcpus ?? 0,
      memory_mib: type?.memory_mib ?? 0,
    });
  }

  for (const d of plan.disks) {
    const existing = current.disks.get(d.id);
    const hostId = existing?.host_id ?? plan.instances.find((i) => i.id === d.instanceId)?.hostId ?? '';
    if (existing !== undefined) {
      const immutable: [string, unknown, unknown][] = [
        ['instance', existing.instance_id, d.instanceId],
        ['kind', existing.kind, d.kind],
        ['sizeGiB', Number(existing.size_gib), d.sizeGib],
        ['fillMiB', Number(existing.fill_mib), d.fillMib],
      ];
      for (const [field, was, now] of immutable) {
        if (was !== now) issues.push({ path: field === 'instance' ? d.path : `${d.path}.${field}`, message: `disk ${d.id} exists with ${field} ${String(was)}; fleet apply does not change a disk's ${field}` });
      }
    }
    desired.disks.set(d.id, {
      id: d.id,
      instance_id: d.instanceId,
      device_index: d.deviceIndex,
      kind: d.kind,
      category: d.category,
      performance_level: d.performanceLevel,
      size_gib: d.sizeGib,
      fill_mib: d.fillMib,
      host_id: hostId,
      path: existing?.path ?? driver.diskPath(hostId, d.id),
    });
  }
  return desired;
}

function describeInstance(row: Row<InstanceTable>, planned: PlannedInstance | undefined): string {
  const where = planned === undefined ? 'not in this file' : planned.path;
  return `instance ${row.id} (${where}; ${row.status}, ${row.vcpus} vCPU + ${formatGib(Number(row.memory_mib))})`;
}

/**
 * Fit every affected host's occupants onto its NUMA nodes as the file would leave it. Sets the
 * instances' numa_node (adding instances outside the file that had to change node) and returns
 * the NUMA rows to write. Throws FleetRefusedError on the first occupant that fits nowhere.
 */
function fitHosts(plan: FleetPlan, current: Current, desired: Desired): Row<HostNumaNodeTable>[] {
  const plannedById = new Map(plan.instances.map((i) => [i.id, i]));
  const byHost = new Map<string, Row<InstanceTable>[]>();
  const add = (row: Row<InstanceTable>): void => {
    let list = byHost.get(row.host_id);
    if (list === undefined) byHost.set(row.host_id, (list = []));
    list.push(row);
  };
  for (const row of current.hosted) if (!desired.instances.has(row.id)) add(row);
  for (const row of desired.instances.values()) add(row);

  const hostedById = byId([...current.hosted]);
  const numaRows: Row<HostNumaNodeTable>[] = [];
  for (const hostId of [...affectedHostIds(plan)].sort()) {
    const host = desired.hosts.get(hostId) ?? current.hosts.get(hostId);
    if (host === undefined) continue;
    const capacity = numaCapacities(Number(host.vcpus), Number(host.memory_mib), Number(host.numa_nodes));
    const claims = current.heldClaims.filter((c) => c.host_id === hostId);
    const instances = byHost.get(hostId) ?? [];
    const occupants: Occupant[] = [
      ...claims.map((c) => ({ id: `claim:${c.id}`, vcpus: Number(c.vcpus), memoryMib: Number(c.memory_mib), node: Number(c.node), pinned: true })),
      ...instances.map((row) => {
        const pinnedNode = plannedById.get(row.id)?.numaNode;
        const existing = current.instances.get(row.id) ?? hostedById.get(row.id);
        const node = pinnedNode ?? (existing === undefined ? undefined : Number(existing.numa_node));
        return { id: row.id, vcpus: Number(row.vcpus), memoryMib: Number(row.memory_mib), node, pinned: pinnedNode !== undefined };
      }),
    ];
    const fit = fitOccupants(capacity, occupants);
    if (!fit.ok) {
      const free = fit.free.map((f, n) => `node ${n}: ${f.vcpus} vCPU + ${formatGib(f.memoryMib)}`).join(', ');
      const shape = `host ${hostId} (${capacity.length} NUMA node${capacity.length === 1 ? '' : 's'} of ${capacity[0]?.vcpus ?? 0} vCPU + ${formatGib(capacity[0]?.memoryMib ?? 0)}; left for it: ${free})`;
      const claim = claims.find((c) => `claim:${c.id}` === fit.misfit.id);
      const instance = instances.find((r) => r.id === fit.misfit.id);
      const what =
        claim !== undefined
          ? `held placement claim ${claim.id}${claim.instance_id === null ? '' : ` for instance ${claim.instance_id}`} (node ${claim.node}, ${claim.vcpus} vCPU + ${formatGib(Number(claim.memory_mib))})`
          : instance !== undefined
            ? describeInstance(instance, plannedById.get(instance.id))
            : fit.misfit.id;
      const pinned = fit.misfit.pinned && claim === undefined ? ` on its pinned NUMA node ${fit.misfit.node ?? ''}` : '';
      throw new FleetRefusedError(hostId, fit.misfit.id, `${what} would not fit${pinned} on ${shape}.`);
    }
    for (const row of instances) {
      const node = fit.nodeOf.get(row.id) ?? 0;
      if (desired.instances.has(row.id)) desired.instances.set(row.id, { ...row, numa_node: node });
      else if (Number(row.numa_node) !== node) desired.instances.set(row.id, { ...row, numa_node: node });
    }
    capacity.forEach((c, node) => {
      const used = fit.used[node] ?? { vcpus: 0, memoryMib: 0 };
      numaRows.push({ host_id: hostId, node, vcpus_total: c.vcpus, memory_mib_total: c.memoryMib, vcpus_used: used.vcpus, memory_mib_used: used.memoryMib });
    });
  }
  return numaRows;
}

function emptyKinds(): Record<FleetKind, string[]> {
  return { accounts: [], regions: [], zones: [], vswitches: [], hosts: [], instanceTypes: [], instances: [], disks: [] };
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  // Database drivers may hand numbers back as strings (bigint); rows hold only numbers, strings and null.
  if (typeof b === 'number' && (typeof a === 'string' || typeof a === 'number')) return Number(a) === b;
  return false;
}

// Rows are written by one helper for every table, so it speaks to Kysely without table types;
// the rows themselves were built against the table interfaces above.
type Untyped = Kysely<Record<string, Record<string, unknown>>>;

/** Insert or update one row and record which it was; an equal row is left alone. */
async function save(trx: Trx, table: string, row: Record<string, unknown> & { id: string }, existing: object | undefined, nowMs: number): Promise<ChangeKind> {
  const db = trx as unknown as Untyped;
  if (existing === undefined) {
    await db.insertInto(table).values({ ...row, created_at: nowMs, updated_at: nowMs }).execute();
    return 'created';
  }
  const before = existing as Record<string, unknown>;
  if (Object.keys(row).every((k) => sameValue(before[k], row[k]))) return 'unchanged';
  await db.updateTable(table).set({ ...row, updated_at: nowMs }).where('id', '=', row.id).execute();
  return 'updated';
}

/** Apply a parsed fleet file (see fleet-spec.ts). Throws FleetValidationError or FleetRefusedError, having changed nothing. */
export async function applyFleet(database: Database, driver: ComputeDriver, spec: unknown, options: ApplyFleetOptions = {}): Promise<ApplyFleetResult> {
  const clock = options.clock ?? systemClock;
  const signal = options.signal ?? new AbortController().signal;
  const plan = planFleet(spec);
  const nowMs = clock.nowMs();
  const result: ApplyFleetResult = {
    created: emptyKinds(),
    updated: emptyKinds(),
    unchanged: emptyKinds(),
    counts: { created: 0, updated: 0, unchanged: 0 },
    backingFilesCreated: [],
  };
  const note = (kind: FleetKind, change: ChangeKind, id: string): void => {
    result[change][kind].push(id);
    result.counts[change] += 1;
  };

  const disks = await database.db.transaction().execute(async (trx) => {
    // Claims and commits wait while the file is applied, so the capacity it checks stays true.
    if (database.dialect === 'postgres') await sql`lock table host_numa_nodes in share row exclusive mode`.execute(trx);
    const current = await loadCurrent(trx, plan);
    const accountNames = [...plan.hosts.flatMap((h) => (h.accountName === null ? [] : [h.accountName])), ...plan.instances.map((i) => i.accountName)];
    const accounts = await resolveAccountNames(trx, accountNames, nowMs);
    const issues: FleetIssue[] = [];
    const desired = desiredRows(plan, current, accounts.idOf, driver, issues);
    if (issues.length > 0) throw new FleetValidationError(issues);
    const numaRows = fitHosts(plan, current, desired);

    for (const name of [...new Set(accountNames)].sort()) note('accounts', accounts.created.includes(name) ? 'created' : 'unchanged', name);
    const write = async (kind: FleetKind, table: string, rows: Map<string, Record<string, unknown> & { id: string }>, existing: Map<string, object>): Promise<void> => {
      for (const row of rows.values()) note(kind, await save(trx, table, row, existing.get(row.id), nowMs), row.id);
    };
    await write('regions', 'regions', desired.regions, current.regions);
    await write('zones', 'zones', desired.zones, current.zones);
    await write('vswitches', 'vswitches', desired.vswitches, current.vswitches);
    await write('instanceTypes', 'instance_types', desired.types, current.types);
    await write('hosts', 'hosts', desired.hosts, current.hosts);
    for (const hostId of new Set(numaRows.map((r) => r.host_id))) {
      const count = numaRows.filter((r) => r.host_id === hostId).length;
      await trx.deleteFrom('host_numa_nodes').where('host_id', '=', hostId).where('node', '>=', count).execute();
    }
    for (const row of numaRows) {
      const { host_id: _host, node: _node, ...values } = row;
      await trx
        .insertInto('host_numa_nodes')
        .values(row)
        .onConflict((oc) => oc.columns(['host_id', 'node']).doUpdateSet(values))
        .execute();
    }
    const planned = new Set(plan.instances.map((i) => i.id));
    const hostedById = byId([...current.hosted]);
    for (const row of desired.instances.values()) {
      const change = await save(trx, 'instances', row, current.instances.get(row.id) ?? hostedById.get(row.id), nowMs);
      // Instances outside the file only change when their host shrank under them; they are reported too.
      if (planned.has(row.id) || change !== 'unchanged') note('instances', change, row.id);
    }
    await write('disks', 'disks', desired.disks, current.disks);
    return [...desired.disks.values()];
  });
  forgetPlacement(database);

  for (const disk of disks) {
    const path = driver.diskPath(disk.host_id, disk.id);
    if (path !== disk.path) {
      throw new AppError('Conflict', { reason: `Disk ${disk.id} is stored at ${disk.path}, but this compute driver keeps it at ${path}; run Ferry with the data directory that created the fleet.` });
    }
    const made = await driver.createDisk({ diskId: disk.id, hostId: disk.host_id, sizeBytes: disk.size_gib * gib, fillBytes: disk.fill_mib * mib }, signal);
    if (made.created) result.backingFilesCreated.push(disk.id);
  }
  return result;
}
