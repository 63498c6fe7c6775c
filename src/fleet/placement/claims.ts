/**
 * Claims in the database, the authority on capacity. A claim is one conditional UPDATE of a
 * NUMA node row (`... where vcpus_total - vcpus_used >= need and memory ... and host available`):
 * on PostgreSQL the row lock makes concurrent claimers on several Ferry processes re-check the
 * condition against the committed row; on SQLite the BEGIN IMMEDIATE transaction is the only
 * writer. Either way a node is never overcommitted, and CHECK constraints back that up.
 */
import { type Transaction, type UpdateObject, sql } from 'kysely';
import { AppError } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { Db, DialectName } from '../../store/database.ts';
import type { DatabaseSchema } from '../../store/schema.ts';
import type { PlacementClaimTable } from '../../store/schema-fleet.ts';
import type { HostSnapshot, NodeSnapshot } from './capacity-index.ts';
import type { ResolvedRequest } from './request.ts';

export type Trx = Transaction<DatabaseSchema>;

export const claimStates = ['held', 'committed', 'released'] as const;
export type ClaimState = (typeof claimStates)[number];

export interface PlacementClaim {
  readonly id: string;
  readonly hostId: string;
  readonly numaNode: number;
  readonly instanceId: string | null;
  readonly accountId: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly state: ClaimState;
  readonly expiresAtMs: number;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
}

/** A committed claim and where its instance came from (whose capacity was freed). */
export interface CommittedClaim {
  readonly claim: PlacementClaim;
  readonly instanceId: string;
  /** The instance's status after the commit (`also` may change it). */
  readonly instanceStatus: string;
  readonly fromHostId: string;
  readonly fromNode: number;
  readonly freedVcpus: number;
  readonly freedMemoryMib: number;
}

function toClaim(row: PlacementClaimTable): PlacementClaim {
  return {
    id: row.id,
    hostId: row.host_id,
    numaNode: Number(row.node),
    instanceId: row.instance_id,
    accountId: row.account_id,
    vcpus: Number(row.vcpus),
    memoryMib: Number(row.memory_mib),
    state: row.state as ClaimState,
    expiresAtMs: Number(row.expires_at),
    createdAtMs: Number(row.created_at),
    updatedAtMs: Number(row.updated_at),
  };
}

/** Hosts with their NUMA nodes as stored; all of them, or those in `hostIds`. */
export async function loadHostSnapshots(db: Db | Trx, hostIds?: readonly string[]): Promise<HostSnapshot[]> {
  if (hostIds !== undefined && hostIds.length === 0) return [];
  let hostQuery = db.selectFrom('hosts').select(['id', 'zone_id', 'state', 'dedicated_host_id', 'owner_account_id', 'allowed_families']);
  let nodeQuery = db.selectFrom('host_numa_nodes').selectAll();
  if (hostIds !== undefined) {
    hostQuery = hostQuery.where('id', 'in', hostIds);
    nodeQuery = nodeQuery.where('host_id', 'in', hostIds);
  }
  const [hosts, nodes] = [await hostQuery.execute(), await nodeQuery.execute()];
  const nodesOf = new Map<string, NodeSnapshot[]>();
  for (const n of nodes) {
    let list = nodesOf.get(n.host_id);
    if (list === undefined) nodesOf.set(n.host_id, (list = []));
    list.push({
      node: Number(n.node),
      vcpusTotal: Number(n.vcpus_total),
      memoryMibTotal: Number(n.memory_mib_total),
      vcpusUsed: Number(n.vcpus_used),
      memoryMibUsed: Number(n.memory_mib_used),
    });
  }
  return hosts.map((h) => ({
    id: h.id,
    zoneId: h.zone_id,
    state: h.state,
    dedicatedHostId: h.dedicated_host_id,
    ownerAccountId: h.owner_account_id,
    allowedFamilies: h.allowed_families === null ? null : (JSON.parse(h.allowed_families) as string[]),
    nodes: nodesOf.get(h.id) ?? [],
  }));
}

/** Thrown inside a claim transaction to roll it back and try another host. */
export class ClaimRace extends Error {
  constructor(readonly hostId: string) {
    super(`claim on ${hostId} lost a race`);
    this.name = 'ClaimRace';
  }
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown } | undefined;
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** How insertClaim names the claim and whether it looks for a held one first. */
export interface InsertClaimOptions {
  /** Default a new id. */
  readonly claimId?: string;
  /**
   * Look for the instance's held claim before reserving anything (default true), to name it in
   * the error; without, the unique index still refuses a second one, and `trx` must roll back.
   */
  readonly checkHeld?: boolean;
}

/**
 * Reserve `req`'s size on `hostId`/`node` and record the claim, all in `trx`. Returns undefined
 * when the node no longer has room or the host no longer qualifies (the caller refreshes and
 * tries again); throws ClaimRace when an anti-affine instance got there first.
 */
export async function insertClaim(trx: Trx, dialect: DialectName, hostId: string, node: number, req: ResolvedRequest, nowMs: number, options: InsertClaimOptions = {}): Promise<PlacementClaim | undefined> {
  if (req.instanceId !== null && (options.checkHeld ?? true)) {
    const held = await trx.selectFrom('placement_claims').select('id').where('instance_id', '=', req.instanceId).where('state', '=', 'held').executeTakeFirst();
    if (held !== undefined) throw heldAlready(req.instanceId, held.id);
  }
  const group = [...new Set([...(req.instanceId === null ? [] : [req.instanceId]), ...req.antiAffinityInstanceIds])].sort();
  if (dialect === 'postgres' && req.antiAffinityInstanceIds.length > 0) {
    // Anti-affine claimers lock the same instance rows in the same order, so they take turns.
    await trx.selectFrom('instances').select('id').where('id', 'in', group).orderBy('id').forUpdate().execute();
  }
  const reserved = await trx
    .updateTable('host_numa_nodes')
    .set({ vcpus_used: sql`vcpus_used + ${req.vcpus}`, memory_mib_used: sql`memory_mib_used + ${req.memoryMib}` })
    .where('host_id', '=', hostId)
    .where('node', '=', node)
    .where(sql<boolean>`vcpus_total - vcpus_used >= ${req.vcpus}`)
    .where(sql<boolean>`memory_mib_total - memory_mib_used >= ${req.memoryMib}`)
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('hosts')
          .select('hosts.id')
          .where('hosts.id', '=', hostId)
          .where('hosts.state', '=', 'Available')
          .$call((q) =>
            req.dedicatedHostId === null
              ? q.where('hosts.dedicated_host_id', 'is', null)
              : q.where('hosts.dedicated_host_id', '=', req.dedicatedHostId).where('hosts.owner_account_id', '=', req.accountId),
          ),
      ),
    )
    .executeTakeFirst();
  if (Number(reserved.numUpdatedRows) !== 1) return undefined;
  if (req.antiAffinityInstanceIds.length > 0) {
    const placed = await trx.selectFrom('instances').select('id').where('id', 'in', req.antiAffinityInstanceIds).where('host_id', '=', hostId).executeTakeFirst();
    const claimed = await trx
      .selectFrom('placement_claims')
      .select('id')
      .where('instance_id', 'in', req.antiAffinityInstanceIds)
      .where('host_id', '=', hostId)
      .where('state', '=', 'held')
      .executeTakeFirst();
    if (placed !== undefined || claimed !== undefined) throw new ClaimRace(hostId);
  }
  const row: PlacementClaimTable = {
    id: options.claimId ?? newId('pc'),
    host_id: hostId,
    node,
    instance_id: req.instanceId,
    account_id: req.accountId,
    vcpus: req.vcpus,
    memory_mib: req.memoryMib,
    state: 'held',
    expires_at: nowMs + req.ttlMs,
    created_at: nowMs,
    updated_at: nowMs,
  };
  try {
    await trx.insertInto('placement_claims').values(row).execute();
  } catch (err) {
    if (req.instanceId !== null && isUniqueViolation(err)) throw heldAlready(req.instanceId, 'another claim', err);
    throw err;
  }
  return toClaim(row);
}

function heldAlready(instanceId: string, claimId: string, cause?: unknown): AppError {
  return new AppError(
    'Conflict',
    { reason: `Instance ${instanceId} already has a held placement claim (${claimId}); commit or release it before claiming again.` },
    cause === undefined ? {} : { cause },
  );
}

async function requireClaim(trx: Trx, dialect: DialectName, claimId: string): Promise<PlacementClaim> {
  const row = await trx
    .selectFrom('placement_claims')
    .selectAll()
    .where('id', '=', claimId)
    .$if(dialect === 'postgres', (q) => q.forUpdate())
    .executeTakeFirst();
  if (row === undefined) throw new AppError('NotFound', { resource: 'placement claim', id: claimId });
  return toClaim(row);
}

async function addUsed(trx: Trx, hostId: string, node: number, vcpus: number, memoryMib: number): Promise<void> {
  await trx
    .updateTable('host_numa_nodes')
    .set({ vcpus_used: sql`vcpus_used + ${vcpus}`, memory_mib_used: sql`memory_mib_used + ${memoryMib}` })
    .where('host_id', '=', hostId)
    .where('node', '=', node)
    .execute();
}

/** Give a held claim's capacity back. Releasing a released claim returns it unchanged. */
export async function releaseClaimInTrx(trx: Trx, dialect: DialectName, claimId: string, nowMs: number): Promise<{ claim: PlacementClaim; freed: boolean }> {
  const claim = await requireClaim(trx, dialect, claimId);
  if (claim.state === 'released') return { claim, freed: false };
  if (claim.state === 'committed') {
    throw new AppError('Conflict', { reason: `Placement claim ${claimId} is committed: its instance already lives on ${claim.hostId}; it cannot be released.` });
  }
  await trx.updateTable('placement_claims').set({ state: 'released', updated_at: nowMs }).where('id', '=', claimId).execute();
  await addUsed(trx, claim.hostId, claim.numaNode, -claim.vcpus, -claim.memoryMib);
  return { claim: { ...claim, state: 'released', updatedAtMs: nowMs }, freed: true };
}

/**
 * Make the claim's host the instance's home: its old NUMA slot is freed, the claim's capacity
 * becomes the instance's, the claim is committed. The instance's disks must already be in the
 * target pool (a cold move switches them earlier in the same `trx`). `also` changes more of the
 * instance in the same UPDATE (its status, type, vSwitch).
 */
export async function commitClaimInTrx(
  trx: Trx,
  dialect: DialectName,
  claimId: string,
  nowMs: number,
  also: UpdateObject<DatabaseSchema, 'instances'> = {},
): Promise<CommittedClaim> {
  // Held to committed in one guarded UPDATE, which also locks the claim; what it holds comes back with it.
  const row = await trx.updateTable('placement_claims').set({ state: 'committed', updated_at: nowMs }).where('id', '=', claimId).where('state', '=', 'held').returningAll().executeTakeFirst();
  if (row === undefined) {
    const claim = await requireClaim(trx, dialect, claimId);
    throw new AppError('Conflict', { reason: `Placement claim ${claimId} is ${claim.state}; only a held claim can be committed.` });
  }
  // Every error below is thrown in `trx`, whose caller rolls it back: the claim stays held.
  const claim = toClaim(row);
  if (claim.instanceId === null) {
    throw new AppError('InvalidParameter', { name: 'claimId', reason: `claim ${claimId} reserves capacity for no instance, so there is nothing to move; release it instead` });
  }
  const instance = await trx
    .selectFrom('instances')
    .select(['host_id', 'numa_node', 'vcpus', 'memory_mib'])
    .where('id', '=', claim.instanceId)
    .$if(dialect === 'postgres', (q) => q.forUpdate())
    .executeTakeFirst();
  if (instance === undefined) throw new AppError('NotFound', { resource: 'instance', id: claim.instanceId });
  // An instance runs from disks in its host's pool: it may only move once they are there.
  const behind = await trx.selectFrom('disks').select('id').where('instance_id', '=', claim.instanceId).where('host_id', '!=', claim.hostId).execute();
  if (behind.length > 0) {
    throw new AppError('Conflict', {
      reason: `Instance ${claim.instanceId} still has disks ${behind.map((d) => d.id).join(', ')} outside ${claim.hostId}'s pool; move it with a cold move (coldMoveInstance), which copies them first.`,
    });
  }
  const from = { hostId: instance.host_id, node: Number(instance.numa_node), vcpus: Number(instance.vcpus), memoryMib: Number(instance.memory_mib) };
  await addUsed(trx, from.hostId, from.node, -from.vcpus, -from.memoryMib);
  const moved = await trx
    .updateTable('instances')
    .set({ ...also, host_id: claim.hostId, numa_node: claim.numaNode, vcpus: claim.vcpus, memory_mib: claim.memoryMib, updated_at: nowMs })
    .where('id', '=', claim.instanceId)
    .returning('status')
    .executeTakeFirstOrThrow();
  return {
    claim,
    instanceId: claim.instanceId,
    instanceStatus: moved.status,
    fromHostId: from.hostId,
    fromNode: from.node,
    freedVcpus: from.vcpus,
    freedMemoryMib: from.memoryMib,
  };
}

/** Ids of held claims whose time ran out at `nowMs`. */
export async function expiredClaimIds(db: Db, nowMs: number): Promise<string[]> {
  const rows = await db.selectFrom('placement_claims').select('id').where('state', '=', 'held').where('expires_at', '<', nowMs).execute();
  return rows.map((r) => r.id);
}

export async function findClaim(db: Db, claimId: string): Promise<PlacementClaim | undefined> {
  const row = await db.selectFrom('placement_claims').selectAll().where('id', '=', claimId).executeTakeFirst();
  return row === undefined ? undefined : toClaim(row);
}
