import type { CapacityIndex } from './capacity-index.ts';
import { type FilterName, filterNames, firstRejection, formatGib } from './filters.ts';
import type { ResolvedRequest } from './request.ts';
import type { Weigher } from './weighers.ts';

export interface Rejection {
  readonly hostId: string;
  readonly filter: FilterName;
  readonly reason: string;
}

/** Where a request would go and why every other host would not take it. */
export interface DryRunResult {
  /** The host the request would be placed on now, or null. */
  readonly chosen: string | null;
  readonly numaNode: number | null;
  /** Hosts that pass every filter. */
  readonly candidates: number;
  /** Rejected hosts counted by the first filter that rejected them. */
  readonly rejected: Partial<Record<FilterName, number>>;
  /** One entry per rejected host (up to maxReasons), in host order. */
  readonly reasons: readonly Rejection[];
  /** Rejections not listed in `reasons` because of maxReasons. */
  readonly reasonsOmitted: number;
  readonly request: {
    readonly accountId: string;
    readonly instanceId: string | null;
    readonly family: string;
    readonly vcpus: number;
    readonly memoryGiB: number;
    readonly zoneId: string | null;
    readonly dedicatedHostId: string | null;
    readonly weigher: Weigher;
  };
}

/** Ask every filter about every host in the index (a full scan: for people, not the hot path). */
export function explainPlacement(index: CapacityIndex, req: ResolvedRequest, maxReasons = Number.POSITIVE_INFINITY): DryRunResult {
  const rejected: Partial<Record<FilterName, number>> = {};
  const reasons: Rejection[] = [];
  let omitted = 0;
  let candidates = 0;
  for (const host of index.hosts()) {
    const no = firstRejection(host, req);
    if (no === undefined) {
      candidates += 1;
      continue;
    }
    rejected[no.filter] = (rejected[no.filter] ?? 0) + 1;
    if (reasons.length < maxReasons) reasons.push({ hostId: host.id, ...no });
    else omitted += 1;
  }
  const chosen = index.choose(req);
  return {
    chosen: chosen?.host.id ?? null,
    numaNode: chosen?.node ?? null,
    candidates,
    rejected,
    reasons,
    reasonsOmitted: omitted,
    request: {
      accountId: req.accountId,
      instanceId: req.instanceId,
      family: req.family,
      vcpus: req.vcpus,
      memoryGiB: req.memoryMib / 1024,
      zoneId: req.zoneId,
      dedicatedHostId: req.dedicatedHostId,
      weigher: req.weigher,
    },
  };
}

/** "capacity: 12 hosts, zone: 40 hosts", in filter order, for error messages. */
export function summarizeRejections(rejected: Partial<Record<FilterName, number>>): string {
  const parts = filterNames.flatMap((name) => {
    const count = rejected[name];
    return count === undefined ? [] : [`${name}: ${count} host${count === 1 ? '' : 's'}`];
  });
  return parts.length === 0 ? 'no hosts in the fleet' : parts.join(', ');
}

/** "2 vCPU + 8 GiB of family ecs.g7 for account X in zone Z". */
export function describeRequest(req: ResolvedRequest): string {
  const what = req.instanceId === null ? '' : `instance ${req.instanceId} (`;
  const size = `${req.vcpus} vCPU + ${formatGib(req.memoryMib)} of family ${req.family}`;
  const where = [req.zoneId === null ? 'any zone' : `zone ${req.zoneId}`, req.dedicatedHostId === null ? 'public pool' : `dedicated host ${req.dedicatedHostId}`].join(', ');
  return `${what}${size}${what === '' ? '' : ')'} in ${where}`;
}
