/**
 * bench/dataplane-transfer: a full transfer of a generated test disk (default 2 GiB: random,
 * text, pattern, written-zero and hole segments, like BASELINES' gen-image) from a sender process
 * to a receiver process over loopback TCP, the receiver writing a raw image with fdatasync, against
 * `cp --sparse=always SRC DST && sync DST` on the same file, back to back in alternating order.
 * The source is warm (in page cache) for both. Target (issue 7): ferry >= 0.8x cp's throughput.
 *
 * Timing: ferry from the sender's "go" until the receiver reports the proofs matched (both
 * processes started and waiting beforehand, as an agent and a server would be); cp as the whole
 * shell command, process start included. Throughput is the disk's apparent size over the time.
 * After each pair, bare Node TCP carries the same number of bytes between two processes (no
 * disk, no hashing): a reference for what the transport alone costs on this machine right now.
 *
 * Usage: npx tsx bench/dataplane-transfer.ts [--size-mib 2048] [--runs 5] [--compress-level 0]
 *        [--window 16] [--chunk-mib 4] [--fsync-batch-mib 64] [--no-verify]
 * Needs about 3.2x the disk size free in the temp dir (source, image, cp copy); deletes all after.
 * Writes bench/results/dataplane-transfer.json.
 */
import { type ChildProcessByStdio, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Readable, type Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { readBlocks } from '../src/dataplane/block-reader.ts';
import { Receiver } from '../src/dataplane/receiver.ts';
import { Sender } from '../src/dataplane/sender.ts';
import { type SegmentKind, writeTestDisk } from '../src/dataplane/test-disk.ts';
import { benchOptions } from './support/args.ts';
import { loadAverage1m, machineInfo, round, writeReport } from './support/report.ts';

const MiB = 1024 * 1024;
const targetRatio = 0.8;

interface Params {
  readonly sizeMiB: number;
  readonly runs: number;
  readonly compressLevel: number;
  readonly windowChunks: number;
  readonly chunkMiB: number;
  readonly fsyncBatchMiB: number;
  readonly verifyChunks: boolean;
}

/** What a child process reports when its side of the transfer is done. */
interface SideReport {
  readonly proof: string;
  readonly seconds: number;
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
  readonly maxRssBytes: number;
  readonly stats: Record<string, unknown>;
}

interface RunResult {
  readonly run: number;
  readonly order: string;
  readonly loadAverage1m: number;
  readonly ferrySeconds: number;
  readonly ferryMiBps: number;
  readonly cpSeconds: number;
  readonly cpMiBps: number;
  /** ferry MiB/s ÷ cp MiB/s, the measure. */
  readonly ratio: number;
  readonly tcpSeconds: number;
  /** bare TCP seconds ÷ ferry seconds: 1 would mean ferry costs nothing over the transport. */
  readonly ferryOverTcp: number;
  readonly sender: Omit<SideReport, 'stats' | 'proof'>;
  readonly receiver: Omit<SideReport, 'stats' | 'proof'>;
  readonly tcpSink: Omit<SideReport, 'stats' | 'proof'>;
}

const usage = `Usage: npx tsx bench/dataplane-transfer.ts [--size-mib 2048] [--runs 5] [--compress-level 0]
       [--window 16] [--chunk-mib 4] [--fsync-batch-mib 64] [--no-verify]
A full transfer of a generated test disk from a sender process to a receiver process over loopback
TCP (raw image, fdatasync) against cp --sparse=always + sync of the same file, alternating; writes
bench/results/dataplane-transfer.json.`;

const { values } = benchOptions(usage, () =>
  parseArgs({
    options: {
      'size-mib': { type: 'string' },
      runs: { type: 'string' },
      'compress-level': { type: 'string' },
      window: { type: 'string' },
      'chunk-mib': { type: 'string' },
      'fsync-batch-mib': { type: 'string' },
      'no-verify': { type: 'boolean' },
      // Internal: how the bench starts its two child processes.
      role: { type: 'string' },
      image: { type: 'string' },
      source: { type: 'string' },
      port: { type: 'string' },
      bytes: { type: 'string' },
    },
  }),
);

function readParams(): Params {
  const int = (name: string, text: string | undefined, fallback: string, min: number): number => {
    const n = Number(text ?? fallback);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${String(text)}`);
    return n;
  };
  return {
    sizeMiB: int('size-mib', values['size-mib'], '2048', 1),
    runs: int('runs', values.runs, '5', 1),
    compressLevel: int('compress-level', values['compress-level'], '0', 0),
    windowChunks: int('window', values.window, '16', 1),
    chunkMiB: int('chunk-mib', values['chunk-mib'], '4', 1),
    fsyncBatchMiB: int('fsync-batch-mib', values['fsync-batch-mib'], '64', 1),
    verifyChunks: values['no-verify'] !== true,
  };
}

function sideUsage(startedMs: number): Omit<SideReport, 'proof' | 'stats'> {
  const usage = process.resourceUsage();
  return {
    seconds: (performance.now() - startedMs) / 1000,
    cpuUserMs: Math.round(usage.userCPUTime / 1000),
    cpuSystemMs: Math.round(usage.systemCPUTime / 1000),
    maxRssBytes: usage.maxRSS * 1024,
  };
}

/** Child, receiving side: print the port, serve one connection with `serve`, print its report. */
async function listenOnce(serve: (socket: Socket, started: number) => Promise<SideReport>): Promise<void> {
  const server = createServer((socket) => {
    server.close();
    serve(socket, performance.now()).then(
      (report) => console.log(JSON.stringify(report)),
      (err: unknown) => {
        console.error(err);
        process.exitCode = 1;
      },
    );
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    console.log(JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : 0 }));
  });
  await new Promise((resolve) => server.on('close', resolve));
}

/** Child, sending side: say ready, wait for "go" on stdin, connect, run `send`, print its report. */
async function connectOnGo(port: number, send: (socket: Socket, started: number) => Promise<SideReport>): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  console.log(JSON.stringify({ ready: true }));
  for await (const line of lines) if (line === 'go') break;
  lines.close();
  const started = performance.now();
  console.log(JSON.stringify(await send(connect(port, '127.0.0.1'), started)));
}

async function ferryReceive(socket: Socket, started: number, image: string, params: Params): Promise<SideReport> {
  const { manifest: _manifest, ...stats } = await new Receiver({ imagePath: image, verifyChunks: params.verifyChunks, fsyncBatchBytes: params.fsyncBatchMiB * MiB }).run(socket);
  return { proof: stats.proof, ...sideUsage(started), stats };
}

async function ferrySend(socket: Socket, started: number, source: string, params: Params): Promise<SideReport> {
  const sender = new Sender({ sourcePath: source, chunkSizeBytes: params.chunkMiB * MiB, windowChunks: params.windowChunks, compressLevel: params.compressLevel });
  const { sentIndexes: _sent, ...stats } = await sender.run(socket);
  return { proof: stats.proof, ...sideUsage(started), stats };
}

/** The transport alone: count the bytes, as BASELINES' http-bench "count" sink does. */
async function tcpSink(socket: Socket, started: number): Promise<SideReport> {
  let bytes = 0;
  socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
  await once(socket, 'end');
  socket.end();
  return { proof: '', ...sideUsage(started), stats: { bytes } };
}

/** The transport alone: `bytes` from one reused 4 MiB buffer, honouring backpressure. */
async function tcpSource(socket: Socket, started: number, bytes: number): Promise<SideReport> {
  await once(socket, 'connect');
  const buffer = Buffer.alloc(4 * MiB, 0x5a);
  for (let sent = 0; sent < bytes; sent += buffer.length) {
    if (!socket.write(buffer.subarray(0, Math.min(buffer.length, bytes - sent)))) await once(socket, 'drain');
  }
  socket.end();
  await once(socket, 'close');
  return { proof: '', ...sideUsage(started), stats: { bytes } };
}

function spawnRole(args: readonly string[]): { child: ChildProcessByStdio<Writable, Readable, null>; next: () => Promise<Record<string, unknown>> } {
  const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const line = await lines.next();
    if (line.done === true) throw new Error(`bench child ${args.join(' ')} exited without a report`);
    return JSON.parse(line.value) as Record<string, unknown>;
  };
  return { child, next };
}

function exited(child: ChildProcessByStdio<Writable, Readable, null>): Promise<void> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) resolve();
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bench child exited with ${code}`))));
  });
}

interface TwoProcessRun {
  /** From "go" to the receiving side's report. */
  readonly seconds: number;
  readonly sender: SideReport;
  readonly receiver: SideReport;
}

/** Start the receiving child, then the sending child with its port, and time one transfer. */
async function twoProcessRun(receiverArgs: readonly string[], senderArgs: readonly string[]): Promise<TwoProcessRun> {
  const receiver = spawnRole(receiverArgs);
  const { port } = await receiver.next();
  const sender = spawnRole([...senderArgs, '--port', String(port)]);
  await sender.next();
  const started = performance.now();
  sender.child.stdin.write('go\n');
  const receiverReport = (await receiver.next()) as unknown as SideReport;
  const seconds = (performance.now() - started) / 1000;
  const senderReport = (await sender.next()) as unknown as SideReport;
  await Promise.all([exited(receiver.child), exited(sender.child)]);
  if (receiverReport.proof !== senderReport.proof) throw new Error('proofs differ');
  return { seconds, sender: senderReport, receiver: receiverReport };
}

async function cpRun(source: string, target: string): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    execFile('sh', ['-c', 'cp --sparse=always "$1" "$2" && sync "$2"', 'sh', source, target], (err) => {
      if (err === null) resolve();
      else reject(new Error(`cp failed: ${err.message}`));
    });
  });
  return (performance.now() - started) / 1000;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}


function usageOf(report: SideReport): Omit<SideReport, 'stats' | 'proof'> {
  return {
    seconds: round(report.seconds, 3),
    cpuUserMs: report.cpuUserMs,
    cpuSystemMs: report.cpuSystemMs,
    maxRssBytes: report.maxRssBytes,
  };
}

async function main(params: Params): Promise<void> {
  const argv = [
    '--size-mib', String(params.sizeMiB), '--compress-level', String(params.compressLevel),
    '--window', String(params.windowChunks), '--chunk-mib', String(params.chunkMiB), '--fsync-batch-mib', String(params.fsyncBatchMiB),
    ...(params.verifyChunks ? [] : ['--no-verify']),
  ];
  const sizeBytes = params.sizeMiB * MiB;
  console.log(execFileSync('df', ['-h', tmpdir()], { encoding: 'utf8' }).trimEnd());
  const fsInfo = statfsSync(tmpdir());
  const needBytes = Math.ceil(3.2 * sizeBytes);
  if (fsInfo.bavail * fsInfo.bsize < needBytes) {
    throw new Error(`${tmpdir()} has ${Math.floor((fsInfo.bavail * fsInfo.bsize) / MiB)} MiB free; this bench needs ${Math.ceil(needBytes / MiB)} MiB`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-dataplane-'));
  const loadBefore = loadAverage1m();
  try {
    const source = join(dir, 'disk.raw');
    const image = join(dir, 'image.raw');
    const copy = join(dir, 'cp.raw');
    console.log(`bench/dataplane-transfer: generating a ${params.sizeMiB} MiB test disk in ${dir}`);
    const segments = await writeTestDisk(source, { sizeBytes, seed: 12345 });
    const mix: Partial<Record<SegmentKind, number>> = {};
    for (const s of segments) mix[s.kind] = (mix[s.kind] ?? 0) + s.lengthBytes;
    const mixPercent = Object.fromEntries(Object.entries(mix).map(([k, v]) => [k, round((100 * v) / sizeBytes, 1)]));
    console.log(`  mix (% of bytes): ${JSON.stringify(mixPercent)}; allocated ${Math.round((statSync(source).blocks * 512) / MiB)} MiB`);
    // Warm the page cache for both contenders.
    for await (const _block of readBlocks(source)) void _block;

    const results: RunResult[] = [];
    let firstSender: SideReport | undefined;
    let wireBytes = 0;
    for (let run = 1; run <= params.runs; run++) {
      const ferryFirst = run % 2 === 1;
      const loadAtStart = loadAverage1m();
      let ferry: TwoProcessRun | undefined;
      let cpSeconds = 0;
      for (const contender of ferryFirst ? ['ferry', 'cp'] : ['cp', 'ferry']) {
        rmSync(image, { force: true });
        rmSync(copy, { force: true });
        execFileSync('sync');
        if (contender === 'cp') {
          cpSeconds = await cpRun(source, copy);
          continue;
        }
        ferry = await twoProcessRun(['--role', 'receiver', '--image', image, ...argv], ['--role', 'sender', '--source', source, ...argv]);
        if (run === 1) {
          // Correctness once, outside the timing: the image is byte-identical to the source.
          execFileSync('cmp', [source, image]);
          firstSender = ferry.sender;
          wireBytes = Number(ferry.sender.stats['wireBytesSent']);
        }
      }
      if (ferry === undefined) throw new Error('ferry did not run');
      // The same bytes over the same transport with nothing else done: what Node's TCP allows here and now.
      const tcp = await twoProcessRun(['--role', 'tcp-sink'], ['--role', 'tcp-source', '--bytes', String(wireBytes)]);
      const ferryMiBps = params.sizeMiB / ferry.seconds;
      const cpMiBps = params.sizeMiB / cpSeconds;
      const result: RunResult = {
        run,
        order: ferryFirst ? 'ferry,cp,tcp' : 'cp,ferry,tcp',
        loadAverage1m: loadAtStart,
        ferrySeconds: round(ferry.seconds, 3),
        ferryMiBps: round(ferryMiBps, 0),
        cpSeconds: round(cpSeconds, 3),
        cpMiBps: round(cpMiBps, 0),
        ratio: round(ferryMiBps / cpMiBps, 3),
        tcpSeconds: round(tcp.seconds, 3),
        ferryOverTcp: round(tcp.seconds / ferry.seconds, 3),
        sender: usageOf(ferry.sender),
        receiver: usageOf(ferry.receiver),
        tcpSink: usageOf(tcp.receiver),
      };
      results.push(result);
      console.log(
        `  run ${run} (${result.order}, load ${loadAtStart}): ferry ${result.ferrySeconds} s = ${result.ferryMiBps} MiB/s, cp+sync ${result.cpSeconds} s = ${result.cpMiBps} MiB/s, ` +
          `ratio ${result.ratio}; bare TCP of the same bytes ${result.tcpSeconds} s (ferry/tcp ${result.ferryOverTcp}); ` +
          `cpu ms sender ${result.sender.cpuUserMs}+${result.sender.cpuSystemMs}, receiver ${result.receiver.cpuUserMs}+${result.receiver.cpuSystemMs}, ` +
          `tcp sink ${result.tcpSink.cpuUserMs}+${result.tcpSink.cpuSystemMs}; rss sender ${Math.round(result.sender.maxRssBytes / MiB)} MiB, receiver ${Math.round(result.receiver.maxRssBytes / MiB)} MiB`,
      );
    }

    const ferryMedian = median(results.map((r) => r.ferryMiBps));
    const cpMedian = median(results.map((r) => r.cpMiBps));
    const ratio = round(ferryMedian / cpMedian, 3);
    const pairRatioMedian = round(median(results.map((r) => r.ratio)), 3);
    const ferryOverTcpMedian = round(median(results.map((r) => r.ferryOverTcp)), 3);
    const senderRssMax = Math.max(...results.map((r) => r.sender.maxRssBytes));
    console.log(`\nmedian over ${params.runs} runs: ferry ${ferryMedian} MiB/s, cp --sparse=always + sync ${cpMedian} MiB/s`);
    console.log(`ratio ferry/cp = ${ratio} (median of per-run ratios ${pairRatioMedian}); target >= ${targetRatio}: ${ratio >= targetRatio ? 'met' : 'NOT met'}`);
    console.log(`ferry's speed as a fraction of bare Node TCP carrying the same bytes: ${ferryOverTcpMedian}`);
    console.log(`sender (agent side) peak RSS ${Math.round(senderRssMax / MiB)} MiB (limit 200 MiB)`);

    const report = {
      bench: 'dataplane-transfer',
      date: new Date().toISOString(),
      machine: machineInfo(loadBefore),
      parameters: {
        ...params,
        diskMix: mixPercent,
        allocatedMiB: Math.round((statSync(source).blocks * 512) / MiB),
        transport: 'loopback TCP, sender and receiver in separate Node processes',
        receiver: `raw image, fdatasync per batch before ack, verifyChunks=${params.verifyChunks}`,
        baseline: 'cp --sparse=always SRC DST && sync DST (whole shell command timed)',
        reference: 'bare TCP between two Node processes carrying the same number of bytes (reused 4 MiB buffer, counting sink), run after each pair',
        source: 'warm in page cache for both',
        targetRatio,
      },
      medians: { ferryMiBps: ferryMedian, cpMiBps: cpMedian, ratio, pairRatioMedian, meetsTarget: ratio >= targetRatio, ferryOverTcp: ferryOverTcpMedian },
      senderPeakRssBytes: senderRssMax,
      firstRunSenderStats: firstSender?.stats,
      results,
    };
    writeReport('dataplane-transfer', report);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const params = benchOptions(usage, readParams);
const port = Number(values.port);
if (values.role === 'receiver') await listenOnce((socket, started) => ferryReceive(socket, started, values.image ?? '', params));
else if (values.role === 'sender') await connectOnGo(port, (socket, started) => ferrySend(socket, started, values.source ?? '', params));
else if (values.role === 'tcp-sink') await listenOnce(tcpSink);
else if (values.role === 'tcp-source') await connectOnGo(port, (socket, started) => tcpSource(socket, started, Number(values.bytes)));
else await main(params);
