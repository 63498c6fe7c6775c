/**
 * Host filters, in the order they are asked: a host is rejected by the first that says no,
 * and dry runs count rejections per filter by these names.
 */
import type { IndexedHost } from './capacity-index.ts';
import type { ResolvedRequest } from './request.ts';
import { pickNode } from './weighers.ts';

export const filterNames = ['state', 'zone', 'dedicatedHost', 'account', 'family', 'currentHost', 'antiAffinity', 'capacity'] as const;
export type FilterName = (typeof filterNames)[number];

export interface HostFilter {
  readonly name: FilterName;
  /** Why `host` cannot take the request, or undefined when it can as far as this filter knows. */
  rejects(host: IndexedHost, request: ResolvedRequest): string | undefined;
}

export function formatGib(mib: number): string {
  return `${Number((mib / 1024).toFixed(3))} GiB`;
}

export const hostFilters: readonly HostFilter[] = [
  {
    name: 'state',
    rejects: (host) => (host.state === 'Available' ? undefined : `host is ${host.state}`),
  },
  {
    name: 'zone',
    rejects: (host, req) => (req.zoneId === null || host.zoneId === req.zoneId ? undefined : `host is in zone ${host.zoneId}, not ${req.zoneId}`),
  },
  {
    name: 'dedicatedHost',
    rejects: (host, req) => {
      if (req.dedicatedHostId === null) {
        return host.dedicatedHostId === null ? undefined : `dedicated host ${host.dedicatedHostId}: public-pool requests never land on a dedicated host`;
      }
      if (host.dedicatedHostId === req.dedicatedHostId) return undefined;
      return host.dedicatedHostId === null ? `public-pool host, not dedicated host ${req.dedicatedHostId}` : `dedicated host ${host.dedicatedHostId}, not ${req.dedicatedHostId}`;
    },
  },
  {
    name: 'account',
    rejects: (host, req) =>
      host.ownerAccountId === null || host.ownerAccountId === req.accountId ? undefined : `dedicated host ${host.dedicatedHostId ?? host.id} belongs to another account`,
  },
  {
    name: 'family',
    rejects: (host, req) =>
      host.allowedFamilies === null || host.allowedFamilies.has(req.family)
        ? undefined
        : `dedicated host accepts families ${[...host.allowedFamilies].join(', ')}, not ${req.family}`,
  },
  {
    name: 'currentHost',
    rejects: (host, req) => (req.excludeHostIds.has(host.id) ? (req.instanceId === null ? 'host excluded by the request' : `excluded: current host of ${req.instanceId} or named in excludeHostIds`) : undefined),
  },
  {
    name: 'antiAffinity',
    rejects: (host, req) => (req.avoidHostIds.has(host.id) ? 'runs or is claimed for an anti-affine instance, or is an anti-affine host' : undefined),
  },
  {
    name: 'capacity',
    rejects: (host, req) => {
      if (pickNode(host.nodes, req.vcpus, req.memoryMib, req.weigher) !== undefined) return undefined;
      const free = host.nodes.map((n) => `node ${n.node}: ${n.vcpusFree} vCPU + ${formatGib(n.memoryMibFree)}`).join(', ');
      return `needs ${req.vcpus} vCPU + ${formatGib(req.memoryMib)} on one NUMA node; free ${free === '' ? 'nothing' : free}`;
    },
  },
];

const withoutCapacity = hostFilters.filter((f) => f.name !== 'capacity');

/** The first filter that rejects `host`, with its reason; undefined when every filter passes. */
export function firstRejection(host: IndexedHost, req: ResolvedRequest, options: { skipCapacity?: boolean } = {}): { filter: FilterName; reason: string } | undefined {
  for (const filter of options.skipCapacity === true ? withoutCapacity : hostFilters) {
    const reason = filter.rejects(host, req);
    if (reason !== undefined) return { filter: filter.name, reason };
  }
  return undefined;
}
