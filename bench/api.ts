/**
 * bench/api: signed POP Describe calls per second against a real `ferry serve` (SQLite, default
 * settings but generous throttling limits), with p50/p99 latency at 50 concurrent clients, as a
 * ratio to a bare Fastify route answering the same bytes, measured in the same run.
 *
 * Both servers are child processes; one load generator in this process signs every request the
 * same way for both (V1, HMAC-SHA1, a fresh SignatureNonce and Timestamp each, keep-alive sockets),
 * so the ratio is the cost of Ferry's door and service: signature check, nonce record in the
 * database, key and policy lookup, throttling, schema decoding, the query, the envelope, the log line.
 * Targets alternate in rounds (baseline, Ferry, baseline, Ferry, ...) so a change in the
 * machine's load hits both alike.
 *
 * Usage: npx tsx bench/api.ts [--requests 10000] [--concurrency 50] [--rounds 4] [--action DescribeSourceServers]
 * Writes bench/results/api.json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { popEncode } from '../src/api/common/percent-encoding.ts';
import { v1Signature, v1StringToSign } from '../src/api/alibaba/signature-v1.ts';
import { type CreatedKey, type FerryWithKey, popClient, startFerryWithKey } from '../test/support/api.ts';
import { contractSource, machineFacts } from '../test/support/smc.ts';
import { benchOptions, positiveInt } from './support/args.ts';
import { loadAverage1m, machineInfo, printTable, processCpuMs, round, writeReport } from './support/report.ts';

const targetRatio = 0.5;
const warmupRequests = 500;
/** Of the 5 sources on the page, how many have a replication job and tags (the rest are new, with neither). */
const withJobsAndTags = 3;

interface Params {
  readonly requests: number;
  readonly concurrency: number;
  readonly rounds: number;
  readonly action: string;
}

const usage = `Usage: npx tsx bench/api.ts [--requests 10000] [--concurrency 50] [--rounds 4] [--action DescribeSourceServers]
Signed POP calls per second against a real ferry serve and a bare Fastify route answering the same bytes,
in alternating rounds; writes bench/results/api.json.`;

function readParams(): Params {
  const { values } = parseArgs({
    options: { requests: { type: 'string' }, concurrency: { type: 'string' }, rounds: { type: 'string' }, action: { type: 'string' } },
  });
  return {
    requests: positiveInt('--requests', values.requests ?? '10000'),
    concurrency: positiveInt('--concurrency', values.concurrency ?? '50'),
    rounds: positiveInt('--rounds', values.rounds ?? '4'),
    action: values.action ?? 'DescribeSourceServers',
  };
}

/** The path and query of one V1-signed GET, as pop-core sends it: fresh nonce and timestamp. */
function signedPath(key: CreatedKey, action: string): string {
  const params: Record<string, string> = {
    Action: action,
    RegionId: 'cn-hangzhou',
    PageSize: '10',
    Format: 'JSON',
    Version: '2019-06-01',
    AccessKeyId: key.accessKeyId,
    SignatureMethod: 'HMAC-SHA1',
    SignatureVersion: '1.0',
    SignatureNonce: randomUUID(),
    Timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  params['Signature'] = v1Signature(v1StringToSign('GET', params), key.accessKeySecret);
  return `/?${Object.entries(params)
    .map(([k, v]) => `${popEncode(k)}=${popEncode(v)}`)
    .join('&')}`;
}

interface Answer {
  readonly status: number;
  readonly body: Buffer;
}

function get(agent: Agent, base: URL, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: base.hostname, port: base.port, path, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

interface Round {
  readonly seconds: number;
  readonly latenciesMs: number[];
  readonly clientCpuMs: number;
  readonly serverCpuMs: number;
}

/** `requests` signed calls from `concurrency` loops, each waiting for its answer before the next. */
async function load(base: URL, serverPid: number | undefined, key: CreatedKey, action: string, requests: number, concurrency: number): Promise<Round> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latenciesMs: number[] = [];
  let issued = 0;
  const cpu = process.cpuUsage();
  const serverCpuBefore = processCpuMs(serverPid);
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (issued < requests) {
          issued += 1;
          const t0 = performance.now();
          const answer = await get(agent, base, signedPath(key, action));
          latenciesMs.push(performance.now() - t0);
          if (answer.status !== 200) throw new Error(`${base.href} answered ${answer.status}: ${answer.body.toString().slice(0, 300)}`);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - started) / 1000, latenciesMs, clientCpuMs: (used.user + used.system) / 1000, serverCpuMs: processCpuMs(serverPid) - serverCpuBefore };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

interface TargetResult {
  readonly target: 'bare fastify' | 'ferry';
  readonly requests: number;
  readonly seconds: number;
  readonly perSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly clientCpuMsPerRequest: number;
  /** The server process's CPU time per call: steadier than calls/s when other work shares the machine. */
  readonly serverCpuMsPerRequest: number;
  readonly roundsPerSec: number[];
}

function summarise(target: TargetResult['target'], rounds: readonly Round[]): TargetResult {
  const seconds = rounds.reduce((sum, r) => sum + r.seconds, 0);
  const latencies = rounds.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  return {
    target,
    requests: latencies.length,
    seconds: round(seconds, 2),
    perSec: round(latencies.length / seconds, 0),
    p50Ms: round(percentile(latencies, 50), 2),
    p99Ms: round(percentile(latencies, 99), 2),
    clientCpuMsPerRequest: round(rounds.reduce((sum, r) => sum + r.clientCpuMs, 0) / latencies.length, 3),
    serverCpuMsPerRequest: round(rounds.reduce((sum, r) => sum + r.serverCpuMs, 0) / latencies.length, 3),
    roundsPerSec: rounds.map((r) => round(r.latenciesMs.length / r.seconds, 0)),
  };
}

function startBare(bodyFile: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'bare-fastify.ts'), bodyFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match?.[1] !== undefined) resolve({ url: match[1], child });
    });
    child.once('exit', (code) => reject(new Error(`bare fastify exited with ${code}: ${out}`)));
  });
}

async function main(): Promise<void> {
  const params = benchOptions(usage, readParams);
  const loadBefore = loadAverage1m();
  const scratch = mkdtempSync(join(tmpdir(), 'ferry-bench-api-'));
  let ferry: FerryWithKey | undefined;
  let bare: ChildProcess | undefined;
  console.log(`bench/api: ${params.action}, ${params.rounds} rounds x ${params.requests} signed GETs per target, ${params.concurrency} concurrent clients`);
  try {
    const unlimited = '1000000';
    ferry = await startFerryWithKey({
      env: { FERRY_RATE_USER_RPS: unlimited, FERRY_RATE_USER_BURST: unlimited, FERRY_RATE_API_RPS: unlimited, FERRY_RATE_API_BURST: unlimited, FERRY_AGENT_HEARTBEAT_SECONDS: '3600' },
    });
    // A page as a migration team sees it: most sources have a job and tags, some are new.
    const client = popClient(ferry.server.url, ferry.key);
    for (let i = 0; i < 5; i += 1) {
      const sourceId = await contractSource(ferry, ferry.key, `bench-source-${i}`, machineFacts([40 * 1024 ** 3, 100 * 1024 ** 3]));
      if (i >= withJobsAndTags) continue;
      await client.request('CreateReplicationJob', { RegionId: 'cn-hangzhou', SourceId: sourceId, ImageName: `bench-image-${i}`, SystemDiskSize: 40, DataDisk: [{ Index: 1, Size: 100 }] });
      await client.request('TagResources', { ResourceType: 'sourceserver', ResourceId: [sourceId], Tag: [{ Key: 'team', Value: `team-${i}` }, { Key: 'wave', Value: String(i % 2) }] });
    }
    const ferryUrl = new URL(ferry.server.url);
    const sample = await get(new Agent(), ferryUrl, signedPath(ferry.key, params.action));
    if (sample.status !== 200) throw new Error(`Ferry answered ${sample.status}: ${sample.body.toString()}`);
    const bodyFile = join(scratch, 'body.json');
    writeFileSync(bodyFile, sample.body);
    const started = await startBare(bodyFile);
    bare = started.child;
    const bareUrl = new URL(started.url);

    const targets = [
      { name: 'bare fastify' as const, url: bareUrl, pid: bare.pid },
      { name: 'ferry' as const, url: ferryUrl, pid: ferry.server.process.pid },
    ];
    for (const target of targets) await load(target.url, target.pid, ferry.key, params.action, warmupRequests, params.concurrency);
    const rounds: Record<TargetResult['target'], Round[]> = { 'bare fastify': [], ferry: [] };
    for (let r = 0; r < params.rounds; r += 1) {
      for (const target of targets) {
        const result = await load(target.url, target.pid, ferry.key, params.action, params.requests, params.concurrency);
        rounds[target.name].push(result);
        console.log(`  round ${r + 1} ${target.name}: ${round(params.requests / result.seconds, 0)} calls/s`);
      }
    }
    const baseline = summarise('bare fastify', rounds['bare fastify']);
    const measured = summarise('ferry', rounds.ferry);
    const ratio = round(measured.perSec / baseline.perSec, 3);
    console.log('');
    printTable(
      ['target', 'requests', 'seconds', 'calls/s', 'p50 ms', 'p99 ms', 'client cpu ms/call', 'server cpu ms/call'],
      [baseline, measured].map((t) => [
        t.target,
        String(t.requests),
        t.seconds.toFixed(2),
        String(t.perSec),
        t.p50Ms.toFixed(2),
        t.p99Ms.toFixed(2),
        t.clientCpuMsPerRequest.toFixed(3),
        t.serverCpuMsPerRequest.toFixed(3),
      ]),
    );
    console.log(`\nratio ${ratio} (Ferry calls/s ÷ bare Fastify calls/s), target >= ${targetRatio}: ${ratio >= targetRatio ? 'met' : 'NOT met'}`);
    writeReport('api', {
      bench: 'api',
      date: new Date().toISOString(),
      machine: machineInfo(loadBefore),
      parameters: {
        ...params,
        warmupRequests,
        targetRatio,
        ratio: 'Ferry calls/s ÷ bare Fastify calls/s, each over all its rounds',
        request: `GET /?Action=${params.action}&RegionId=cn-hangzhou&PageSize=10, V1-signed with a fresh nonce and timestamp per call; both targets get the same requests`,
        ferry: `ferry serve on SQLite in a temp data dir, default settings, throttling limits raised to 1e6/s; 5 source servers registered, each with 2 disks, ${withJobsAndTags} of them with a replication job (Ready) and 2 tags`,
        baseline: 'Fastify 5 in its own process, logger off, one GET / route sending the bytes of a Ferry answer',
        client: 'this process: node:http keep-alive Agent with one socket per concurrent client',
        serverCpu: 'user + system CPU of each server process over its rounds (/proc/PID/stat), per call',
      },
      results: { ratio, meetsTarget: ratio >= targetRatio, baseline, ferry: measured },
    });
  } finally {
    bare?.kill('SIGTERM');
    // A graceful stop first, so a server run under --cpu-prof (NODE_OPTIONS) writes its profile.
    await ferry?.server.stop();
    await ferry?.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
