import type { Transaction } from 'kysely';
import { AppError } from '../../core/errors.ts';
import type { Db } from '../../store/database.ts';
import type { DatabaseSchema } from '../../store/schema.ts';
import { type Weigher, isWeigher } from './weighers.ts';

/** What to place. Either `instanceId` (a move) or `instanceTypeId` + `accountId` (a new instance). */
export interface PlacementRequest {
  /** Place this existing instance: its account, size and family come from it; its host is excluded. */
  readonly instanceId?: string;
  /** Size and family from this type (overrides the instance's own on a move: a resize). */
  readonly instanceTypeId?: string;
  readonly accountId?: string;
  /** Only hosts in this zone; default any zone. */
  readonly zoneId?: string;
  /** Only this dedicated host, which must belong to the account; default the public pool. */
  readonly dedicatedHostId?: string;
  /** Never a host that runs (or is claimed for) any of these instances, nor any of these hosts. */
  readonly antiAffinity?: { readonly instanceIds?: readonly string[]; readonly hostIds?: readonly string[] };
  /** Hosts to leave out besides the instance's current one. */
  readonly excludeHostIds?: readonly string[];
  readonly weigher?: Weigher;
  /** How long a claim holds its capacity before releaseExpiredClaims may free it; default 1 hour. */
  readonly ttlMs?: number;
}

/** A request with everything looked up: what the filters and the index work from. */
export interface ResolvedRequest {
  readonly instanceId: string | null;
  readonly accountId: string;
  readonly family: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly zoneId: string | null;
  readonly dedicatedHostId: string | null;
  /** The instance's current host and the caller's exclusions. */
  readonly excludeHostIds: ReadonlySet<string>;
  /** Hosts of the anti-affinity instances (placed or claimed) and the anti-affinity hosts. */
  readonly avoidHostIds: ReadonlySet<string>;
  readonly antiAffinityInstanceIds: readonly string[];
  readonly weigher: Weigher;
  readonly ttlMs: number;
}

export const defaultClaimTtlMs = 60 * 60 * 1000;

function missing(name: string): AppError {
  return new AppError('MissingParameter', { name });
}

/**
 * Look up the instance, type, account, zone and dedicated host a request names. A move (by
 * `instanceId`) reads its instance and checks the account, zone and dedicated host in one query.
 */
export async function resolveRequest(db: Db | Transaction<DatabaseSchema>, request: PlacementRequest): Promise<ResolvedRequest> {
  const weigher = request.weigher ?? 'spread';
  if (!isWeigher(weigher)) throw new AppError('InvalidParameter', { name: 'weigher', reason: `use spread or pack, not ${String(weigher)}` });
  const ttlMs = request.ttlMs ?? defaultClaimTtlMs;
  if (!(ttlMs > 0)) throw new AppError('InvalidParameter', { name: 'ttlMs', reason: 'must be a positive number of milliseconds' });
  const exclude = new Set(request.excludeHostIds ?? []);

  let accountId = request.accountId;
  let size: { family: string; vcpus: number; memoryMib: number } | undefined;
  // Found with the instance when there is one: whether the account, zone and dedicated host exist.
  let found: { account: boolean; zone: boolean; dedicatedHost: boolean } | undefined;
  if (request.instanceId !== undefined) {
    const { zoneId, dedicatedHostId } = request;
    const instance = await db
      .selectFrom('instances')
      .innerJoin('instance_types', 'instance_types.id', 'instances.instance_type_id')
      .select(['instances.account_id', 'instances.host_id', 'instances.vcpus', 'instances.memory_mib', 'instance_types.family'])
      .select((eb) => eb.selectFrom('accounts').select('accounts.id').whereRef('accounts.id', '=', eb.ref('instances.account_id')).as('account_found'))
      .$if(zoneId !== undefined, (q) => q.select((eb) => eb.selectFrom('zones').select('zones.id').where('zones.id', '=', zoneId ?? '').as('zone_found')))
      .$if(dedicatedHostId !== undefined, (q) =>
        q.select((eb) => eb.selectFrom('hosts').select('hosts.id').where('hosts.dedicated_host_id', '=', dedicatedHostId ?? '').limit(1).as('deh_found')),
      )
      .where('instances.id', '=', request.instanceId)
      .executeTakeFirst();
    if (instance === undefined) throw new AppError('NotFound', { resource: 'instance', id: request.instanceId });
    if (accountId !== undefined && accountId !== instance.account_id) {
      throw new AppError('InvalidParameter', { name: 'accountId', reason: `instance ${request.instanceId} belongs to another account` });
    }
    accountId = instance.account_id;
    exclude.add(instance.host_id);
    size = { family: instance.family, vcpus: Number(instance.vcpus), memoryMib: Number(instance.memory_mib) };
    found = { account: instance.account_found != null, zone: instance.zone_found != null, dedicatedHost: instance.deh_found != null };
  }
  if (request.instanceTypeId !== undefined) {
    const type = await db.selectFrom('instance_types').selectAll().where('id', '=', request.instanceTypeId).executeTakeFirst();
    if (type === undefined) throw new AppError('NotFound', { resource: 'instance type', id: request.instanceTypeId });
    size = { family: type.family, vcpus: Number(type.vcpus), memoryMib: Number(type.memory_mib) };
  }
  if (size === undefined) throw missing('instanceId or instanceTypeId');
  if (accountId === undefined) throw missing('accountId');
  const account = found?.account ?? (await db.selectFrom('accounts').select('id').where('id', '=', accountId).executeTakeFirst()) !== undefined;
  if (!account) throw new AppError('NotFound', { resource: 'account', id: accountId });
  if (request.zoneId !== undefined) {
    const zone = found?.zone ?? (await db.selectFrom('zones').select('id').where('id', '=', request.zoneId).executeTakeFirst()) !== undefined;
    if (!zone) throw new AppError('NotFound', { resource: 'zone', id: request.zoneId });
  }
  if (request.dedicatedHostId !== undefined) {
    const deh = found?.dedicatedHost ?? (await db.selectFrom('hosts').select('id').where('dedicated_host_id', '=', request.dedicatedHostId).executeTakeFirst()) !== undefined;
    if (!deh) throw new AppError('NotFound', { resource: 'dedicated host', id: request.dedicatedHostId });
  }

  const antiAffinityInstanceIds = [...new Set(request.antiAffinity?.instanceIds ?? [])].sort();
  const avoid = new Set(request.antiAffinity?.hostIds ?? []);
  if (antiAffinityInstanceIds.length > 0) {
    const placed = await db.selectFrom('instances').select('host_id').where('id', 'in', antiAffinityInstanceIds).execute();
    const claimed = await db
      .selectFrom('placement_claims')
      .select('host_id')
      .where('instance_id', 'in', antiAffinityInstanceIds)
      .where('state', '=', 'held')
      .execute();
    for (const row of [...placed, ...claimed]) avoid.add(row.host_id);
  }

  return {
    instanceId: request.instanceId ?? null,
    accountId,
    family: size.family,
    vcpus: size.vcpus,
    memoryMib: size.memoryMib,
    zoneId: request.zoneId ?? null,
    dedicatedHostId: request.dedicatedHostId ?? null,
    excludeHostIds: exclude,
    avoidHostIds: avoid,
    antiAffinityInstanceIds,
    weigher,
    ttlMs,
  };
}
