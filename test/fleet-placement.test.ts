import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ManualClock } from '../src/core/clock.ts';
import { applyFleet } from '../src/fleet/apply-fleet.ts';
import type { FleetSpec } from '../src/fleet/fleet-spec.ts';
import { NoValidHostError, Placement } from '../src/fleet/placement/placement.ts';
import type { PlacementRequest } from '../src/fleet/placement/request.ts';
import { setHostState } from '../src/fleet/set-host-state.ts';
import { showFleet, showInstance } from '../src/fleet/show-fleet.ts';
import { SimComputeDriver } from '../src/fleet/sim-driver.ts';
import { type Database, openDatabase } from '../src/store/database.ts';
import { forEachDialect, tempDir } from './support/dialects.ts';

/**
 * Zone z-a: a1 (32 vCPU, 2 nodes of 16), a2 (16 vCPU, 2 nodes of 8), a-maint (in Maintenance),
 * alice's DeH dh-alice (ecs.g7 only). Zone z-b: b1 (32 vCPU), bob's DeH dh-bob.
 * i-1 (alice) on a1, i-2 (alice) on b1, i-3 (bob) on dh-bob; 2 vCPU + 8 GiB each.
 */
const fleet: FleetSpec = {
  regions: [
    {
      id: 'r1',
      zones: [
        {
          id: 'z-a',
          vswitches: [{ id: 'vsw-a', vpcId: 'vpc-1', cidr: '10.0.1.0/24' }],
          hosts: [
            { id: 'a1', vcpus: 32, memoryGiB: 128, numaNodes: 2 },
            { id: 'a2', vcpus: 16, memoryGiB: 64, numaNodes: 2 },
            { id: 'a-maint', vcpus: 64, memoryGiB: 256, numaNodes: 2, state: 'Maintenance' },
            { id: 'deh-alice', vcpus: 64, memoryGiB: 256, numaNodes: 2, dedicatedHostId: 'dh-alice', account: 'alice', allowedFamilies: ['ecs.g7'] },
          ],
        },
        {
          id: 'z-b',
          vswitches: [{ id: 'vsw-b', vpcId: 'vpc-1', cidr: '10.0.2.0/24' }],
          hosts: [
            { id: 'b1', vcpus: 32, memoryGiB: 128, numaNodes: 2 },
            { id: 'deh-bob', vcpus: 64, memoryGiB: 256, numaNodes: 2, dedicatedHostId: 'dh-bob', account: 'bob' },
          ],
        },
      ],
    },
  ],
  instanceTypes: [
    { id: 'ecs.g7.large', family: 'ecs.g7', vcpus: 2, memoryGiB: 8 },
    { id: 'ecs.g7.2xlarge', family: 'ecs.g7', vcpus: 8, memoryGiB: 32 },
    { id: 'ecs.g7.3xlarge', family: 'ecs.g7', vcpus: 12, memoryGiB: 48 },
    { id: 'ecs.c7.large', family: 'ecs.c7', vcpus: 2, memoryGiB: 4 },
    { id: 'ecs.r7.memory', family: 'ecs.r7', vcpus: 2, memoryGiB: 100 },
  ],
  instances: [
    { id: 'i-1', account: 'alice', host: 'a1', type: 'ecs.g7.large', vswitch: 'vsw-a', status: 'Stopped' },
    { id: 'i-2', account: 'alice', host: 'b1', type: 'ecs.g7.large', vswitch: 'vsw-b' },
    { id: 'i-3', account: 'bob', host: 'deh-bob', type: 'ecs.g7.large', vswitch: 'vsw-b' },
  ],
};

async function accountId(database: Database, name: string): Promise<string> {
  return (await database.db.selectFrom('accounts').select('id').where('name', '=', name).executeTakeFirstOrThrow()).id;
}

async function usedVcpus(database: Database, hostId: string): Promise<number[]> {
  const host = (await showFleet(database)).regions.flatMap((r) => r.zones.flatMap((z) => z.hosts)).find((h) => h.id === hostId);
  return host?.numa.map((n) => n.usedVcpus) ?? [];
}

forEachDialect('fleet placement', (ctx) => {
  async function setup(clock?: ManualClock): Promise<{ database: Database; placement: Placement; alice: string; bob: string }> {
    const database = await ctx.open();
    await applyFleet(database, new SimComputeDriver({ dataDir: tempDir() }), fleet);
    const placement = await Placement.load(database, clock === undefined ? {} : { clock });
    return { database, placement, alice: await accountId(database, 'alice'), bob: await accountId(database, 'bob') };
  }

  it('zone and state filters, with a dry run that counts rejections per filter', async () => {
    const { placement, alice } = await setup();
    const run = await placement.dryRun({ accountId: alice, instanceTypeId: 'ecs.g7.large', zoneId: 'z-b' });
    assert.equal(run.chosen, 'b1');
    assert.equal(run.candidates, 1);
    assert.deepEqual(run.rejected, { state: 1, zone: 3, dedicatedHost: 1 });
    assert.deepEqual(
      run.reasons.map((r) => [r.hostId, r.filter]).sort(),
      [['a-maint', 'state'], ['a1', 'zone'], ['a2', 'zone'], ['deh-alice', 'zone'], ['deh-bob', 'dedicatedHost']],
    );
    assert.match(run.reasons.find((r) => r.hostId === 'a-maint')?.reason ?? '', /host is Maintenance/);
    assert.match(run.reasons.find((r) => r.hostId === 'deh-bob')?.reason ?? '', /public-pool requests never land on a dedicated host/);
    const limited = await placement.dryRun({ accountId: alice, instanceTypeId: 'ecs.g7.large', zoneId: 'z-b' }, { maxReasons: 2 });
    assert.equal(limited.reasons.length, 2);
    assert.equal(limited.reasonsOmitted, 3);
  });

  it('a host back in Available takes placements again; spread picks the freest node, pack the fullest that fits', async () => {
    const { database, placement, alice } = await setup();
    const req: PlacementRequest = { accountId: alice, instanceTypeId: 'ecs.g7.large', zoneId: 'z-a' };
    assert.equal((await placement.dryRun(req)).chosen, 'a1');
    assert.equal((await placement.dryRun({ ...req, weigher: 'pack' })).chosen, 'a2');
    await setHostState(database, 'a-maint', 'Available');
    await placement.refreshHosts(['a-maint']);
    assert.equal((await placement.dryRun(req)).chosen, 'a-maint');
    assert.equal((await placement.dryRun({ ...req, weigher: 'pack' })).chosen, 'a2');
  });

  it('public requests never land on a dedicated host; a DeH takes only its owner, asked by id, of an allowed family', async () => {
    const { placement, alice, bob } = await setup();
    // z-b's public host b1 filled up: bob's DeH there still has room, but public requests never go there.
    for (let i = 0; i < 3; i += 1) await placement.claim({ accountId: bob, instanceTypeId: 'ecs.g7.3xlarge', zoneId: 'z-b' }).catch(() => undefined);
    const full = await placement.claim({ accountId: bob, instanceTypeId: 'ecs.g7.3xlarge', zoneId: 'z-b' }).then(
      () => assert.fail('b1 should be full'),
      (err: unknown) => err,
    );
    assert.ok(full instanceof NoValidHostError);
    assert.deepEqual(full.dryRun.rejected, { state: 1, zone: 3, dedicatedHost: 1, capacity: 1 });
    assert.match(full.message, /No host can take 12 vCPU \+ 48 GiB of family ecs.g7 in zone z-b, public pool\. Rejected by state: 1 host, zone: 3 hosts, dedicatedHost: 1 host, capacity: 1 host/);
    assert.equal(full.alibabaCode, 'OperationDenied.NoStock');

    const onDeh = await placement.claim({ accountId: bob, instanceTypeId: 'ecs.g7.3xlarge', dedicatedHostId: 'dh-bob' });
    assert.equal(onDeh.hostId, 'deh-bob');
    const stranger = await placement.dryRun({ accountId: alice, instanceTypeId: 'ecs.g7.large', dedicatedHostId: 'dh-bob' });
    assert.equal(stranger.chosen, null);
    assert.equal(stranger.rejected.account, 1);
    assert.equal(stranger.rejected.dedicatedHost, 4);
    const family = await placement.dryRun({ accountId: alice, instanceTypeId: 'ecs.c7.large', dedicatedHostId: 'dh-alice' });
    assert.equal(family.chosen, null);
    assert.deepEqual(family.reasons.find((r) => r.hostId === 'deh-alice'), { hostId: 'deh-alice', filter: 'family', reason: 'dedicated host accepts families ecs.g7, not ecs.c7' });
    assert.equal((await placement.dryRun({ accountId: alice, instanceTypeId: 'ecs.g7.large', dedicatedHostId: 'dh-alice' })).chosen, 'deh-alice');
  });

  it('capacity must fit on one NUMA node, vCPUs and memory together', async () => {
    const { placement, alice } = await setup();
    // a2 has 16 vCPUs in total but 8 per node: a 12 vCPU instance does not fit there.
    const big = await placement.dryRun({ accountId: alice, instanceTypeId: 'ecs.g7.3xlarge', zoneId: 'z-a', weigher: 'pack' });
    assert.equal(big.chosen, 'a1');
    assert.match(big.reasons.find((r) => r.hostId === 'a2')?.reason ?? '', /needs 12 vCPU \+ 48 GiB on one NUMA node; free node 0: 8 vCPU \+ 32 GiB, node 1: 8 vCPU \+ 32 GiB/);
    // 100 GiB fits no node of the public hosts (64 GiB per node), however many vCPUs are free.
    const memory = await placement.dryRun({ accountId: alice, instanceTypeId: 'ecs.r7.memory' });
    assert.equal(memory.chosen, null);
    assert.equal(memory.rejected.capacity, 3);
  });

  it('anti-affinity and the current host keep a placement off named hosts', async () => {
    const { placement, alice } = await setup();
    const spread = { accountId: alice, instanceTypeId: 'ecs.g7.large', zoneId: 'z-a' } as const;
    const away = await placement.dryRun({ ...spread, antiAffinity: { instanceIds: ['i-1'] } });
    assert.equal(away.chosen, 'a2');
    assert.equal(away.rejected.antiAffinity, 1);
    const noHosts = await placement.dryRun({ ...spread, antiAffinity: { hostIds: ['a1', 'a2'] } });
    assert.equal(noHosts.chosen, null);
    const move = await placement.dryRun({ instanceId: 'i-1', zoneId: 'z-a' });
    assert.equal(move.chosen, 'a2');
    assert.deepEqual(move.reasons.find((r) => r.hostId === 'a1')?.filter, 'currentHost');
    assert.equal((await placement.dryRun({ instanceId: 'i-1', zoneId: 'z-a', excludeHostIds: ['a2'] })).chosen, null);
  });

  it('claims reserve capacity in the database; commit moves the instance, release gives it back', async () => {
    const { database, placement } = await setup();
    assert.deepEqual(await usedVcpus(database, 'a2'), [0, 0]);
    const claim = await placement.claim({ instanceId: 'i-1', zoneId: 'z-a' });
    assert.equal(claim.hostId, 'a2');
    assert.equal(claim.state, 'held');
    assert.deepEqual((await usedVcpus(database, 'a2')).reduce((a, b) => a + b), 2);
    await assert.rejects(placement.claim({ instanceId: 'i-1', zoneId: 'z-a' }), /Instance i-1 already has a held placement claim/);

    const committed = await placement.commit(claim.id);
    assert.equal(committed.fromHostId, 'a1');
    const shown = await showInstance(database, 'i-1');
    assert.equal(shown.hostId, 'a2');
    assert.equal(shown.numaNode, claim.numaNode);
    assert.deepEqual(await usedVcpus(database, 'a1'), [0, 0]);
    assert.equal((await usedVcpus(database, 'a2')).reduce((a, b) => a + b), 2);
    await assert.rejects(placement.release(claim.id), /is committed/);
    await assert.rejects(placement.commit(claim.id), /only a held claim can be committed/);

    const back = await placement.claim({ instanceId: 'i-1', zoneId: 'z-a' });
    assert.equal(back.hostId, 'a1');
    assert.equal((await placement.release(back.id)).state, 'released');
    assert.equal((await placement.release(back.id)).state, 'released', 'release is idempotent');
    assert.deepEqual(await usedVcpus(database, 'a1'), [0, 0]);
    const fleetView = await showFleet(database);
    assert.equal(fleetView.heldClaims, 0);
  });

  it('held claims expire and come back', async () => {
    const clock = new ManualClock();
    const { database, placement, alice } = await setup(clock);
    const claim = await placement.claim({ accountId: alice, instanceTypeId: 'ecs.g7.2xlarge', zoneId: 'z-b', ttlMs: 60_000 });
    assert.equal((await usedVcpus(database, 'b1')).reduce((a, b) => a + b), 10);
    assert.deepEqual(await placement.releaseExpired(), []);
    clock.advance(60_001);
    assert.deepEqual((await placement.releaseExpired()).map((c) => c.id), [claim.id]);
    assert.equal((await usedVcpus(database, 'b1')).reduce((a, b) => a + b), 2);
  });

  it('a stale index in another process is corrected by the database, never overcommitting', async () => {
    const url = await ctx.newDatabaseUrl();
    const first = await openDatabase({ url });
    const second = await openDatabase({ url });
    try {
      await applyFleet(first, new SimComputeDriver({ dataDir: tempDir() }), fleet);
      const alice = await accountId(first, 'alice');
      const p1 = await Placement.load(first);
      const p2 = await Placement.load(second);
      // b1: node 0 has 14 vCPUs free (i-2 sits there), node 1 has 16: room for two 12 vCPU claims.
      const req = { accountId: alice, instanceTypeId: 'ecs.g7.3xlarge', zoneId: 'z-b' } as const;
      const firstClaim = await p1.claim(req);
      assert.equal(firstClaim.numaNode, 1);
      // p2 still sees node 1 empty: the database refuses, p2 reloads b1 and takes node 0.
      const secondClaim = await p2.claim(req);
      assert.equal(secondClaim.numaNode, 0);
      assert.equal(p2.stats.conflicts, 1);
      // Now p1 is the stale one.
      await assert.rejects(p1.claim(req), NoValidHostError);
      assert.equal(p1.stats.conflicts, 1);
      await assert.rejects(p2.claim(req), NoValidHostError);
      const nodes = (await showFleet(first)).regions.flatMap((r) => r.zones.flatMap((z) => z.hosts)).find((h) => h.id === 'b1')?.numa ?? [];
      for (const node of nodes) assert.ok(node.usedVcpus <= node.vcpus && node.usedMemoryGiB <= node.memoryGiB);
      assert.equal(nodes.reduce((s, n) => s + n.usedVcpus, 0), 26);
    } finally {
      await first.close();
      await second.close();
    }
  });
});
