/**
 * Weighers rank the NUMA nodes that passed every filter. `spread` (the default) takes the node
 * with the most free vCPUs, so load evens out and a host's failure hits few instances; `pack`
 * takes the node with the fewest free vCPUs that still fits, keeping whole hosts free for big
 * instances and for maintenance. Ties go to the node seen first.
 */
export const weighers = ['spread', 'pack'] as const;
export type Weigher = (typeof weighers)[number];

export function isWeigher(value: string): value is Weigher {
  return (weighers as readonly string[]).includes(value);
}

/** Free-vCPU levels from `needVcpus` to `topVcpus`, in the order `weigher` prefers them. */
export function* freeVcpuOrder(weigher: Weigher, needVcpus: number, topVcpus: number): Generator<number> {
  if (weigher === 'spread') {
    for (let v = topVcpus; v >= needVcpus; v -= 1) yield v;
  } else {
    for (let v = needVcpus; v <= topVcpus; v += 1) yield v;
  }
}

/** True when `weigher` ranks a node with `a` free vCPUs above one with `b`. */
export function ranksAbove(weigher: Weigher, a: number, b: number): boolean {
  return weigher === 'spread' ? a > b : a < b;
}

interface NodeFree {
  readonly vcpusFree: number;
  readonly memoryMibFree: number;
}

/** The node of one host that `weigher` ranks first among those where the need fits; undefined if none. */
export function pickNode<N extends NodeFree>(nodes: readonly N[], vcpus: number, memoryMib: number, weigher: Weigher): N | undefined {
  let best: N | undefined;
  for (const node of nodes) {
    if (node.vcpusFree < vcpus || node.memoryMibFree < memoryMib) continue;
    if (best === undefined || ranksAbove(weigher, node.vcpusFree, best.vcpusFree)) best = node;
  }
  return best;
}
