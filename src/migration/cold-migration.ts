/**
 * Cold migration as Huawei ECS offers it (huawei-ecs-ColdMigrateOnDeH.txt): a stopped server moves
 * to one of the account's dedicated hosts, or from one to the public pool. The move itself is an
 * instance move (instance-move.ts); this file holds the rules only this API adds, and the reads
 * (server, job, dedicated hosts) the Huawei front door answers from.
 */
import { randomBytes } from 'node:crypto';
import { AppError } from '../core/errors.ts';
import { type InstanceView, showInstance } from '../fleet/index.ts';
import { type InstanceMoveView, getInstanceMove, startInstanceMove } from './instance-move.ts';
import type { ServiceContext } from './service-context.ts';

export const coldMigrationOrigin = 'ecs-cold-migration';

/** A Huawei job id: 32 lower-case hex digits. */
function newHuaweiJobId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * Start the cold migration of `serverId` to `dedicatedHostId`, or to the public pool when null.
 * Only a stopped server may move; the job fails later (Ecs.0319) when no single NUMA node has room.
 */
export async function startColdMigration(ctx: ServiceContext, input: { readonly serverId: string; readonly dedicatedHostId: string | null }): Promise<InstanceMoveView> {
  const server = await showServer(ctx, input.serverId);
  if (server.status !== 'Stopped') {
    throw new AppError('InstanceStatusInvalid', { instanceId: server.id, status: server.status, action: 'cold migration', allowed: 'Stopped (SHUTOFF); stop it first' });
  }
  return startInstanceMove(ctx, {
    instanceId: server.id,
    origin: coldMigrationOrigin,
    moveId: newHuaweiJobId(),
    startAfter: false,
    ...(input.dedicatedHostId === null ? {} : { dedicatedHostId: input.dedicatedHostId }),
  });
}

/** A cold migration job of the caller's account. */
export async function showColdMigrationJob(ctx: ServiceContext, jobId: string): Promise<InstanceMoveView> {
  const move = await getInstanceMove(ctx, jobId);
  if (move?.origin !== coldMigrationOrigin) throw new AppError('InstanceMoveNotFound', { jobId });
  return move;
}

/** One server of the caller's account. */
export async function showServer(ctx: ServiceContext, serverId: string): Promise<InstanceView> {
  const owned = await ctx.database.db.selectFrom('instances').select('id').where('id', '=', serverId).where('account_id', '=', ctx.accountId).executeTakeFirst();
  if (owned === undefined) throw new AppError('InstanceNotFound', { instanceId: serverId });
  return showInstance(ctx.database, owned.id);
}

export interface DedicatedHostView {
  readonly dedicatedHostId: string;
  readonly hostId: string;
  readonly zoneId: string;
  /** Available | Maintenance | Failed | Offline. */
  readonly state: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly numaNodes: number;
  /** Free capacity over all NUMA nodes; one instance must still fit on a single node. */
  readonly availableVcpus: number;
  readonly availableMemoryMib: number;
  /** null: every family. */
  readonly allowedFamilies: readonly string[] | null;
  /** Instance types that fit on one NUMA node now. */
  readonly fittingTypes: readonly string[];
  readonly instanceIds: readonly string[];
}

/** The caller's dedicated hosts with what they can still take. */
export async function listDedicatedHosts(ctx: ServiceContext): Promise<DedicatedHostView[]> {
  const { db } = ctx.database;
  const hosts = await db.selectFrom('hosts').selectAll().where('owner_account_id', '=', ctx.accountId).where('dedicated_host_id', 'is not', null).orderBy('dedicated_host_id').execute();
  if (hosts.length === 0) return [];
  const hostIds = hosts.map((h) => h.id);
  const nodes = await db.selectFrom('host_numa_nodes').selectAll().where('host_id', 'in', hostIds).execute();
  const instances = await db.selectFrom('instances').select(['id', 'host_id']).where('host_id', 'in', hostIds).orderBy('id').execute();
  const types = await db.selectFrom('instance_types').selectAll().orderBy('id').execute();
  return hosts.map((h) => {
    const free = nodes.filter((n) => n.host_id === h.id).map((n) => ({ vcpus: Number(n.vcpus_total) - Number(n.vcpus_used), memoryMib: Number(n.memory_mib_total) - Number(n.memory_mib_used) }));
    const allowedFamilies = h.allowed_families === null ? null : (JSON.parse(h.allowed_families) as string[]);
    return {
      dedicatedHostId: h.dedicated_host_id ?? h.id,
      hostId: h.id,
      zoneId: h.zone_id,
      state: h.state,
      vcpus: Number(h.vcpus),
      memoryMib: Number(h.memory_mib),
      numaNodes: Number(h.numa_nodes),
      availableVcpus: free.reduce((sum, n) => sum + n.vcpus, 0),
      availableMemoryMib: free.reduce((sum, n) => sum + n.memoryMib, 0),
      allowedFamilies,
      fittingTypes: types
        .filter((t) => allowedFamilies === null || allowedFamilies.includes(t.family))
        .filter((t) => free.some((n) => n.vcpus >= Number(t.vcpus) && n.memoryMib >= Number(t.memory_mib)))
        .map((t) => t.id),
      instanceIds: instances.filter((i) => i.host_id === h.id).map((i) => i.id),
    };
  });
}
