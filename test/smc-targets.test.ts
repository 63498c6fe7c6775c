/**
 * SMC replication jobs that end somewhere other than an ECS image, end to end with real processes:
 * TargetType ContainerImage pushes the source's file tree as an OCI image to a real Docker Registry
 * (Debian's docker-registry), which skopeo and umoci then read back; TargetType TargetInstance
 * writes the source's disks over a fleet instance's disks through the sim compute driver.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { type Stats, chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync, writeSync, closeSync, ftruncateSync, createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type FerryWithKey, type PopClient, ferryCli, isSdkError, popClient, startFerryWithKey } from './support/api.ts';
import { applyServerFleet, openServerDatabase } from './support/moves.ts';
import { type RegistryProcess, runTool, startRegistry } from './support/registry.ts';
import { type AgentProcess, jobReaches, makeDisk, startAgent } from './support/smc.ts';

const mib = 1024 * 1024;
const gib = 1024 * mib;

interface TreeEntry {
  readonly type: 'file' | 'dir' | 'symlink';
  readonly mode: number;
  readonly sha256?: string;
  readonly linkTarget?: string;
  readonly mtimeSec?: number;
  readonly inode?: number;
}

/** Every entry under `root` by relative path: type, permission bits, content hash, link target, file mtime. */
function describeTree(root: string): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const visit = (dir: string, prefix: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const rel = prefix === '' ? name : `${prefix}/${name}`;
      const stats: Stats = lstatSync(path);
      const mode = stats.mode & 0o7777;
      if (stats.isDirectory()) {
        out.set(rel, { type: 'dir', mode });
        visit(path, rel);
      } else if (stats.isSymbolicLink()) out.set(rel, { type: 'symlink', mode: 0, linkTarget: readlinkSync(path) });
      else out.set(rel, { type: 'file', mode, sha256: createHash('sha256').update(readFileSync(path)).digest('hex'), mtimeSec: Math.floor(stats.mtimeMs / 1000), inode: stats.ino });
    }
  };
  visit(root, '');
  return out;
}

/** A source root with what images are made of: modes, a setgid dir, symlinks, a hard link, long and UTF-8 names, a multi-part file. */
function makeSourceTree(root: string): void {
  const file = (rel: string, content: string | Buffer, mode: number): void => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), content);
    chmodSync(join(root, rel), mode);
  };
  file('etc/os-release', 'PRETTY_NAME="Ferry Test Linux 1"\nID=ferrytest\n', 0o644);
  file('etc/shadow', 'root:*:19000:0:99999:7:::\n', 0o600);
  file('usr/bin/hello', '#!/bin/sh\necho hello from the migrated server\n', 0o755);
  file('usr/lib/big.bin', randomBytes(3 * mib + 123), 0o644);
  file('var/empty-file', '', 0o640);
  file(`deep/${'d'.repeat(70)}/${'f'.repeat(70)}.txt`, 'a path longer than ustar holds\n', 0o644);
  file('srv/ünïcode-名前.txt', 'utf-8 name\n', 0o644);
  linkSync(join(root, 'usr/bin/hello'), join(root, 'usr/bin/hello-again'));
  symlinkSync('usr/bin', join(root, 'bin'));
  symlinkSync('/etc/os-release', join(root, 'usr/lib/os-release'));
  mkdirSync(join(root, 'private'));
  file('private/key', 'secret\n', 0o600);
  chmodSync(join(root, 'private'), 0o700);
  mkdirSync(join(root, 'srv/shared'));
  chmodSync(join(root, 'srv/shared'), 0o2775);
  utimesSync(join(root, 'etc/os-release'), new Date('2021-03-04T05:06:07Z'), new Date('2021-03-04T05:06:07Z'));
}

/** A sparse disk of `sizeBytes` with 1 MiB of random data at each of `dataAtMiB`. */
function makeSparseDisk(path: string, sizeBytes: number, dataAtMiB: readonly number[]): string {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, sizeBytes);
  for (const at of dataAtMiB) writeSync(fd, randomBytes(mib), 0, mib, at * mib);
  closeSync(fd);
  return path;
}

/** SHA-256 of a file followed by zeros up to `sizeBytes`: what a disk holds once that file is written onto it. */
async function sha256Padded(path: string, sizeBytes: number): Promise<string> {
  const hash = createHash('sha256');
  let done = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * mib })) {
    hash.update(chunk as Buffer);
    done += (chunk as Buffer).length;
  }
  const zeros = Buffer.alloc(4 * mib);
  for (; done < sizeBytes; done += Math.min(zeros.length, sizeBytes - done)) hash.update(zeros.subarray(0, Math.min(zeros.length, sizeBytes - done)));
  return hash.digest('hex');
}

describe('SMC ContainerImage and TargetInstance targets', () => {
  let registry: RegistryProcess;
  let ferry: FerryWithKey;
  let client: PopClient;
  let dir: string;
  let root: string;
  let treeAgent: AgentProcess;
  const agents: AgentProcess[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-targets-'));
    root = join(dir, 'root');
    mkdirSync(root);
    makeSourceTree(root);
    registry = await startRegistry();
    ferry = await startFerryWithKey({ env: { FERRY_AGENT_HEARTBEAT_SECONDS: '2' }, extra: ['--poll-ms', '100', '--registry', registry.url] });
    client = popClient(ferry.server.url, ferry.key);
    // The agent keeps its key under the root it migrates: that must never end up in the image.
    treeAgent = await startAgent(ferry, { name: 'app-server', disks: [makeDisk(dir, 'small.img', mib, 64 * 1024)], root, stateDir: join(root, 'var/lib/ferry-agent') });
    agents.push(treeAgent);
  });
  after(async () => {
    for (const agent of agents) agent.process.kill('SIGKILL');
    await ferry?.close();
    await registry?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function containerJob(name: string, repository: string, tag: string, extra: Record<string, unknown> = {}): Promise<string> {
    const { JobId } = (await client.request('CreateReplicationJob', {
      ...extra,
      RegionId: 'cn-hangzhou',
      SourceId: treeAgent.sourceId,
      Name: name,
      TargetType: 'ContainerImage',
      ContainerNamespace: 'ferry-test',
      ContainerRepository: repository,
      ContainerTag: tag,
      ReplicationParameters: '{"checksum":true}',
    })) as { JobId: string };
    await client.request('StartReplicationJob', { JobId });
    return JobId;
  }

  it('pushes the source file tree as an OCI image that skopeo inspects and umoci unpacks to the same files', async () => {
    const jobId = await containerJob('to-container', 'app', 'v1');
    const done = await jobReaches(client, jobId, 'Finished', undefined, 60_000);
    assert.deepEqual([done.ErrorCode, done.ImageId, done.Progress], ['', '', 100]);
    const reference = `${registry.host}/ferry-test/app:v1`;
    const statusInfo = String(done['StatusInfo']);
    assert.match(statusInfo, new RegExp(`^Pushed ${reference.replace(/[.]/g, '\\.')}@sha256:[0-9a-f]{64}$`));

    const inspected = JSON.parse(await runTool('skopeo', ['inspect', '--tls-verify=false', `docker://${reference}`])) as Record<string, unknown>;
    assert.equal(inspected['Digest'], statusInfo.split('@')[1], 'the digest Ferry reports is the one the registry serves');
    assert.deepEqual([inspected['Architecture'], inspected['Os'], (inspected['Layers'] as unknown[]).length], [process.arch === 'arm64' ? 'arm64' : 'amd64', 'linux', 1]);
    const raw = JSON.parse(await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reference}`])) as { mediaType: string; layers: { mediaType: string }[] };
    assert.deepEqual([raw.mediaType, raw.layers[0]?.mediaType], ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.layer.v1.tar+gzip']);

    const layout = join(dir, 'layout');
    await runTool('skopeo', ['copy', '--src-tls-verify=false', `docker://${reference}`, `oci:${layout}:v1`]);
    const bundle = join(dir, 'bundle');
    await runTool('umoci', ['unpack', '--rootless', '--image', `${layout}:v1`, bundle]);
    const source = describeTree(root);
    for (const path of [...source.keys()]) if (path === 'var/lib/ferry-agent' || path.startsWith('var/lib/ferry-agent/')) source.delete(path);
    const unpacked = describeTree(join(bundle, 'rootfs'));
    const strip = (tree: Map<string, TreeEntry>): Map<string, Omit<TreeEntry, 'inode'>> => new Map([...tree].map(([p, { inode: _inode, ...rest }]) => [p, rest]));
    assert.deepEqual([...unpacked.keys()].sort(), [...source.keys()].sort(), 'the same paths, and not the agent\'s state dir');
    assert.deepEqual(strip(unpacked), strip(source), 'contents, modes, symlinks and file mtimes survive');
    assert.equal(unpacked.get('usr/bin/hello-again')?.inode, unpacked.get('usr/bin/hello')?.inode, 'a hard link stays one file');
    assert.equal(unpacked.get('var/lib')?.type, 'dir');
  });

  it('ends the run InError with ContainerRegistry.Unreachable while the registry is down, and pushes once it is back', async () => {
    await registry.stop();
    const jobId = await containerJob('registry-down', 'app', 'v2');
    const failed = await jobReaches(client, jobId, 'InError', undefined, 60_000);
    assert.equal(failed.ErrorCode, 'ContainerRegistry.Unreachable');
    assert.match(String(failed['StatusInfo']), new RegExp(`${registry.host}.*ECONNREFUSED.*--registry`));
    await registry.restart();
    await client.request('StartReplicationJob', { JobId: jobId });
    const done = await jobReaches(client, jobId, 'Finished', undefined, 60_000);
    assert.match(String(done['StatusInfo']), /^Pushed .*ferry-test\/app:v2@sha256:/);
    const tags = JSON.parse(await runTool('skopeo', ['list-tags', '--tls-verify=false', `docker://${registry.host}/ferry-test/app`])) as { Tags: string[] };
    assert.deepEqual(tags.Tags.sort(), ['v1', 'v2']);
  });

  it('reports ContainerRegistry.PushRefused with the registry\'s reason when it refuses the name', async () => {
    const jobId = await containerJob('refused-name', 'App_Upper', 'v1');
    const failed = await jobReaches(client, jobId, 'InError', undefined, 60_000);
    assert.equal(failed.ErrorCode, 'ContainerRegistry.PushRefused');
    assert.match(String(failed['StatusInfo']), /ferry-test\/App_Upper:v1 \(HTTP 404\): the registry refused to start an upload/);
    // An InError job holds its source; deleted, the source is free for the next job.
    await client.request('DeleteReplicationJob', { JobId: jobId });
  });

  it('runs an incremental ContainerImage job to Waiting with the tag pushed, and a cut-over runs it once more', async () => {
    const jobId = await containerJob('container-sync', 'synced', 'latest', { RunOnce: false, Frequency: 12, MaxNumberOfImageToKeep: 1 });
    const waiting = await jobReaches(client, jobId, 'Waiting', undefined, 60_000);
    const firstDigest = String(waiting['StatusInfo']).split('@')[1];
    writeFileSync(join(root, 'etc/motd'), 'changed after the first run\n');
    await client.request('CutOverReplicationJob', { JobId: jobId, SyncData: true });
    const done = await jobReaches(client, jobId, 'Finished', undefined, 60_000);
    const inspected = JSON.parse(await runTool('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/ferry-test/synced:latest`])) as { Digest: string };
    assert.equal(inspected.Digest, String(done['StatusInfo']).split('@')[1], 'the tag names the last run\'s image');
    assert.notEqual(inspected.Digest, firstDigest, 'which holds the change');
  });

  it('writes the source disks over the target instance\'s disks through the compute driver, and starts it again', async () => {
    const database = await openServerDatabase(ferry);
    try {
      await applyServerFleet(ferry, database, {
        regions: [{ id: 'cn-hangzhou', zones: [{ id: 'cn-hangzhou-h', vswitches: [{ id: 'vsw-t1', vpcId: 'vpc-t', cidr: '192.168.9.0/24' }], hosts: [{ id: 'host-t1', vcpus: 16, memoryGiB: 64, numaNodes: 1 }] }] }],
        instanceTypes: [{ id: 'ecs.g7.large', family: 'ecs.g7', vcpus: 2, memoryGiB: 8 }],
        instances: [
          {
            id: 'i-target',
            account: 'default',
            host: 'host-t1',
            type: 'ecs.g7.large',
            vswitch: 'vsw-t1',
            status: 'Running',
            // Seeded data everywhere the source has none: it must all be gone afterwards.
            disks: [
              { id: 'd-target-sys', kind: 'system', category: 'cloud_essd', performanceLevel: 'PL1', sizeGiB: 1, fillMiB: 16 },
              { id: 'd-target-data', kind: 'data', category: 'cloud_essd', performanceLevel: 'PL1', sizeGiB: 1, fillMiB: 16 },
            ],
          },
        ],
      });
    } finally {
      await database.close();
    }
    const systemDisk = makeSparseDisk(join(dir, 'vm-sys.img'), gib, [0, 300, 1023]);
    const dataDisk = makeSparseDisk(join(dir, 'vm-data.img'), 64 * mib, [5, 60]);
    const vm = await startAgent(ferry, { name: 'vm-server', disks: [systemDisk, dataDisk] });
    agents.push(vm);
    const { JobId } = (await client.request('CreateReplicationJob', {
      RegionId: 'cn-hangzhou',
      SourceId: vm.sourceId,
      TargetType: 'TargetInstance',
      InstanceId: 'i-target',
      DataDisk: [{ Index: 1, Size: 20 }],
      ReplicationParameters: '{"checksum":true}',
    })) as { JobId: string };
    await client.request('StartReplicationJob', { JobId });
    const done = await jobReaches(client, JobId, 'Finished', undefined, 90_000);
    assert.deepEqual([done.ErrorCode, done.ImageId], ['', '']);
    assert.equal(done['StatusInfo'], 'Wrote source disk 0 onto d-target-sys, source disk 1 onto d-target-data of i-target');

    const env = { FERRY_ENDPOINT: ferry.server.url, FERRY_ACCESS_KEY_ID: ferry.key.accessKeyId, FERRY_ACCESS_KEY_SECRET: ferry.key.accessKeySecret };
    const instance = JSON.parse(await ferryCli(['instance', 'show', 'i-target', '--json'], env)) as { status: string; disks: { id: string; path: string }[] };
    assert.equal(instance.status, 'Running', 'stopped for the write, started again after it');
    const pathOf = (id: string): string => instance.disks.find((d) => d.id === id)?.path ?? '';
    assert.equal(await sha256Padded(pathOf('d-target-sys'), gib), await sha256Padded(systemDisk, gib), 'the system disk is the source system disk, byte for byte');
    assert.equal(await sha256Padded(pathOf('d-target-data'), gib), await sha256Padded(dataDisk, gib), 'the data disk holds the source data disk, zeros after it');
    assert.equal(lstatSync(pathOf('d-target-sys')).size, gib, 'the instance disk keeps its size');
    assert.ok(lstatSync(pathOf('d-target-sys')).blocks * 512 < 64 * mib, 'and stays sparse');

    // A source disk larger than the instance's: the job is refused when it is made, before any byte moves.
    const before = await sha256Padded(pathOf('d-target-sys'), gib);
    const big = await startAgent(ferry, { name: 'big-server', disks: [makeSparseDisk(join(dir, 'big-sys.img'), gib + mib, [0, 1024])] });
    agents.push(big);
    const tooBig = { RegionId: 'cn-hangzhou', SourceId: big.sourceId, TargetType: 'TargetInstance', InstanceId: 'i-target' };
    await assert.rejects(client.request('CreateReplicationJob', tooBig), (err: Error) => {
      isSdkError('TargetInstance.DiskMismatch', 400)(err);
      assert.match(err.message, /source disk 0: the source disk holds 1074790400 bytes, its disk d-target-sys only 1 GiB; resize that disk first/);
      return true;
    });
    // So is turning an image job of that source into one for this instance.
    const imageJob = (await client.request('CreateReplicationJob', { RegionId: 'cn-hangzhou', SourceId: big.sourceId, ImageName: 'big-server-image', SystemDiskSize: 20 })) as { JobId: string };
    await assert.rejects(client.request('ModifyReplicationJobAttribute', { JobId: imageJob.JobId, TargetType: 'TargetInstance', InstanceId: 'i-target' }), isSdkError('TargetInstance.DiskMismatch', 400));
    await client.request('DeleteReplicationJob', { JobId: imageJob.JobId });
    const describe = (await client.request('DescribeReplicationJobs', { RegionId: 'cn-hangzhou', SourceId: [big.sourceId] })) as { ReplicationJobs: { ReplicationJob: Array<{ TargetType: string }> } };
    assert.deepEqual(describe.ReplicationJobs.ReplicationJob.map((j) => j.TargetType).filter((t) => t === 'TargetInstance'), [], 'no TargetInstance job was left behind');
    assert.equal(await sha256Padded(pathOf('d-target-sys'), gib), before, 'the instance disk is untouched');
    assert.equal((JSON.parse(await ferryCli(['instance', 'show', 'i-target', '--json'], env)) as { status: string }).status, 'Running');
  });
});
