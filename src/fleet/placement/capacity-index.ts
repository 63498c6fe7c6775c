/**
 * In-memory index of host capacity, loaded from the database, for placement decisions at 100k
 * hosts. NUMA nodes of available public-pool hosts sit in buckets keyed by free vCPUs, per zone
 * and across zones, so a decision walks buckets from the weigher's end and stops at the first
 * node that fits and passes the filters, instead of scanning every host. Dedicated hosts are
 * found by their id. The index may be stale: the database is the authority, and a claim that
 * the database refuses refreshes the host it was about.
 */
import { firstRejection } from './filters.ts';
import type { ResolvedRequest } from './request.ts';
import { pickNode } from './weighers.ts';

export interface NodeSnapshot {
  readonly node: number;
  readonly vcpusTotal: number;
  readonly memoryMibTotal: number;
  readonly vcpusUsed: number;
  readonly memoryMibUsed: number;
}

/** One host as the database has it. */
export interface HostSnapshot {
  readonly id: string;
  readonly zoneId: string;
  readonly state: string;
  readonly dedicatedHostId: string | null;
  readonly ownerAccountId: string | null;
  readonly allowedFamilies: readonly string[] | null;
  readonly nodes: readonly NodeSnapshot[];
}

export interface IndexedNode {
  readonly host: IndexedHost;
  readonly node: number;
  readonly vcpusTotal: number;
  readonly memoryMibTotal: number;
  vcpusFree: number;
  memoryMibFree: number;
  /** Positions in the zone's and the all-zones bucket levels; -1 when not listed. */
  readonly positions: [number, number];
}

export interface IndexedHost {
  readonly id: string;
  readonly zoneId: string;
  state: string;
  readonly dedicatedHostId: string | null;
  readonly ownerAccountId: string | null;
  readonly allowedFamilies: ReadonlySet<string> | null;
  readonly nodes: readonly IndexedNode[];
}

/**
 * NUMA nodes grouped by free vCPUs. Each level is an array with swap-remove, so adding, removing
 * and reaching a member are O(1) whatever the fleet's size (a Set would make reaching its first
 * member walk over every member deleted before it). A node remembers its position in each of the
 * two structures it belongs to (its zone's and the all-zones one) by `slot`.
 * A node must leave its level before its free count changes.
 */
class FreeVcpuBuckets {
  readonly #levels: (IndexedNode[] | undefined)[] = [];

  constructor(readonly slot: 0 | 1) {}

  add(node: IndexedNode): void {
    const level = (this.#levels[Math.max(0, node.vcpusFree)] ??= []);
    node.positions[this.slot] = level.length;
    level.push(node);
  }

  delete(node: IndexedNode): void {
    const level = this.#levels[Math.max(0, node.vcpusFree)];
    const at = node.positions[this.slot];
    if (level === undefined || at < 0 || level[at] !== node) return;
    const last = level.pop();
    if (last !== undefined && last !== node) {
      level[at] = last;
      last.positions[this.slot] = at;
    }
    node.positions[this.slot] = -1;
  }

  /** The highest free-vCPU level that may hold nodes. */
  get top(): number {
    return this.#levels.length - 1;
  }

  /** The nodes with exactly `vcpusFree` free vCPUs; do not modify it while iterating. */
  at(vcpusFree: number): readonly IndexedNode[] | undefined {
    return this.#levels[vcpusFree];
  }
}

export class CapacityIndex {
  readonly #hosts = new Map<string, IndexedHost>();
  readonly #dedicated = new Map<string, IndexedHost>();
  readonly #publicByZone = new Map<string, FreeVcpuBuckets>();
  readonly #publicAll = new FreeVcpuBuckets(1);

  static fromSnapshots(hosts: Iterable<HostSnapshot>): CapacityIndex {
    const index = new CapacityIndex();
    for (const host of hosts) index.upsertHost(host);
    return index;
  }

  get size(): number {
    return this.#hosts.size;
  }

  hosts(): IterableIterator<IndexedHost> {
    return this.#hosts.values();
  }

  host(id: string): IndexedHost | undefined {
    return this.#hosts.get(id);
  }

  /** Add a host or replace what the index knew of it. */
  upsertHost(snapshot: HostSnapshot): void {
    const old = this.#hosts.get(snapshot.id);
    if (old !== undefined) this.#unlist(old);
    const nodes: IndexedNode[] = [];
    const host: IndexedHost = {
      id: snapshot.id,
      zoneId: snapshot.zoneId,
      state: snapshot.state,
      dedicatedHostId: snapshot.dedicatedHostId,
      ownerAccountId: snapshot.ownerAccountId,
      allowedFamilies: snapshot.allowedFamilies === null ? null : new Set(snapshot.allowedFamilies),
      nodes,
    };
    for (const n of [...snapshot.nodes].sort((a, b) => a.node - b.node)) {
      nodes.push({
        host,
        node: n.node,
        vcpusTotal: n.vcpusTotal,
        memoryMibTotal: n.memoryMibTotal,
        vcpusFree: n.vcpusTotal - n.vcpusUsed,
        memoryMibFree: n.memoryMibTotal - n.memoryMibUsed,
        positions: [-1, -1],
      });
    }
    this.#hosts.set(host.id, host);
    this.#list(host);
  }

  removeHost(id: string): void {
    const host = this.#hosts.get(id);
    if (host === undefined) return;
    this.#unlist(host);
    this.#hosts.delete(id);
  }

  setHostState(id: string, state: string): void {
    const host = this.#hosts.get(id);
    if (host === undefined) return;
    this.#unlist(host);
    host.state = state;
    this.#list(host);
  }

  /** Record a change of used capacity on one node (positive: more used, as after a claim). */
  adjustUsed(hostId: string, node: number, vcpus: number, memoryMib: number): void {
    const host = this.#hosts.get(hostId);
    const target = host?.nodes.find((n) => n.node === node);
    if (host === undefined || target === undefined) return;
    const listed = this.#isListed(host);
    if (listed) this.#unlistNode(target);
    target.vcpusFree -= vcpus;
    target.memoryMibFree -= memoryMib;
    if (listed) this.#listNode(target);
  }

  /** The NUMA node the request should go to, or undefined when no host passes every filter. */
  choose(req: ResolvedRequest): IndexedNode | undefined {
    if (req.dedicatedHostId !== null) {
      const host = this.#dedicated.get(req.dedicatedHostId);
      if (host === undefined || firstRejection(host, req) !== undefined) return undefined;
      return pickNode(host.nodes, req.vcpus, req.memoryMib, req.weigher);
    }
    const pool = req.zoneId === null ? this.#publicAll : this.#publicByZone.get(req.zoneId);
    if (pool === undefined) return undefined;
    // spread walks down from the freest level, pack up from the smallest that fits.
    const [from, to, step] = req.weigher === 'spread' ? [pool.top, req.vcpus, -1] : [req.vcpus, pool.top, 1];
    for (let level = from; step < 0 ? level >= to : level <= to; level += step) {
      const bucket = pool.at(level);
      if (bucket === undefined) continue;
      // Newest first: a node that just moved into this level is found without a walk.
      for (let i = bucket.length - 1; i >= 0; i -= 1) {
        const node = bucket[i];
        if (node === undefined || node.memoryMibFree < req.memoryMib) continue;
        if (firstRejection(node.host, req, { skipCapacity: true }) === undefined) return node;
      }
    }
    return undefined;
  }

  #isListed(host: IndexedHost): boolean {
    return host.state === 'Available' && host.dedicatedHostId === null;
  }

  #zoneBuckets(zoneId: string): FreeVcpuBuckets {
    let zone = this.#publicByZone.get(zoneId);
    if (zone === undefined) {
      zone = new FreeVcpuBuckets(0);
      this.#publicByZone.set(zoneId, zone);
    }
    return zone;
  }

  #listNode(node: IndexedNode): void {
    this.#zoneBuckets(node.host.zoneId).add(node);
    this.#publicAll.add(node);
  }

  #unlistNode(node: IndexedNode): void {
    this.#zoneBuckets(node.host.zoneId).delete(node);
    this.#publicAll.delete(node);
  }

  #list(host: IndexedHost): void {
    if (host.dedicatedHostId !== null) this.#dedicated.set(host.dedicatedHostId, host);
    if (!this.#isListed(host)) return;
    for (const node of host.nodes) this.#listNode(node);
  }

  #unlist(host: IndexedHost): void {
    if (host.dedicatedHostId !== null) this.#dedicated.delete(host.dedicatedHostId);
    if (!this.#isListed(host)) return;
    for (const node of host.nodes) this.#unlistNode(node);
  }
}
