import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { applyFleet } from '../src/fleet/apply-fleet.ts';
import { coldMoveInstance, rollbackColdMove } from '../src/fleet/cold-move.ts';
import { ComputeDriverError, type DiskLocation } from '../src/fleet/compute-driver.ts';
import type { FleetSpec } from '../src/fleet/fleet-spec.ts';
import { Placement } from '../src/fleet/placement/placement.ts';
import { showFleet, showInstance } from '../src/fleet/show-fleet.ts';
import { SimComputeDriver, createSimFaults } from '../src/fleet/sim-driver.ts';
import { contentDigest } from '../src/fleet/sparse-file.ts';
import type { Database } from '../src/store/database.ts';
import { forEachDialect, tempDir } from './support/dialects.ts';
import { sha256File } from './support/moves.ts';

const mib = 1024 ** 2;
const gib = 1024 ** 3;
const signal = new AbortController().signal;

function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}

/** Every file of `diskId` in any pool: finished copies, partial ones and checkpoints. */
function diskFiles(dataDir: string, diskId: string): string[] {
  const pools = join(dataDir, 'pools');
  if (!existsSync(pools)) return [];
  return readdirSync(pools).flatMap((host) =>
    readdirSync(join(pools, host))
      .filter((name) => name.startsWith(`${diskId}.`))
      .map((name) => `${host}/${name}`),
  ).sort();
}

async function expectDriverError(work: Promise<unknown>, failure: ComputeDriverError['failure']): Promise<ComputeDriverError> {
  const err = await work.then(
    () => assert.fail(`expected a ${failure} failure`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ComputeDriverError, `expected ComputeDriverError, got ${String(err)}`);
  assert.equal(err.failure, failure);
  return err;
}

void describe('sim compute driver disks', () => {
  it('creates sparse, seeded disks: same id, same bytes; an existing file is never rewritten', async () => {
    const a = new SimComputeDriver({ dataDir: tempDir() });
    const b = new SimComputeDriver({ dataDir: tempDir() });
    const spec = { sizeBytes: 256 * mib, fillBytes: 8 * mib };
    const made = await a.createDisk({ diskId: 'd-seed', hostId: 'h1', ...spec }, signal);
    assert.equal(made.created, true);
    const other = await b.createDisk({ diskId: 'd-seed', hostId: 'h9', ...spec }, signal);
    assert.equal(await contentDigest(made.path), await contentDigest(other.path));
    const third = await a.createDisk({ diskId: 'd-other', hostId: 'h1', ...spec }, signal);
    assert.notEqual(await contentDigest(made.path), await contentDigest(third.path));
    assert.equal(statSync(made.path).size, 256 * mib);
    assert.ok(allocatedBytes(made.path) < 12 * mib);
    const mtime = statSync(made.path).mtimeMs;
    assert.deepEqual(await a.createDisk({ diskId: 'd-seed', hostId: 'h1', ...spec }, signal), { path: made.path, created: false });
    assert.equal(statSync(made.path).mtimeMs, mtime);
  });

  it('copies a 20 GiB sparse disk holding 64 MiB: same content, target stays sparse, progress reaches the end', async () => {
    const driver = new SimComputeDriver({ dataDir: tempDir() });
    const source = await driver.createDisk({ diskId: 'd-big', hostId: 'h1', sizeBytes: 20 * gib, fillBytes: 64 * mib }, signal);
    const before = await contentDigest(source.path);
    const progress: number[] = [];
    const copy = await driver.copyDiskToHost(
      { source: { diskId: 'd-big', hostId: 'h1', path: source.path }, targetHostId: 'h2', onProgress: (p) => progress.push(p.doneBytes) },
      signal,
    );
    assert.equal(copy.target.path, driver.diskPath('h2', 'd-big'));
    assert.equal(statSync(copy.target.path).size, 20 * gib);
    assert.equal(await contentDigest(copy.target.path), before);
    assert.equal(copy.digest, before);
    assert.equal(copy.copiedBytes, 64 * mib, 'only the data is written');
    assert.ok(allocatedBytes(copy.target.path) < 80 * mib, `target allocates ${allocatedBytes(copy.target.path)} bytes`);
    assert.deepEqual([...progress].sort((x, y) => x - y), progress, 'progress only moves forward');
    assert.equal(progress.at(-1), 20 * gib);
    assert.equal(await contentDigest(source.path), before, 'the source is untouched');
  });

  it('keeps the full-file sha256 of a smaller disk across a copy', async () => {
    const driver = new SimComputeDriver({ dataDir: tempDir(), chunkBytes: mib });
    const source = await driver.createDisk({ diskId: 'd-sha', hostId: 'h1', sizeBytes: 64 * mib, fillBytes: 16 * mib }, signal);
    const copy = await driver.copyDiskToHost({ source: { diskId: 'd-sha', hostId: 'h1', path: source.path }, targetHostId: 'h2' }, signal);
    assert.equal(await sha256File(copy.target.path), await sha256File(source.path));
  });

  it('a copy cut off at chunk N resumes from its checkpoint, not from the start', async () => {
    const faults = createSimFaults();
    const driver = new SimComputeDriver({ dataDir: tempDir(), faults, checkpointEveryChunks: 4 });
    const source = await driver.createDisk({ diskId: 'd-cut', hostId: 'h1', sizeBytes: gib, fillBytes: 16 * mib }, signal);
    const from: DiskLocation = { diskId: 'd-cut', hostId: 'h1', path: source.path };
    faults.interruptCopyAfterChunks = 10;
    const cut = await expectDriverError(driver.copyDiskToHost({ source: from, targetHostId: 'h2' }, signal), 'interrupted');
    assert.equal(cut.retryable, true);
    assert.equal(existsSync(driver.diskPath('h2', 'd-cut')), false, 'no half copy at the final path');
    const resumed = await driver.copyDiskToHost({ source: from, targetHostId: 'h2' }, signal);
    assert.ok(resumed.resumedAtChunk > 0, 'resumed from the checkpoint');
    assert.equal(resumed.chunksWritten, 16 - 8, 'the 8 checkpointed chunks are not written again');
    assert.equal(await contentDigest(resumed.target.path), await contentDigest(source.path));
    assert.deepEqual(readdirSync(driver.poolDir('h2')), ['d-cut.img']);
  });

  it('fails cleanly on a full pool and on a failed host', async () => {
    const faults = createSimFaults();
    const driver = new SimComputeDriver({ dataDir: tempDir(), faults });
    const source = await driver.createDisk({ diskId: 'd-f', hostId: 'h1', sizeBytes: 256 * mib, fillBytes: 8 * mib }, signal);
    const from: DiskLocation = { diskId: 'd-f', hostId: 'h1', path: source.path };
    faults.fullPools.add('h2');
    const full = await expectDriverError(driver.copyDiskToHost({ source: from, targetHostId: 'h2' }, signal), 'pool-full');
    assert.match(full.message, /storage pool of h2 is full \(ENOSPC\)/);
    assert.equal((full.cause as NodeJS.ErrnoException).code, 'ENOSPC');
    await expectDriverError(driver.createDisk({ diskId: 'd-g', hostId: 'h2', sizeBytes: gib, fillBytes: 0 }, signal), 'pool-full');
    faults.failedHosts.add('h3');
    await expectDriverError(driver.copyDiskToHost({ source: from, targetHostId: 'h3' }, signal), 'host-unreachable');
    await expectDriverError(driver.start({ instanceId: 'i', hostId: 'h3', diskPaths: [] }, signal), 'host-unreachable');
    await expectDriverError(driver.start({ instanceId: 'i', hostId: 'h1', diskPaths: ['/nonexistent/disk.img'] }, signal), 'disk-missing');
    await driver.start({ instanceId: 'i', hostId: 'h1', diskPaths: [source.path] }, signal);
    assert.equal(driver.instance('i')?.power, 'running');
  });
});

function moveFleet(systemDiskGiB: number, fillMiB: number): FleetSpec {
  return {
    regions: [
      {
        id: 'r1',
        zones: [
          {
            id: 'z1',
            vswitches: [{ id: 'vsw-1', vpcId: 'vpc-1', cidr: '10.0.0.0/24' }],
            hosts: [
              { id: 'src', vcpus: 16, memoryGiB: 64, numaNodes: 2 },
              { id: 'dst', vcpus: 16, memoryGiB: 64, numaNodes: 2 },
            ],
          },
        ],
      },
    ],
    instanceTypes: [{ id: 'ecs.g7.large', family: 'ecs.g7', vcpus: 2, memoryGiB: 8 }],
    instances: [
      {
        id: 'i-m',
        host: 'src',
        type: 'ecs.g7.large',
        vswitch: 'vsw-1',
        status: 'Stopped',
        disks: [
          { id: 'd-sys', kind: 'system', category: 'cloud_essd', sizeGiB: systemDiskGiB, fillMiB },
          { id: 'd-data', kind: 'data', category: 'cloud_ssd', sizeGiB: 1, fillMiB: 4 },
        ],
      },
      { id: 'i-run', host: 'src', type: 'ecs.g7.large', vswitch: 'vsw-1', status: 'Running' },
    ],
  };
}

forEachDialect('fleet cold move', (ctx) => {
  async function setup(systemDiskGiB = 1, fillMiB = 8): Promise<{ database: Database; driver: SimComputeDriver; dataDir: string; placement: Placement; digests: Map<string, string> }> {
    const dataDir = tempDir('ferry-move-');
    const database = await ctx.open();
    const driver = new SimComputeDriver({ dataDir, faults: createSimFaults(), checkpointEveryChunks: 2 });
    await applyFleet(database, driver, moveFleet(systemDiskGiB, fillMiB));
    const digests = new Map<string, string>();
    for (const disk of (await showInstance(database, 'i-m')).disks) digests.set(disk.id, await contentDigest(disk.path));
    return { database, driver, dataDir, placement: await Placement.load(database), digests };
  }

  /** The instance has exactly one finished copy of each disk, where the database says, with its original content. */
  async function assertOneValidDiskEach(database: Database, dataDir: string, digests: Map<string, string>, hostId: string): Promise<void> {
    const shown = await showInstance(database, 'i-m');
    assert.equal(shown.hostId, hostId);
    assert.equal(shown.status, 'Stopped');
    for (const disk of shown.disks) {
      assert.deepEqual(diskFiles(dataDir, disk.id), [`${hostId}/${disk.id}.img`]);
      assert.equal(disk.hostId, hostId);
      assert.equal(await contentDigest(disk.path), digests.get(disk.id));
    }
  }

  it('moves a stopped instance: verified sparse copies, database switched, sources deleted', async () => {
    const { database, driver, dataDir, placement, digests } = await setup(2, 16);
    const claim = await placement.claim({ instanceId: 'i-m' });
    assert.equal(claim.hostId, 'dst');
    const seen: string[] = [];
    const result = await coldMoveInstance(database, driver, claim.id, { signal, onProgress: (p) => seen.push(`${p.diskIndex}/${p.diskCount}`) });
    assert.equal(result.fromHostId, 'src');
    assert.equal(result.toHostId, 'dst');
    assert.deepEqual(result.leftoverPaths, []);
    assert.deepEqual(new Set(seen), new Set(['0/2', '1/2']));
    await assertOneValidDiskEach(database, dataDir, digests, 'dst');
    const sys = (await showInstance(database, 'i-m')).disks[0];
    assert.ok(sys !== undefined && allocatedBytes(sys.path) < 20 * mib, 'the moved 2 GiB disk stays sparse');
    const hosts = (await showFleet(database)).regions[0]?.zones[0]?.hosts ?? [];
    assert.deepEqual(hosts.map((h) => [h.id, h.numa.reduce((s, n) => s + n.usedVcpus, 0)]), [['dst', 2], ['src', 2]]);
    await driver.start({ instanceId: 'i-m', hostId: 'dst', diskPaths: (await showInstance(database, 'i-m')).disks.map((d) => d.path) }, signal);
  });

  it('an interrupted move rolled back leaves exactly one valid disk, on the source', async () => {
    const { database, driver, dataDir, placement, digests } = await setup();
    const claim = await placement.claim({ instanceId: 'i-m' });
    driver.faults.interruptCopyAfterChunks = 3;
    await expectDriverError(coldMoveInstance(database, driver, claim.id, { signal }), 'interrupted');
    assert.equal((await showInstance(database, 'i-m')).status, 'Migrating');
    await assert.rejects(placement.claim({ instanceId: 'i-m' }), /already has a held placement claim/);
    assert.deepEqual(await rollbackColdMove(database, driver, claim.id, { signal }), { leftoverPaths: [] });
    await assertOneValidDiskEach(database, dataDir, digests, 'src');
    const hosts = (await showFleet(database)).regions[0]?.zones[0]?.hosts ?? [];
    assert.deepEqual(hosts.map((h) => [h.id, h.numa.reduce((s, n) => s + n.usedVcpus, 0)]), [['dst', 0], ['src', 4]]);
  });

  it('an interrupted move run again resumes and leaves exactly one valid disk, on the target', async () => {
    const { database, driver, dataDir, placement, digests } = await setup();
    const claim = await placement.claim({ instanceId: 'i-m' });
    driver.faults.interruptCopyAfterChunks = 3;
    await expectDriverError(coldMoveInstance(database, driver, claim.id, { signal }), 'interrupted');
    assert.ok(diskFiles(dataDir, 'd-sys').includes('dst/d-sys.img.partial'), 'the partial copy waits for the retry');
    const result = await coldMoveInstance(database, driver, claim.id, { signal });
    assert.ok((result.disks[0]?.resumedAtChunk ?? 0) > 0, 'the system disk resumed from its checkpoint');
    await assertOneValidDiskEach(database, dataDir, digests, 'dst');
  });

  it('a target host failing mid-copy leaves the instance on its source disks', async () => {
    const { database, driver, dataDir, placement, digests } = await setup();
    const claim = await placement.claim({ instanceId: 'i-m' });
    const onProgress = (): void => {
      driver.faults.failedHosts.add('dst');
    };
    await expectDriverError(coldMoveInstance(database, driver, claim.id, { signal, onProgress }), 'host-unreachable');
    const { leftoverPaths } = await rollbackColdMove(database, driver, claim.id, { signal });
    assert.deepEqual(leftoverPaths, [driver.diskPath('dst', 'd-sys'), driver.diskPath('dst', 'd-data')]);
    const shown = await showInstance(database, 'i-m');
    assert.equal(shown.hostId, 'src');
    for (const disk of shown.disks) {
      assert.ok(diskFiles(dataDir, disk.id).includes(`src/${disk.id}.img`));
      assert.ok(!diskFiles(dataDir, disk.id).includes(`dst/${disk.id}.img`), 'no finished copy on the failed host');
      assert.equal(await contentDigest(disk.path), digests.get(disk.id));
    }
  });

  it('refuses what would part an instance from its disks: moving it running, committing before the copy', async () => {
    const { database, driver, placement } = await setup();
    const claim = await placement.claim({ instanceId: 'i-run' });
    await assert.rejects(coldMoveInstance(database, driver, claim.id, { signal }), /Instance i-run is Running; a cold move needs it Stopped/);
    await placement.release(claim.id);
    const early = await placement.claim({ instanceId: 'i-m' });
    await assert.rejects(placement.commit(early.id), /Instance i-m still has disks (d-sys, d-data|d-data, d-sys) outside dst's pool; move it with a cold move/);
    assert.equal((await showInstance(database, 'i-m')).hostId, 'src');
  });
});
