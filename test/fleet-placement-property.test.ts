/**
 * Properties of placement: the index's fast choice agrees with asking every filter about every
 * host, and no sequence of claims, releases, commits and host state changes ever leaves a NUMA
 * node with more used than it has, or with a used count other than what lives and is claimed there.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { applyFleet } from '../src/fleet/apply-fleet.ts';
import type { FleetSpec } from '../src/fleet/fleet-spec.ts';
import { hostStates } from '../src/fleet/host-states.ts';
import { CapacityIndex, type HostSnapshot } from '../src/fleet/placement/capacity-index.ts';
import { explainPlacement } from '../src/fleet/placement/dry-run.ts';
import { firstRejection } from '../src/fleet/placement/filters.ts';
import { NoValidHostError, Placement } from '../src/fleet/placement/placement.ts';
import type { ResolvedRequest } from '../src/fleet/placement/request.ts';
import { setHostState } from '../src/fleet/set-host-state.ts';
import { SimComputeDriver } from '../src/fleet/sim-driver.ts';
import type { Database } from '../src/store/database.ts';
import { forEachDialect, tempDir } from './support/dialects.ts';

const zones = ['z0', 'z1', 'z2'];
const accounts = ['a0', 'a1', 'a2'];
const families = ['f0', 'f1'];

const hostArb = fc.record({
  zone: fc.constantFrom(...zones),
  state: fc.constantFrom(...hostStates, 'Available', 'Available'),
  owner: fc.option(fc.constantFrom(...accounts), { freq: 3 }),
  families: fc.option(fc.subarray(families, { minLength: 1 })),
  nodes: fc.array(fc.record({ vcpus: fc.integer({ min: 1, max: 24 }), memoryMib: fc.integer({ min: 1, max: 64 }), usedShare: fc.double({ min: 0, max: 1, noNaN: true }) }), { minLength: 1, maxLength: 4 }),
});

const requestArb = fc.record({
  account: fc.constantFrom(...accounts),
  family: fc.constantFrom(...families),
  vcpus: fc.integer({ min: 1, max: 12 }),
  memoryMib: fc.integer({ min: 1, max: 32 }),
  zone: fc.option(fc.constantFrom(...zones)),
  deh: fc.option(fc.integer({ min: 0, max: 40 }), { freq: 4 }),
  weigher: fc.constantFrom('spread' as const, 'pack' as const),
  exclude: fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 3 }),
  avoid: fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 3 }),
});

void describe('placement index', () => {
  it('chooses only hosts every filter accepts, the best by the weigher, and finds one whenever one exists', () => {
    fc.assert(
      fc.property(fc.array(hostArb, { minLength: 1, maxLength: 40 }), fc.array(requestArb, { minLength: 1, maxLength: 30 }), (hosts, requests) => {
        const snapshots: HostSnapshot[] = hosts.map((h, i) => ({
          id: `h${i}`,
          zoneId: h.zone,
          state: h.state,
          dedicatedHostId: h.owner === null ? null : `dh${i}`,
          ownerAccountId: h.owner,
          allowedFamilies: h.owner === null ? null : h.families,
          nodes: h.nodes.map((n, node) => {
            const vcpusUsed = Math.floor(n.vcpus * n.usedShare);
            const memoryMibUsed = Math.floor(n.memoryMib * n.usedShare);
            return { node, vcpusTotal: n.vcpus, memoryMibTotal: n.memoryMib, vcpusUsed, memoryMibUsed };
          }),
        }));
        const index = CapacityIndex.fromSnapshots(snapshots);
        for (const r of requests) {
          const req: ResolvedRequest = {
            instanceId: null,
            accountId: r.account,
            family: r.family,
            vcpus: r.vcpus,
            memoryMib: r.memoryMib,
            zoneId: r.zone,
            dedicatedHostId: r.deh === null ? null : `dh${r.deh}`,
            excludeHostIds: new Set(r.exclude.map((i) => `h${i}`)),
            avoidHostIds: new Set(r.avoid.map((i) => `h${i}`)),
            antiAffinityInstanceIds: [],
            weigher: r.weigher,
            ttlMs: 1,
          };
          const chosen = index.choose(req);
          const passing = [...index.hosts()].filter((h) => firstRejection(h, req) === undefined);
          assert.equal(explainPlacement(index, req).candidates, passing.length);
          if (chosen === undefined) {
            assert.equal(passing.length, 0, 'a host passes every filter but none was chosen');
            continue;
          }
          assert.equal(firstRejection(chosen.host, req), undefined);
          assert.ok(chosen.vcpusFree >= req.vcpus && chosen.memoryMibFree >= req.memoryMib);
          const fitting = passing.flatMap((h) => h.nodes.filter((n) => n.vcpusFree >= req.vcpus && n.memoryMibFree >= req.memoryMib).map((n) => n.vcpusFree));
          const best = req.weigher === 'spread' ? Math.max(...fitting) : Math.min(...fitting);
          assert.equal(chosen.vcpusFree, best, `${req.weigher} chose a node with ${chosen.vcpusFree} free vCPUs, best is ${best}`);
          index.adjustUsed(chosen.host.id, chosen.node, req.vcpus, req.memoryMib);
        }
        for (const host of index.hosts()) for (const node of host.nodes) assert.ok(node.vcpusFree >= 0 && node.memoryMibFree >= 0);
      }),
      { numRuns: 300 },
    );
  });
});

/** Every NUMA node: used <= total, and used = instances placed there + held claims there. */
async function assertCapacityInvariant(database: Database): Promise<void> {
  const nodes = await database.db.selectFrom('host_numa_nodes').selectAll().execute();
  const instances = await database.db.selectFrom('instances').select(['host_id', 'numa_node', 'vcpus', 'memory_mib']).execute();
  const claims = await database.db.selectFrom('placement_claims').select(['host_id', 'node', 'vcpus', 'memory_mib']).where('state', '=', 'held').execute();
  for (const n of nodes) {
    const here = [
      ...instances.filter((i) => i.host_id === n.host_id && Number(i.numa_node) === Number(n.node)),
      ...claims.filter((c) => c.host_id === n.host_id && Number(c.node) === Number(n.node)),
    ];
    const where = `${n.host_id}/node ${n.node}`;
    assert.ok(Number(n.vcpus_used) <= Number(n.vcpus_total), `${where}: ${n.vcpus_used} of ${n.vcpus_total} vCPUs used`);
    assert.ok(Number(n.memory_mib_used) <= Number(n.memory_mib_total), `${where}: memory overcommitted`);
    assert.equal(Number(n.vcpus_used), here.reduce((s, x) => s + Number(x.vcpus), 0), `${where}: vCPUs used disagree with what is there`);
    assert.equal(Number(n.memory_mib_used), here.reduce((s, x) => s + Number(x.memory_mib), 0), `${where}: memory used disagrees`);
  }
}

const opArb = fc.oneof(
  fc.record({ op: fc.constant('claim' as const), type: fc.constantFrom('t1', 't2', 't4'), account: fc.constantFrom('alice', 'bob'), zone: fc.option(fc.constantFrom('z0', 'z1')), deh: fc.boolean(), weigher: fc.constantFrom('spread' as const, 'pack' as const) }),
  fc.record({ op: fc.constant('move' as const), instance: fc.nat() }),
  fc.record({ op: fc.constant('commit' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('release' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('state' as const), host: fc.nat(), state: fc.constantFrom(...hostStates) }),
);

const dbFleetArb = fc.array(
  fc.record({ zone: fc.constantFrom('z0', 'z1'), vcpus: fc.integer({ min: 2, max: 12 }), numaNodes: fc.integer({ min: 1, max: 2 }), deh: fc.boolean(), instances: fc.integer({ min: 0, max: 2 }) }),
  { minLength: 2, maxLength: 6 },
);

function dbFleet(hosts: readonly { zone: string; vcpus: number; numaNodes: number; deh: boolean; instances: number }[]): FleetSpec {
  const instances = hosts.flatMap((h, i) =>
    Array.from({ length: h.instances }, (_, k) => ({ id: `i-${i}-${k}`, account: 'alice', host: `h${i}`, type: 't1', vswitch: `vsw-${h.zone}` })),
  );
  return {
    regions: [
      {
        id: 'r',
        zones: ['z0', 'z1'].map((zone) => ({
          id: zone,
          vswitches: [{ id: `vsw-${zone}`, vpcId: 'vpc', cidr: '10.0.0.0/16' }],
          hosts: hosts.flatMap((h, i) =>
            h.zone !== zone
              ? []
              : [{ id: `h${i}`, vcpus: h.vcpus, memoryGiB: h.vcpus * 2, numaNodes: h.numaNodes, ...(h.deh ? { dedicatedHostId: `dh${i}`, account: 'alice' } : {}) }],
          ),
        })),
      },
    ],
    instanceTypes: [
      { id: 't1', family: 'f', vcpus: 1, memoryGiB: 1 },
      { id: 't2', family: 'f', vcpus: 2, memoryGiB: 3 },
      { id: 't4', family: 'f', vcpus: 4, memoryGiB: 8 },
    ],
    instances,
  };
}

forEachDialect('placement in the database', (ctx) => {
  it('no sequence of claims, moves, commits, releases and host failures exceeds a NUMA node', async () => {
    await fc.assert(
      fc.asyncProperty(dbFleetArb, fc.array(opArb, { minLength: 5, maxLength: 25 }), async (hosts, ops) => {
        const database = await ctx.open();
        await applyFleet(database, new SimComputeDriver({ dataDir: tempDir() }), dbFleet(hosts));
        await database.db.insertInto('accounts').values({ id: 'acct-bob', name: 'bob', project_id: 'b'.repeat(32), created_at: 0 }).execute();
        // A fleet with no instance and no dedicated host names no account: alice must exist anyway.
        let alice = (await database.db.selectFrom('accounts').select('id').where('name', '=', 'alice').executeTakeFirst())?.id;
        if (alice === undefined) {
          alice = 'acct-alice';
          await database.db.insertInto('accounts').values({ id: alice, name: 'alice', project_id: 'a'.repeat(32), created_at: 0 }).execute();
        }
        const ids = { alice, bob: 'acct-bob' };
        const instanceIds = (await database.db.selectFrom('instances').select('id').orderBy('id').execute()).map((r) => r.id);
        const placement = await Placement.load(database);
        const held: { id: string; instance: boolean }[] = [];
        const expected = (err: unknown): void => {
          // Refusals a user would see are fine; anything else fails the property.
          if (!(err instanceof NoValidHostError) && !/already has a held placement claim/.test(String(err))) throw err;
        };
        for (const op of ops) {
          if (op.op === 'claim') {
            const dehHost = hosts.findIndex((h) => h.deh);
            await placement
              .claim({
                accountId: ids[op.account],
                instanceTypeId: op.type,
                weigher: op.weigher,
                ...(op.zone === null ? {} : { zoneId: op.zone }),
                ...(op.deh && dehHost >= 0 ? { dedicatedHostId: `dh${dehHost}` } : {}),
              })
              .then((c) => held.push({ id: c.id, instance: false }), expected);
          } else if (op.op === 'move' && instanceIds.length > 0) {
            const instanceId = instanceIds[op.instance % instanceIds.length] ?? '';
            await placement.claim({ instanceId }).then((c) => held.push({ id: c.id, instance: true }), expected);
          } else if (op.op === 'commit') {
            const moves = held.filter((h) => h.instance);
            const pick = moves[op.pick % Math.max(1, moves.length)];
            if (pick !== undefined) {
              await placement.commit(pick.id);
              held.splice(held.indexOf(pick), 1);
            }
          } else if (op.op === 'release' && held.length > 0) {
            const [pick] = held.splice(op.pick % held.length, 1);
            if (pick !== undefined) await placement.release(pick.id);
          } else if (op.op === 'state') {
            await setHostState(database, `h${op.host % hosts.length}`, op.state);
          }
          await assertCapacityInvariant(database);
        }
      }),
      { numRuns: 12 },
    );
  });
});
