import assert from 'node:assert/strict';
import { existsSync, openSync, readSync, statSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { isAppError } from '../src/core/errors.ts';
import { FleetRefusedError, applyFleet } from '../src/fleet/apply-fleet.ts';
import { demoFleet } from '../src/fleet/demo-fleet.ts';
import { type FleetSpec, FleetValidationError, parseFleetYaml } from '../src/fleet/fleet-spec.ts';
import { setHostState } from '../src/fleet/set-host-state.ts';
import { showFleet, showInstance } from '../src/fleet/show-fleet.ts';
import { SimComputeDriver } from '../src/fleet/sim-driver.ts';
import type { Database } from '../src/store/database.ts';
import { forEachDialect, tempDir } from './support/dialects.ts';

const gib = 1024 ** 3;

/** The DESIGN.md fleet plus a second instance with a data disk, small enough to apply fast. */
function baseFleet(): FleetSpec {
  const spec = structuredClone(demoFleet);
  spec.instanceTypes?.push({ id: 'ecs.g7.4xlarge', family: 'ecs.g7', vcpus: 16, memoryGiB: 64 });
  spec.instances?.push({
    id: 'i-2',
    host: 'host-h1',
    type: 'ecs.g7.4xlarge',
    vswitch: 'vsw-h1',
    status: 'Stopped',
    disks: [
      { id: 'd-2', kind: 'system', category: 'cloud_essd', performanceLevel: 'PL0', sizeGiB: 1, fillMiB: 2 },
      { id: 'd-3', kind: 'data', category: 'cloud_efficiency', sizeGiB: 2 },
    ],
  });
  return spec;
}

async function expectFailure<T extends Error>(work: Promise<unknown>, type: new (...args: never[]) => T): Promise<T> {
  try {
    await work;
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${type.name}`);
}

forEachDialect('fleet apply', (ctx) => {
  async function setup(): Promise<{ database: Database; driver: SimComputeDriver; dataDir: string }> {
    const dataDir = tempDir('ferry-fleet-');
    return { database: await ctx.open(), driver: new SimComputeDriver({ dataDir }), dataDir };
  }

  it('applies the DESIGN.md fleet: every kind created, sparse seeded disks, instance show fields', async () => {
    const { database, driver, dataDir } = await setup();
    const result = await applyFleet(database, driver, baseFleet());
    assert.deepEqual(result.created, {
      accounts: ['default'],
      regions: ['cn-hangzhou'],
      zones: ['cn-hangzhou-h'],
      vswitches: ['vsw-h1'],
      hosts: ['host-h1', 'host-h2'],
      instanceTypes: ['ecs.g7.large', 'ecs.g7.4xlarge'],
      instances: ['i-1', 'i-2'],
      disks: ['d-1', 'd-2', 'd-3'],
    });
    assert.equal(result.counts.updated + result.counts.unchanged, 0);
    assert.deepEqual(result.backingFilesCreated, ['d-1', 'd-2', 'd-3']);

    const shown = await showInstance(database, 'i-1');
    assert.equal(shown.hostId, 'host-h1');
    assert.equal(shown.zoneId, 'cn-hangzhou-h');
    assert.equal(shown.regionId, 'cn-hangzhou');
    assert.equal(shown.dedicatedHostId, null);
    assert.equal(shown.status, 'Running');
    assert.equal(shown.instanceType, 'ecs.g7.large');
    assert.equal(shown.accountName, 'default');
    const path = join(dataDir, 'pools', 'host-h1', 'd-1.img');
    assert.deepEqual(
      shown.disks.map(({ id, kind, category, performanceLevel, sizeGiB, path: p }) => ({ id, kind, category, performanceLevel, sizeGiB, path: p })),
      [{ id: 'd-1', kind: 'system', category: 'cloud_essd', performanceLevel: 'PL1', sizeGiB: 20, path }],
    );
    const info = statSync(path);
    assert.equal(info.size, 20 * gib);
    assert.ok(info.blocks * 512 < 80 * 1024 ** 2, `d-1 should hold about 64 MiB, has ${info.blocks * 512} bytes allocated`);
    assert.equal((await showInstance(database, 'i-2')).disks[1]?.performanceLevel, 'PL1', 'performanceLevel defaults to PL1');

    const fleet = await showFleet(database);
    const h1 = fleet.regions[0]?.zones[0]?.hosts.find((h) => h.id === 'host-h1');
    assert.deepEqual(h1?.numa.map((n) => n.vcpus), [32, 32]);
    assert.equal(h1?.numa.reduce((s, n) => s + n.usedVcpus, 0), 18, 'a stopped instance keeps its slot');
    const h2 = fleet.regions[0]?.zones[0]?.hosts.find((h) => h.id === 'host-h2');
    assert.equal(h2?.dedicatedHostId, 'dh-1');
    assert.equal(h2?.account, 'default');
    const account = await database.db.selectFrom('accounts').selectAll().where('name', '=', 'default').executeTakeFirstOrThrow();
    assert.match(account.project_id, /^[0-9a-f]{32}$/);
    assert.equal(shown.accountId, account.id);
  });

  it('is idempotent: a second apply changes nothing and does not rewrite any disk', async () => {
    const { database, driver, dataDir } = await setup();
    await applyFleet(database, driver, baseFleet());
    const path = join(dataDir, 'pools', 'host-h1', 'd-1.img');
    // A guest wrote to its disk since: a re-apply must keep that.
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('guest data'), 0, 10, 5 * gib);
    closeSync(fd);
    const before = statSync(path);
    const fleetBefore = await showFleet(database);

    const again = await applyFleet(database, driver, baseFleet());
    assert.equal(again.counts.created, 0);
    assert.equal(again.counts.updated, 0);
    assert.equal(again.counts.unchanged, 13);
    assert.deepEqual(again.unchanged.instances, ['i-1', 'i-2']);
    assert.deepEqual(again.backingFilesCreated, []);
    const after = statSync(path);
    assert.equal(after.ino, before.ino);
    assert.equal(after.mtimeMs, before.mtimeMs);
    const check = Buffer.alloc(10);
    const rfd = openSync(path, 'r');
    readSync(rfd, check, 0, 10, 5 * gib);
    closeSync(rfd);
    assert.equal(check.toString(), 'guest data');
    assert.deepEqual(await showFleet(database), fleetBefore);
  });

  it('reports exactly what a changed file updates and creates', async () => {
    const { database, driver } = await setup();
    await applyFleet(database, driver, baseFleet());
    const spec = baseFleet();
    const zone = spec.regions?.[0]?.zones?.[0];
    const h1 = zone?.hosts?.[0];
    assert.ok(h1 !== undefined && zone !== undefined);
    h1.memoryGiB = 512;
    zone.hosts?.push({ id: 'host-h3', vcpus: 16, memoryGiB: 64, numaNodes: 1, state: 'Maintenance' });
    const i1 = spec.instances?.[0];
    assert.ok(i1 !== undefined);
    i1.status = 'Stopped';
    const d1 = i1.disks?.[0];
    assert.ok(d1 !== undefined);
    d1.performanceLevel = 'PL2';
    spec.instances?.push({ id: 'i-3', account: 'team-b', host: 'host-h3', type: 'ecs.g7.large', vswitch: 'vsw-h1' });

    const result = await applyFleet(database, driver, spec);
    assert.deepEqual(result.updated.hosts, ['host-h1']);
    assert.deepEqual(result.created.hosts, ['host-h3']);
    assert.deepEqual(result.updated.instances, ['i-1']);
    assert.deepEqual(result.created.instances, ['i-3']);
    assert.deepEqual(result.updated.disks, ['d-1']);
    assert.deepEqual(result.created.accounts, ['team-b']);
    assert.deepEqual(result.unchanged.instanceTypes, ['ecs.g7.large', 'ecs.g7.4xlarge']);
    const i3 = await showInstance(database, 'i-3');
    assert.equal(i3.status, 'Running');
    assert.equal(i3.accountName, 'team-b');
    assert.equal((await showInstance(database, 'i-1')).disks[0]?.performanceLevel, 'PL2');
    const host3 = (await showFleet(database)).regions[0]?.zones[0]?.hosts.find((h) => h.id === 'host-h3');
    assert.equal(host3?.state, 'Maintenance');

    // A file that leaves a known host's state out keeps the state operators set since.
    await setHostState(database, 'host-h1', 'Failed');
    const kept = await applyFleet(database, driver, spec);
    assert.equal(kept.counts.updated, 0);
    assert.equal((await showFleet(database)).regions[0]?.zones[0]?.hosts.find((h) => h.id === 'host-h1')?.state, 'Failed');
  });

  it('refuses a file that would leave an instance without room, changing nothing', async () => {
    const { database, driver, dataDir } = await setup();
    await applyFleet(database, driver, baseFleet());
    const before = await showFleet(database);
    const spec = baseFleet();
    const h1 = spec.regions?.[0]?.zones?.[0]?.hosts?.[0];
    assert.ok(h1 !== undefined);
    // 16 vCPU over 2 nodes: 8 per node, too small for i-2's 16 vCPUs.
    h1.vcpus = 16;
    spec.instances?.push({
      id: 'i-new',
      host: 'host-h1',
      type: 'ecs.g7.large',
      vswitch: 'vsw-h1',
      disks: [{ id: 'd-new', kind: 'system', category: 'cloud_ssd', sizeGiB: 1, fillMiB: 1 }],
    });
    const err = await expectFailure(applyFleet(database, driver, spec), FleetRefusedError);
    assert.equal(err.code, 'Conflict');
    assert.equal(err.occupantId, 'i-2');
    assert.match(err.message, /nothing was changed: instance i-2 \(instances\[1\]; Stopped, 16 vCPU \+ 64 GiB\) would not fit on host host-h1/);
    assert.deepEqual(await showFleet(database), before);
    assert.equal(existsSync(join(dataDir, 'pools', 'host-h1', 'd-new.img')), false, 'a refused file creates no disk');
  });

  it('refuses an instance that fits the host in total but no single NUMA node', async () => {
    const { database, driver } = await setup();
    const spec = baseFleet();
    spec.instanceTypes?.push({ id: 'ecs.g7.16xlarge', family: 'ecs.g7', vcpus: 40, memoryGiB: 160 });
    spec.instances?.push({ id: 'i-big', host: 'host-h1', type: 'ecs.g7.16xlarge', vswitch: 'vsw-h1' });
    const err = await expectFailure(applyFleet(database, driver, spec), FleetRefusedError);
    assert.match(err.message, /instance i-big \(instances\[2\]; Running, 40 vCPU/);
    assert.match(err.message, /2 NUMA nodes of 32 vCPU \+ 128 GiB/);
    assert.equal((await showFleet(database)).regions.length, 0, 'the first apply of a refused file leaves an empty fleet');
  });

  it('names the place in the file of every invalid or unknown reference', async () => {
    const { database, driver } = await setup();
    const spec = baseFleet();
    const [i1, i2] = spec.instances ?? [];
    assert.ok(i1 !== undefined && i2 !== undefined);
    i2.host = 'host-x';
    i2.type = 'ecs.nope';
    spec.instances?.push({ id: 'i-deh', account: 'someone-else', host: 'host-h2', type: 'ecs.g7.large', vswitch: 'vsw-h1' });
    const err = await expectFailure(applyFleet(database, driver, spec), FleetValidationError);
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['instances[1].host', 'instances[1].type', 'instances[2].account'],
    );
    assert.match(err.message, /instances\[1\]\.host: unknown host host-x/);
    assert.match(err.message, /instances\[2\]\.account: host host-h2 is dedicated host dh-1 of another account/);
    assert.equal((await database.db.selectFrom('accounts').selectAll().execute()).length, 0, 'accounts of a rejected file are not created');

    const shape = await expectFailure(
      applyFleet(database, driver, {
        regions: [{ id: 'r', zones: [{ id: 'z', hosts: [{ id: 'h', vcpus: 0, memoryGiB: 1, numaNodes: 1, cores: 3 }] }] }],
        instances: [{ id: 'i', host: 'h', type: 't', vswitch: 'v', status: 'Paused' }, { id: 'i', host: 'h', type: 't', vswitch: 'v' }],
      }),
      FleetValidationError,
    );
    assert.deepEqual(shape.issues.map((i) => `${i.path}: ${i.message}`).sort(), [
      'instances[0].status: must be one of Running, Stopped, not "Paused"',
      'regions[0].zones[0].hosts[0].cores: is not a field of the fleet file here (a typo?)',
      'regions[0].zones[0].hosts[0].vcpus: must be >= 1, not 0',
    ]);
    const dup = await expectFailure(applyFleet(database, driver, parseFleetYaml('instances:\n  - {id: a, host: h, type: t, vswitch: v}\n  - {id: a, host: h, type: t, vswitch: v}\n')), FleetValidationError);
    assert.match(dup.message, /instances\[1\]\.id: duplicate instance id a \(first at instances\[0\]\.id\)/);
    assert.throws(() => parseFleetYaml('regions: [\n'), (e: unknown) => isAppError(e) && /line \d+/.test(e.message));
  });

  it('refuses to move an instance a migration moved, and to change a disk size', async () => {
    const { database, driver } = await setup();
    await applyFleet(database, driver, baseFleet());
    await database.db.updateTable('instances').set({ host_id: 'host-h2' }).where('id', '=', 'i-1').execute();
    const spec = baseFleet();
    const d2 = spec.instances?.[1]?.disks?.[0];
    assert.ok(d2 !== undefined);
    d2.sizeGiB = 5;
    const err = await expectFailure(applyFleet(database, driver, spec), FleetValidationError);
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['instances[0].host', 'instances[1].disks[0].sizeGiB'],
    );
    assert.match(err.message, /instance i-1 lives on host host-h2 now .*write host: host-h2/);
  });

  it('sets host states and refuses unknown ones', async () => {
    const { database, driver } = await setup();
    await applyFleet(database, driver, baseFleet());
    assert.deepEqual(await setHostState(database, 'host-h1', 'Maintenance'), { hostId: 'host-h1', previous: 'Available', state: 'Maintenance' });
    await assert.rejects(setHostState(database, 'host-h1', 'Broken'), /use one of Available, Maintenance, Failed, Offline/);
    await assert.rejects(setHostState(database, 'host-zz', 'Failed'), /host host-zz does not exist/);
  });
});
