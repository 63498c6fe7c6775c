/**
 * bench/replication: replication runs through the real product (a `ferry serve` and a `ferry agent`
 * child process, jobs driven over the POP API) against peer tools run back to back on the same
 * files, alternating which goes first (BASELINES.md: this machine is noisy; compare ratios).
 *
 * - full: a 2 GiB test disk (random, text, pattern, zero and hole segments) replicated to an
 *   image, fsynced, vs `cp --sparse=always SRC DST && sync DST` (target ferry >= 0.8x cp's
 *   throughput) and vs `rsync --whole-file` to an rsync daemon on 127.0.0.1 (target >= 1.2x).
 * - incremental: after 1 % of the disk changed (scattered blocks, `--change-block-kib`, default
 *   1 MiB), an incremental run vs `rsync --inplace --no-whole-file` through the same daemon onto a
 *   copy of the disk as it was (target: <= 0.25x rsync's time; bytes the server counted <= 1.1x the
 *   changed chunks' bytes).
 * - sparse: a 16 GiB disk holding 1 GiB of data vs a 1 GiB dense disk (target: <= 1.3x its time).
 * - the agent's peak RSS over everything (VmHWM; target < 200 MiB).
 *
 * Ferry's time is the transfer as the server measured it: from the first disk stream's start to
 * the moment the last disk's proof was recorded (after the last fdatasync), the run's `transferMs`.
 * The whole run as a user sees it (StartReplicationJob until Finished, control plane included) is
 * reported beside it. Peer tools are timed as whole shell commands. Sources are warm for all.
 *
 * Usage: npx tsx bench/replication.ts [--runs 5] [--size-mib 2048] [--change-block-kib 1024] [--skip-sparse]
 * Needs about 8x the disk size free in the temp dir. Writes bench/results/replication.json.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs, promisify } from 'node:util';
import { callApi } from '../src/cli/api-client.ts';
import { readBlocks } from '../src/dataplane/block-reader.ts';
import { mutateTestDisk, writeTestDisk } from '../src/dataplane/test-disk.ts';
import type { ReplicationProgress, TransferProgress } from '../src/migration/replication-progress.ts';
import { type CreatedKey, type PopClient, ferryCli, popClient } from '../test/support/api.ts';
import { type FerryServer, startFerry } from '../test/support/ferry-process.ts';
import { freePort } from '../test/support/ports.ts';
import { type AgentProcess, startAgent } from '../test/support/smc.ts';
import { benchOptions, positiveInt } from './support/args.ts';
import { loadAverage1m, machineInfo, printTable, round, writeReport } from './support/report.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const chunkBytes = 4 * MiB;
const targets = { fullVsCp: 0.8, fullVsRsync: 1.2, incrementalTimeVsRsync: 0.25, incrementalBytesVsChanged: 1.1, sparseVsDense: 1.3, agentRssMiB: 200 } as const;

const usage = `Usage: npx tsx bench/replication.ts [--runs 5] [--size-mib 2048] [--change-block-kib 1024] [--skip-sparse]
Full, incremental (1 %) and sparse replication runs through a real ferry serve and ferry agent against
cp --sparse=always + sync and an rsync daemon, back to back; needs about 8x the disk size free in the
temp dir; writes bench/results/replication.json.`;

const { values, runs, sizeMiB, changeBlockBytes } = benchOptions(usage, () => {
  const parsed = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      'size-mib': { type: 'string', default: '2048' },
      'change-block-kib': { type: 'string', default: '1024' },
      'skip-sparse': { type: 'boolean', default: false },
    },
  });
  return {
    values: parsed.values,
    runs: positiveInt('--runs', parsed.values.runs),
    sizeMiB: positiveInt('--size-mib', parsed.values['size-mib']),
    changeBlockBytes: positiveInt('--change-block-kib', parsed.values['change-block-kib']) * 1024,
  };
});

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return (performance.now() - started) / 1000;
}

const sh = (script: string, ...args: string[]): Promise<unknown> => run('sh', ['-c', script, 'sh', ...args], { maxBuffer: 16 * MiB });

async function warm(path: string): Promise<void> {
  for await (const block of readBlocks(path)) void block;
}

/** A disk of `sizeBytes` holding `dataBytes` of random data in `extents` evenly spread extents (the rest holes). */
async function writeSpreadDisk(path: string, sizeBytes: number, dataBytes: number, extents: number): Promise<void> {
  const file = await open(path, 'w');
  try {
    const extentBytes = dataBytes / extents;
    const buffer = Buffer.allocUnsafe(extentBytes);
    for (let i = 0; i < extents; i++) {
      randomFillSync(buffer);
      await file.write(buffer, 0, extentBytes, Math.floor((i * sizeBytes) / extents));
    }
    await file.truncate(sizeBytes);
    await file.sync();
  } finally {
    await file.close();
  }
}

interface Ferry {
  readonly server: FerryServer;
  readonly data: string;
  readonly key: CreatedKey;
  readonly client: PopClient;
}

async function startBenchFerry(root: string): Promise<Ferry> {
  const data = join(root, 'ferry-data');
  mkdirSync(data);
  const server = await startFerry({ data, extra: ['--listen', `127.0.0.1:${await freePort()}`, '--poll-ms', '100'] });
  const key = JSON.parse(await ferryCli(['admin', 'create-key', '--data', data, '--json'])) as CreatedKey;
  return { server, data, key, client: popClient(server.url, key) };
}

async function progressOf(ferry: Ferry, jobId: string): Promise<ReplicationProgress> {
  return callApi<ReplicationProgress>({ endpoint: ferry.server.url, ...ferry.key }, 'GET', `/api/v1/replication-jobs/${jobId}/progress`);
}

/**
 * Wait until the job leaves Running; returns its progress and last run. Polled every 100 ms: each
 * poll is a signed request the server answers on the thread that also receives the disk.
 */
async function untilSettled(ferry: Ferry, jobId: string): Promise<{ progress: ReplicationProgress; run: TransferProgress }> {
  for (;;) {
    const progress = await progressOf(ferry, jobId);
    if (progress.state !== 'Ready' && !progress.state.startsWith('Running')) {
      const last = progress.runs.at(-1);
      if (last === undefined || (progress.state !== 'Finished' && progress.state !== 'Waiting')) throw new Error(`job ${jobId} ended ${progress.state} ${progress.errorCode}`);
      return { progress, run: last };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface FerryRun {
  readonly transferSeconds: number;
  readonly wallSeconds: number;
  readonly bytesReceived: number;
  readonly imageId: string;
}

async function createJob(ferry: Ferry, sourceId: string, name: string, incremental: boolean): Promise<string> {
  const { JobId } = (await ferry.client.request('CreateReplicationJob', {
    RegionId: 'cn-hangzhou',
    SourceId: sourceId,
    ImageName: name,
    SystemDiskSize: 20,
    ReplicationParameters: JSON.stringify({ checksum: true }),
    ...(incremental ? { RunOnce: false, Frequency: 12, MaxNumberOfImageToKeep: 2 } : {}),
  })) as { JobId: string };
  return JobId;
}

/** Start (or cut over with a last run) a job and time it until it settles. */
async function timeRun(ferry: Ferry, jobId: string, action: 'StartReplicationJob' | 'CutOverReplicationJob'): Promise<FerryRun> {
  const started = performance.now();
  await ferry.client.request(action, { JobId: jobId, ...(action === 'CutOverReplicationJob' ? { SyncData: true } : {}) });
  const { progress, run: last } = await untilSettled(ferry, jobId);
  const wallSeconds = (performance.now() - started) / 1000;
  if (last.transferMs === null) throw new Error(`run ${last.runId} recorded no transfer time`);
  return { transferSeconds: last.transferMs / 1000, wallSeconds, bytesReceived: last.bytesReceived, imageId: progress.imageId };
}

function dropImages(ferry: Ferry): void {
  // Runs leave their images behind; they are not part of what the next run measures.
  const dir = join(ferry.data, 'images');
  const names = (() => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  })();
  for (const name of names) if (/^m-.*\.(raw|manifest)$/.test(name)) rmSync(join(dir, name), { force: true });
}

/** Peak resident set of a process in bytes (VmHWM). */
function peakRssBytes(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
}

function startRsyncDaemon(root: string, port: number): ChildProcess {
  const dst = join(root, 'rsync-dst');
  mkdirSync(dst);
  const conf = join(root, 'rsyncd.conf');
  writeFileSync(conf, `pid file = ${join(root, 'rsyncd.pid')}\nuse chroot = no\n[dst]\n  path = ${dst}\n  read only = no\n  uid = root\n  gid = root\n`);
  return spawn('rsync', ['--daemon', '--no-detach', `--config=${conf}`, `--port=${port}`, '--address=127.0.0.1'], { stdio: 'ignore' });
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'ferry-bench-replication-'));
  const loadBefore = loadAverage1m();
  const processes: ChildProcess[] = [];
  console.log(`bench/replication: ${runs} runs, ${sizeMiB} MiB disk, changes in ${changeBlockBytes / 1024} KiB blocks, in ${root}`);
  try {
    const disk = join(root, 'disk.raw');
    await writeTestDisk(disk, { sizeBytes: sizeMiB * MiB, seed: 2026 });
    const ferry = await startBenchFerry(root);
    processes.push(ferry.server.process);
    const withKey = { server: ferry.server, data: ferry.data, db: undefined, key: ferry.key, createKey: () => Promise.resolve(ferry.key), close: () => Promise.resolve() };
    const agent: AgentProcess = await startAgent(withKey, { name: 'bench-source', disks: [disk] });
    processes.push(agent.process);
    const rsyncPort = await freePort();
    const rsyncd = startRsyncDaemon(root, rsyncPort);
    processes.push(rsyncd);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const rsyncUrl = `rsync://127.0.0.1:${rsyncPort}/dst`;
    const cpTarget = join(root, 'cp.raw');
    const rsyncTarget = join(root, 'rsync-dst', 'r.raw');
    await warm(disk);

    // Full runs: ferry, cp + sync, rsync daemon, alternating order.
    const full: Array<Record<string, number | string>> = [];
    for (let i = 1; i <= runs; i++) {
      const load = loadAverage1m();
      const order = i % 2 === 1 ? ['ferry', 'cp', 'rsync'] : ['rsync', 'cp', 'ferry'];
      const row: Record<string, number | string> = { run: i, order: order.join(','), loadAverage1m: load };
      for (const contender of order) {
        rmSync(cpTarget, { force: true });
        rmSync(rsyncTarget, { force: true });
        dropImages(ferry);
        execFileSync('sync');
        if (contender === 'ferry') {
          const jobId = await createJob(ferry, agent.sourceId, `full-${i}`, false);
          const result = await timeRun(ferry, jobId, 'StartReplicationJob');
          row['ferrySeconds'] = round(result.transferSeconds, 3);
          row['ferryWallSeconds'] = round(result.wallSeconds, 3);
        } else if (contender === 'cp') {
          row['cpSeconds'] = round(await timed(() => sh('cp --sparse=always "$1" "$2" && sync "$2"', disk, cpTarget)), 3);
        } else {
          row['rsyncSeconds'] = round(await timed(() => sh('rsync --whole-file "$1" "$2"', disk, `${rsyncUrl}/r.raw`)), 3);
        }
      }
      row['ratioVsCp'] = round(Number(row['cpSeconds']) / Number(row['ferrySeconds']), 3);
      row['ratioVsRsync'] = round(Number(row['rsyncSeconds']) / Number(row['ferrySeconds']), 3);
      console.log(`  full ${i} (load ${load}): ferry ${row['ferrySeconds']} s (whole run ${row['ferryWallSeconds']} s), cp+sync ${row['cpSeconds']} s, rsync ${row['rsyncSeconds']} s; ferry/cp ${row['ratioVsCp']}, ferry/rsync ${row['ratioVsRsync']}`);
      full.push(row);
    }
    rmSync(cpTarget, { force: true });
    rmSync(rsyncTarget, { force: true });

    // Incremental runs: each job's first run is full (not timed); then 1 % changes and both tools send the change.
    const incremental: Array<Record<string, number | string>> = [];
    const incTarget = join(root, 'rsync-dst', 'inc.raw');
    for (let i = 1; i <= runs; i++) {
      dropImages(ferry);
      const jobId = await createJob(ferry, agent.sourceId, `inc-${i}`, true);
      await timeRun(ferry, jobId, 'StartReplicationJob');
      await sh('cp --sparse=always "$1" "$2"', disk, incTarget);
      const offsets = await mutateTestDisk(disk, { fraction: 0.01, blockBytes: changeBlockBytes, seed: 100 + i });
      const changedBytes = new Set(offsets.map((o) => Math.floor(o / chunkBytes))).size * chunkBytes;
      await warm(disk);
      execFileSync('sync');
      const load = loadAverage1m();
      const order = i % 2 === 1 ? ['ferry', 'rsync'] : ['rsync', 'ferry'];
      const row: Record<string, number | string> = { run: i, order: order.join(','), loadAverage1m: load, changedBytes: offsets.length * changeBlockBytes, changedChunkBytes: changedBytes };
      for (const contender of order) {
        if (contender === 'ferry') {
          const result = await timeRun(ferry, jobId, 'CutOverReplicationJob');
          row['ferrySeconds'] = round(result.transferSeconds, 3);
          row['ferryWallSeconds'] = round(result.wallSeconds, 3);
          row['ferryBytesReceived'] = result.bytesReceived;
        } else {
          const started = performance.now();
          const { stdout } = (await run('rsync', ['--inplace', '--no-whole-file', '-I', '--stats', disk, `${rsyncUrl}/inc.raw`], { maxBuffer: 16 * MiB })) as { stdout: string };
          row['rsyncSeconds'] = round((performance.now() - started) / 1000, 3);
          row['rsyncBytesSent'] = Number(/Total bytes sent: ([\d,.]+)/.exec(stdout)?.[1]?.replace(/[,.]/g, '') ?? 0);
        }
      }
      row['timeVsRsync'] = round(Number(row['ferrySeconds']) / Number(row['rsyncSeconds']), 3);
      row['bytesVsChangedChunks'] = round(Number(row['ferryBytesReceived']) / changedBytes, 3);
      console.log(
        `  incremental ${i} (load ${load}): ferry ${row['ferrySeconds']} s (whole run ${row['ferryWallSeconds']} s), ${row['ferryBytesReceived']} bytes for ${changedBytes} of changed chunks (${row['bytesVsChangedChunks']}x); ` +
          `rsync ${row['rsyncSeconds']} s, ${row['rsyncBytesSent']} bytes; ferry/rsync time ${row['timeVsRsync']}`,
      );
      incremental.push(row);
    }
    rmSync(incTarget, { force: true });

    // Sparse: cost in proportion to data, not size.
    const sparse: Array<Record<string, number | string>> = [];
    if (values['skip-sparse'] !== true) {
      const sparseDisk = join(root, 'sparse16g.raw');
      const denseDisk = join(root, 'dense1g.raw');
      await writeSpreadDisk(sparseDisk, 16 * 1024 * MiB, 1024 * MiB, 64);
      await writeSpreadDisk(denseDisk, 1024 * MiB, 1024 * MiB, 1);
      const [sparseAgent, denseAgent] = await Promise.all([startAgent(withKey, { name: 'bench-sparse', disks: [sparseDisk] }), startAgent(withKey, { name: 'bench-dense', disks: [denseDisk] })]);
      processes.push(sparseAgent.process, denseAgent.process);
      await warm(sparseDisk);
      await warm(denseDisk);
      for (let i = 1; i <= runs; i++) {
        const load = loadAverage1m();
        const row: Record<string, number | string> = { run: i, loadAverage1m: load };
        for (const which of i % 2 === 1 ? ['sparse', 'dense'] : ['dense', 'sparse']) {
          dropImages(ferry);
          execFileSync('sync');
          const source = which === 'sparse' ? sparseAgent : denseAgent;
          const result = await timeRun(ferry, await createJob(ferry, source.sourceId, `${which}-${i}`, false), 'StartReplicationJob');
          row[`${which}Seconds`] = round(result.transferSeconds, 3);
          row[`${which}WallSeconds`] = round(result.wallSeconds, 3);
        }
        row['ratio'] = round(Number(row['sparseSeconds']) / Number(row['denseSeconds']), 3);
        console.log(`  sparse ${i} (load ${load}): 16 GiB sparse with 1 GiB data ${row['sparseSeconds']} s, 1 GiB dense ${row['denseSeconds']} s, ratio ${row['ratio']}`);
        sparse.push(row);
      }
    }

    const agentPeakRssBytes = peakRssBytes(agent.process.pid ?? 0);
    const m = (rows: typeof full, key: string): number => round(median(rows.map((r) => Number(r[key]))), 3);
    const medians = {
      fullFerrySeconds: m(full, 'ferrySeconds'),
      fullFerryMiBps: round(sizeMiB / m(full, 'ferrySeconds'), 0),
      fullCpSeconds: m(full, 'cpSeconds'),
      fullRsyncSeconds: m(full, 'rsyncSeconds'),
      fullVsCp: round(m(full, 'cpSeconds') / m(full, 'ferrySeconds'), 3),
      fullVsRsync: round(m(full, 'rsyncSeconds') / m(full, 'ferrySeconds'), 3),
      incrementalFerrySeconds: m(incremental, 'ferrySeconds'),
      incrementalRsyncSeconds: m(incremental, 'rsyncSeconds'),
      incrementalTimeVsRsync: round(m(incremental, 'ferrySeconds') / m(incremental, 'rsyncSeconds'), 3),
      incrementalBytesVsChanged: m(incremental, 'bytesVsChangedChunks'),
      ...(sparse.length > 0 ? { sparseSeconds: m(sparse, 'sparseSeconds'), denseSeconds: m(sparse, 'denseSeconds'), sparseVsDense: round(m(sparse, 'sparseSeconds') / m(sparse, 'denseSeconds'), 3) } : {}),
      agentPeakRssMiB: round(agentPeakRssBytes / MiB, 1),
    };
    const verdicts = {
      fullVsCp: medians.fullVsCp >= targets.fullVsCp,
      fullVsRsync: medians.fullVsRsync >= targets.fullVsRsync,
      incrementalTimeVsRsync: medians.incrementalTimeVsRsync <= targets.incrementalTimeVsRsync,
      incrementalBytesVsChanged: medians.incrementalBytesVsChanged <= targets.incrementalBytesVsChanged,
      ...('sparseVsDense' in medians ? { sparseVsDense: medians.sparseVsDense <= targets.sparseVsDense } : {}),
      agentRss: medians.agentPeakRssMiB < targets.agentRssMiB,
    };
    console.log('');
    printTable(
      ['measure', 'median', 'target', 'met'],
      [
        ['full: cp+sync time / ferry time', String(medians.fullVsCp), `>= ${targets.fullVsCp}`, String(verdicts.fullVsCp)],
        ['full: rsync daemon time / ferry time', String(medians.fullVsRsync), `>= ${targets.fullVsRsync}`, String(verdicts.fullVsRsync)],
        ['incremental: ferry time / rsync time', String(medians.incrementalTimeVsRsync), `<= ${targets.incrementalTimeVsRsync}`, String(verdicts.incrementalTimeVsRsync)],
        ['incremental: bytes / changed chunk bytes', String(medians.incrementalBytesVsChanged), `<= ${targets.incrementalBytesVsChanged}`, String(verdicts.incrementalBytesVsChanged)],
        ...('sparseVsDense' in medians ? [['16 GiB sparse / 1 GiB dense time', String(medians.sparseVsDense), `<= ${targets.sparseVsDense}`, String(verdicts.sparseVsDense)]] : []),
        ['agent peak RSS MiB', String(medians.agentPeakRssMiB), `< ${targets.agentRssMiB}`, String(verdicts.agentRss)],
      ],
    );
    writeReport('replication', {
      bench: 'replication',
      date: new Date().toISOString(),
      machine: machineInfo(loadBefore),
      parameters: {
        runs,
        sizeMiB,
        changeBlockBytes,
        chunkBytes,
        windowChunks: 16,
        ferry: 'a real ferry serve (SQLite) and a real ferry agent child process; jobs over POP; checksum on, compress_level 0, no bandwidth limit',
        ferryTime: 'transferMs: first disk stream start to last proof recorded (after the final fdatasync), server clock; ferryWallSeconds: StartReplicationJob/CutOver call to Finished/Waiting seen',
        cp: 'cp --sparse=always SRC DST && sync DST',
        rsyncFull: 'rsync --whole-file SRC rsync://127.0.0.1:PORT/dst/r.raw (daemon, no fsync)',
        rsyncIncremental: 'rsync --inplace --no-whole-file -I --stats SRC rsync://127.0.0.1:PORT/dst/inc.raw onto a copy of the disk before the change',
        incremental: 'each run: a new incremental job, its first run full (untimed, prepares the next run\'s base), 1 % of the disk overwritten in scattered blocks, then CutOverReplicationJob SyncData (timed) vs rsync',
        sparse: '16 GiB file with 1 GiB random data in 64 extents vs a 1 GiB file of random data',
        targets,
      },
      medians,
      verdicts,
      full,
      incremental,
      sparse,
    });
  } finally {
    for (const child of processes) child.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
