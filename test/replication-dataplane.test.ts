/**
 * The replication data path end to end, on real processes and files: `ferry agent` children send
 * sparse test disks (random, zero, text and hole regions) over the data plane to a real
 * `ferry serve`; the images are exported with `ferry image export` and compared with the source
 * (SHA-256 and `qemu-img compare`); an incremental run after a 1 % change sends only the changed
 * chunks; SIGKILL of the agent, and of the server, mid-run costs at most the chunks in flight;
 * bandwidth_limit holds over every 10 s window; an image whose manifest an older Ferry wrote
 * (SHA-256 chunk digests) is no base: the next run sends everything. Byte counts are the server's own.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { callApi } from '../src/cli/api-client.ts';
import { buildManifest } from '../src/dataplane/manifest.ts';
import { mutateTestDisk, writeTestDisk } from '../src/dataplane/test-disk.ts';
import type { ReplicationProgress, TransferProgress } from '../src/migration/replication-progress.ts';
import { type FerryWithKey, type PopClient, ferryCli, popClient, startFerryWithKey } from './support/api.ts';
import { type FerryServer, metricSum, startFerry } from './support/ferry-process.ts';
import { freePort } from './support/ports.ts';
import { type AgentProcess, jobReaches, startAgent, waitFor } from './support/smc.ts';

const run = promisify(execFile);
const mib = 1024 * 1024;
const chunkBytes = 4 * mib;
/** The agent's window: chunks sent and not yet acknowledged. */
const windowChunks = 16;

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const piece of createReadStream(path, { highWaterMark: 4 * mib })) hash.update(piece as Buffer);
  return hash.digest('hex');
}

/** Bytes of the chunks of a disk that hold data (what a full run must send). */
async function dataChunkBytes(path: string): Promise<number> {
  const manifest = await buildManifest(path, { chunkSizeBytes: chunkBytes });
  let bytes = 0;
  for (let i = 0; i < manifest.chunkCount; i++) if (manifest.kindAt(i) === 'data') bytes += manifest.lengthOf(i);
  return bytes;
}

describe('replication data path with real agents and a real server', () => {
  let dir: string;
  let ferry: FerryWithKey;
  let server: FerryServer;
  let listen: string;
  let client: PopClient;
  let env: NodeJS.ProcessEnv;
  const agents: AgentProcess[] = [];
  let bigDisk: string;
  let bigAgent: AgentProcess;
  let midDisk: string;
  let midAgent: AgentProcess;
  let midDataBytes: number;

  const progressOf = (jobId: string): Promise<ReplicationProgress> => callApi<ReplicationProgress>({ endpoint: server.url, ...ferry.key }, 'GET', `/api/v1/replication-jobs/${jobId}/progress`);
  const runOf = async (jobId: string): Promise<TransferProgress> => {
    const run = (await progressOf(jobId)).runs.at(-1);
    assert.ok(run !== undefined, `job ${jobId} has a run`);
    return run;
  };
  const createJob = async (sourceId: string, name: string, params: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<string> => {
    const { JobId } = (await client.request('CreateReplicationJob', {
      RegionId: 'cn-hangzhou',
      SourceId: sourceId,
      ImageName: name,
      SystemDiskSize: 20,
      ReplicationParameters: JSON.stringify({ checksum: true, ...params }),
      ...extra,
    })) as { JobId: string };
    return JobId;
  };
  const exportRaw = async (imageId: string, out: string, format: 'raw' | 'qcow2' = 'raw'): Promise<{ checks: string[] }> =>
    JSON.parse(await ferryCli(['image', 'export', imageId, '--format', format, '-o', out, '--json'], env)) as { checks: string[] };
  /** The image file the server keeps equals the disk, as qemu-img compare sees it. */
  const assertImageFileIs = async (imageId: string, disk: string): Promise<void> => {
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', disk, join(ferry.data, 'images', `${imageId}.raw`)]);
  };
  /** `ferry image export` writes the disk: the same SHA-256, and qemu-img compare finds no difference. */
  const assertExportIs = async (imageId: string, disk: string, label: string, phase: (name: string) => void = () => undefined): Promise<void> => {
    const out = join(dir, `${imageId}.raw`);
    const result = await exportRaw(imageId, out);
    assert.deepEqual(result.checks, ['chunk xxh64', 'proof']);
    phase(`${label}: raw export`);
    const [exported, source] = await Promise.all([sha256File(out), sha256File(disk)]);
    assert.equal(exported, source, `${label}: the exported raw image has the source's SHA-256`);
    phase(`${label}: sha256 of both`);
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', disk, out]);
    phase(`${label}: qemu-img compare`);
    rmSync(out);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-dataplane-e2e-'));
    listen = `127.0.0.1:${await freePort()}`;
    ferry = await startFerryWithKey({ extra: ['--listen', listen, '--poll-ms', '100'] });
    server = ferry.server;
    client = popClient(server.url, ferry.key);
    env = { FERRY_ENDPOINT: server.url, FERRY_ACCESS_KEY_ID: ferry.key.accessKeyId, FERRY_ACCESS_KEY_SECRET: ferry.key.accessKeySecret };
    bigDisk = join(dir, 'big.raw');
    midDisk = join(dir, 'mid.raw');
    await writeTestDisk(bigDisk, { sizeBytes: 2048 * mib, seed: 11 });
    await writeTestDisk(midDisk, { sizeBytes: 384 * mib, seed: 12 });
    midDataBytes = await dataChunkBytes(midDisk);
    [bigAgent, midAgent] = await Promise.all([startAgent(ferry, { name: 'big', disks: [bigDisk] }), startAgent(ferry, { name: 'mid', disks: [midDisk] })]);
    agents.push(bigAgent, midAgent);
  });
  after(async () => {
    for (const agent of agents) agent.process.kill('SIGKILL');
    server.kill('SIGKILL');
    await ferry.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('replicates a 2 GiB sparse disk to an image equal to it, then after a 1 % change sends only the changed chunks', async (t) => {
    let phaseStart = Date.now();
    /** How long each step took, in the test's diagnostics (this file must stay well under 3 minutes). */
    const phase = (name: string): void => {
      t.diagnostic(`${name}: ${((Date.now() - phaseStart) / 1000).toFixed(1)} s`);
      phaseStart = Date.now();
    };
    const apparent = statSync(bigDisk);
    assert.ok(apparent.blocks * 512 < apparent.size, 'the test disk has holes');
    const jobId = await createJob(bigAgent.sourceId, 'big-image', {}, { RunOnce: false, Frequency: 12, MaxNumberOfImageToKeep: 2 });
    const watching = ferryCli(['jobs', 'watch', jobId, '--json', '--interval-ms', '200'], env);
    await client.request('StartReplicationJob', { JobId: jobId });
    let seenInMetrics = false;
    const first = await waitFor('the first run to end', async () => {
      if (!seenInMetrics) {
        const [total, done] = await Promise.all(['ferry_replication_bytes_total', 'ferry_replication_bytes_done'].map((name) => metricSum(server.url, name, `job_id="${jobId}"`)));
        seenInMetrics = total === 2048 * mib && (done ?? 0) > 0;
      }
      const progress = await progressOf(jobId);
      return progress.state.startsWith('Running') ? undefined : progress;
    }, 150_000, 200);
    assert.equal(first.state, 'Waiting', first.errorCode);
    assert.equal(first.progress, 100);
    assert.ok(seenInMetrics, '/metrics showed the run\'s total and done bytes while it ran');
    const watched = JSON.parse(await watching) as ReplicationProgress;
    assert.deepEqual([watched.state, watched.imageId], ['Waiting', first.imageId], 'ferry jobs watch followed the run to its end');
    const firstRun = first.runs[0];
    assert.ok(firstRun !== undefined);
    assert.deepEqual([firstRun.bytesDone, firstRun.bytesTotal], [2048 * mib, 2048 * mib]);
    assert.match(firstRun.proofs['0'] ?? '', /^[0-9a-f]{64}$/, 'the run stores the whole-image proof both sides computed');
    phase('full run');
    await assertExportIs(first.imageId, bigDisk, 'full run', phase);
    const imageFile = statSync(join(ferry.data, 'images', `${first.imageId}.raw`));
    assert.ok(imageFile.blocks * 512 <= apparent.blocks * 512 + 64 * mib, 'the image stays sparse');

    // 1 % of the disk in scattered 1 MiB blocks, then the cut-over's last run is incremental.
    const offsets = await mutateTestDisk(bigDisk, { fraction: 0.01, blockBytes: mib, seed: 5 });
    phase('1 % changed');
    const changedChunks = new Set(offsets.map((o) => Math.floor(o / chunkBytes)));
    await client.request('CutOverReplicationJob', { JobId: jobId, SyncData: true });
    const done = await jobReaches(client, jobId, 'Finished', undefined, 120_000);
    const second = await runOf(jobId);
    phase('incremental run');
    const changedBytes = changedChunks.size * chunkBytes;
    assert.ok(second.bytesReceived <= 1.1 * changedBytes, `the incremental run received ${second.bytesReceived} bytes for ${changedBytes} bytes of changed chunks`);
    assert.ok(second.bytesReceived >= changedBytes, 'every changed chunk was sent');
    assert.notEqual(second.proofs['0'], firstRun.proofs['0']);
    await assertImageFileIs(done.ImageId, bigDisk);
    phase('incremental image compared');
  });

  /** Start a run of the mid disk, wait until the server counted `fraction` of it done, then call `kill`. */
  async function runKilledMidway(name: string, kill: () => Promise<void>): Promise<{ jobId: string; run: TransferProgress }> {
    const jobId = await createJob(midAgent.sourceId, name, { bandwidth_limit: 800 });
    await client.request('StartReplicationJob', { JobId: jobId });
    await waitFor('the run to be half done', async () => {
      const run = await runOf(jobId);
      return run.bytesDone >= 0.5 * run.bytesTotal && run.bytesTotal > 0 ? run : undefined;
    }, 60_000, 100);
    await kill();
    const done = await jobReaches(client, jobId, 'Finished', undefined, 90_000);
    const run = await runOf(jobId);
    await assertImageFileIs(done.ImageId, midDisk);
    return { jobId, run };
  }

  it('resumes after the agent is SIGKILLed mid-run: the image is right and only chunks in flight were sent again', async () => {
    const { jobId, run } = await runKilledMidway('agent-killed', async () => {
      midAgent.process.kill('SIGKILL');
      await midAgent.exited;
      midAgent = await startAgent(ferry, { name: 'mid', disks: [midDisk], stateDir: midAgent.stateDir });
      agents.push(midAgent);
    });
    await assertExportIs((await progressOf(jobId)).imageId, midDisk, 'agent killed');
    const bound = midDataBytes + windowChunks * chunkBytes + mib;
    assert.ok(run.bytesReceived <= bound, `received ${run.bytesReceived} bytes for ${midDataBytes} bytes of data chunks (at most ${bound})`);
  });

  it('resumes after the server is SIGKILLed mid-run and restarted: the image is right and only chunks in flight were sent again', async () => {
    const { run } = await runKilledMidway('server-killed', async () => {
      server.kill('SIGKILL');
      await server.exited;
      server = await startFerry({ data: ferry.data, extra: ['--listen', listen, '--poll-ms', '100'] });
    });
    // Bytes received after the server's last progress record before the kill went uncounted, so this bound is loose by up to a second of traffic.
    const bound = midDataBytes + windowChunks * chunkBytes + mib;
    assert.ok(run.bytesReceived <= bound, `received ${run.bytesReceived} bytes for ${midDataBytes} bytes of data chunks (at most ${bound})`);
  });

  it('holds bandwidth_limit within 5 % over every 10 s window, as the server counts the bytes', async () => {
    const limitMbps = 160;
    const limitBytesPerSec = (limitMbps * 1_000_000) / 8;
    const jobId = await createJob(midAgent.sourceId, 'throttled', { bandwidth_limit: limitMbps });
    await client.request('StartReplicationJob', { JobId: jobId });
    const samples = new Map<number, number>();
    await waitFor('the throttled run to end', async () => {
      const progress = await progressOf(jobId);
      const run = progress.runs.at(-1);
      if (run?.progressAtMs !== null && run?.progressAtMs !== undefined) samples.set(run.progressAtMs, run.bytesReceived);
      return progress.state.startsWith('Running') ? undefined : progress;
    }, 120_000, 250);
    // This image also goes out as qcow2: qemu-img check passes and it compares equal to the disk.
    const imageId = (await progressOf(jobId)).imageId;
    const qcow2 = join(dir, 'throttled.qcow2');
    const exported = await exportRaw(imageId, qcow2, 'qcow2');
    assert.deepEqual(exported.checks, ['chunk xxh64', 'proof', 'qemu-img check', 'qemu-img compare']);
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', midDisk, qcow2]);
    rmSync(qcow2);
    const points = [...samples.entries()].sort((a, b) => a[0] - b[0]);
    let windows = 0;
    for (const [i, [startMs, startBytes]] of points.entries()) {
      for (const [endMs, endBytes] of points.slice(i + 1)) {
        const seconds = (endMs - startMs) / 1000;
        if (seconds < 10) continue;
        windows++;
        const rate = (endBytes - startBytes) / seconds;
        assert.ok(rate <= 1.05 * limitBytesPerSec, `${Math.round(rate)} B/s over ${seconds.toFixed(1)} s exceeds ${limitMbps} Mbit/s by more than 5 %`);
      }
    }
    assert.ok(windows > 0, 'the run lasted longer than 10 s, so windows were checked');
  });

  it('sends everything again when the last image\'s manifests hold SHA-256 chunk digests, as an older Ferry wrote them', async () => {
    const jobId = await createJob(midAgent.sourceId, 'old-manifests', {}, { RunOnce: false, Frequency: 12, MaxNumberOfImageToKeep: 2 });
    await client.request('StartReplicationJob', { JobId: jobId });
    const first = await jobReaches(client, jobId, 'Waiting', undefined, 90_000);
    // The image's manifest and the base prepared from it, rewritten in the SHA-256 format.
    const images = join(ferry.data, 'images');
    const imageFile = join(images, `${first.ImageId}.raw`);
    const old = (await buildManifest(imageFile, { chunkSizeBytes: chunkBytes, algorithm: 'sha256' })).encode();
    const manifests = readdirSync(images, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.manifest') && name.includes(first.ImageId));
    assert.ok(manifests.length >= 2, `the image and its prepared base both have manifests: ${manifests.join(', ')}`);
    for (const name of manifests) writeFileSync(join(images, name), old);

    await client.request('CutOverReplicationJob', { JobId: jobId, SyncData: true });
    const done = await jobReaches(client, jobId, 'Finished', undefined, 90_000);
    const second = await runOf(jobId);
    assert.ok(second.bytesReceived >= midDataBytes, `the unchanged disk was sent again in full: ${second.bytesReceived} bytes for ${midDataBytes} bytes of data chunks`);
    await assertExportIs(done.ImageId, midDisk, 'after old manifests');
  });
});
