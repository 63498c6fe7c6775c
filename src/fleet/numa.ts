/**
 * NUMA arithmetic: a host's capacity split evenly across its nodes, and fitting a host's
 * occupants (instances, held claims) onto those nodes. An instance must fit on ONE node,
 * vCPUs and memory together.
 */

export interface NodeCapacity {
  readonly vcpus: number;
  readonly memoryMib: number;
}

/** `total` split into `parts` integers that differ by at most one; the lower nodes get the remainder. */
export function splitEvenly(total: number, parts: number): number[] {
  const base = Math.floor(total / parts);
  const remainder = total - base * parts;
  return Array.from({ length: parts }, (_, i) => base + (i < remainder ? 1 : 0));
}

/** The capacity of each NUMA node of a host with `vcpus` and `memoryMib` over `numaNodes` nodes. */
export function numaCapacities(vcpus: number, memoryMib: number, numaNodes: number): NodeCapacity[] {
  const cpu = splitEvenly(vcpus, numaNodes);
  const mem = splitEvenly(memoryMib, numaNodes);
  return cpu.map((v, i) => ({ vcpus: v, memoryMib: mem[i] ?? 0 }));
}

export function fits(free: NodeCapacity, need: NodeCapacity): boolean {
  return free.vcpus >= need.vcpus && free.memoryMib >= need.memoryMib;
}

export interface Occupant extends NodeCapacity {
  readonly id: string;
  /** The node it sits on now (it stays when it still fits), or undefined for a newcomer. */
  readonly node: number | undefined;
  /** Must stay on `node` (held claims, instances pinned in the file). */
  readonly pinned: boolean;
}

export type FitResult =
  | { readonly ok: true; readonly nodeOf: ReadonlyMap<string, number>; readonly used: readonly NodeCapacity[] }
  | { readonly ok: false; readonly misfit: Occupant; readonly free: readonly NodeCapacity[] };

/**
 * Place every occupant on a node: pinned ones where they are, others where they are when they
 * still fit, the rest (largest first) on the freest node that fits. Deterministic; reports the
 * first occupant that fits nowhere.
 */
export function fitOccupants(capacity: readonly NodeCapacity[], occupants: readonly Occupant[]): FitResult {
  const free = capacity.map((c) => ({ vcpus: c.vcpus, memoryMib: c.memoryMib }));
  const nodeOf = new Map<string, number>();
  const take = (o: Occupant, node: number): boolean => {
    const slot = free[node];
    if (slot === undefined || !fits(slot, o)) return false;
    slot.vcpus -= o.vcpus;
    slot.memoryMib -= o.memoryMib;
    nodeOf.set(o.id, node);
    return true;
  };
  const failed = (misfit: Occupant): FitResult => ({ ok: false, misfit, free });
  for (const o of occupants) {
    if (o.pinned && !take(o, o.node ?? -1)) return failed(o);
  }
  const rest: Occupant[] = [];
  for (const o of occupants) {
    if (!o.pinned && (o.node === undefined || !take(o, o.node))) rest.push(o);
  }
  rest.sort((a, b) => b.vcpus - a.vcpus || b.memoryMib - a.memoryMib || (a.id < b.id ? -1 : 1));
  for (const o of rest) {
    let best = -1;
    free.forEach((slot, node) => {
      const bestSlot = free[best];
      if (fits(slot, o) && (bestSlot === undefined || slot.vcpus > bestSlot.vcpus)) best = node;
    });
    if (!take(o, best)) return failed(o);
  }
  const used = capacity.map((c, i) => ({ vcpus: c.vcpus - (free[i]?.vcpus ?? 0), memoryMib: c.memoryMib - (free[i]?.memoryMib ?? 0) }));
  return { ok: true, nodeOf, used };
}
