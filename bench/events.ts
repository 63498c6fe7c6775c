/**
 * bench/events: ENS maintenance at scale. A generated fleet of 1,000 hosts in 10 zones holds
 * 10,000 instances (40 on each of the first 250 hosts, one 1 GiB sparse system disk each, no
 * data: the numbers are the control plane's, not the disks'). The source hosts go into
 * maintenance (one Instance:SystemUpgrade.Migrate event per instance), then every event is
 * answered "migrate now" (answerEvents, 100 per call, as BatchEventMigrateInstance does) and the
 * clock runs until the last one is Executed. The Ferry nodes are separate processes running the
 * same worker as `ferry serve`, with the sim driver: 1 on SQLite, 2 on one PostgreSQL.
 *
 * Reported per dialect: total seconds; CPU milliseconds per migration of every Ferry process (the
 * nodes and the answering client; the PostgreSQL server's own CPU is not counted), and of that the
 * control plane's share (target ≤ 5): the total less the sim driver's disk work, measured alone in
 * the same run; wall milliseconds per migration; peak RSS; and a baseline measured in the same run
 * on the same database: the CPU cost of one empty (`noop`) engine job, so `ratio` says how many bare
 * engine jobs one migration's control plane costs.
 *
 * Usage: npx tsx bench/events.ts [--events 10000] [--hosts 1000] [--dialects sqlite,postgres]
 *        [--concurrency 16] [--poll-ms 20] [--pg-via socket|tcp]
 * PostgreSQL is reached over its Unix socket by default (a `postgres://user@%2Fsocket%2Fdir:port/db`
 * URL, as a node beside its database would be configured); `--pg-via tcp` uses 127.0.0.1.
 * Writes bench/results/events.json.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { openRuntime } from '../src/api/runtime.ts';
import { systemClock } from '../src/core/clock.ts';
import { builtinHandlers } from '../src/engine/builtin-handlers.ts';
import { JobStore } from '../src/engine/job-store.ts';
import { Worker } from '../src/engine/worker.ts';
import { applyFleet } from '../src/fleet/apply-fleet.ts';
import type { FleetSpec } from '../src/fleet/fleet-spec.ts';
import { setHostState } from '../src/fleet/set-host-state.ts';
import { SimComputeDriver } from '../src/fleet/sim-driver.ts';
import { answerEvents } from '../src/migration/events.ts';
import { onHostStateChanged } from '../src/migration/events-host-state.ts';
import type { ServiceContext } from '../src/migration/service-context.ts';
import { type Database, type DialectName, openDatabase } from '../src/store/database.ts';
import { type PostgresServer, startPostgres } from '../test/support/postgres.ts';
import { benchOptions, dialectList, positiveInt } from './support/args.ts';
import { loadAverage1m, machineInfo, round, writeReport } from './support/report.ts';

const targetCpuMsPerMigration = 5;
const zones = 10;
const instancesPerSourceHost = 40;
const hostShape = { vcpus: 96, memoryGiB: 384, numaNodes: 2 };
const answerBatch = 100;
const baselineJobs = 2_000;

const usage = `Usage: npx tsx bench/events.ts [--events 10000] [--hosts 1000] [--dialects sqlite,postgres]
       [--concurrency 16] [--poll-ms 20] [--pg-via socket|tcp]
Handles --events ENS migrate events on a generated fleet of --hosts hosts with the sim driver (1 Ferry
node on SQLite, 2 on PostgreSQL, reached over its Unix socket unless --pg-via tcp) and writes
bench/results/events.json: seconds, control-plane CPU ms per migration (target <= ${targetCpuMsPerMigration}), peak RSS.`;

interface Params {
  readonly events: number;
  readonly hosts: number;
  readonly dialects: readonly DialectName[];
  readonly concurrency: number;
  readonly pollMs: number;
  readonly pgVia: 'socket' | 'tcp';
}

function readParams(): Params {
  const { values } = parseArgs({
    options: {
      events: { type: 'string' },
      hosts: { type: 'string' },
      dialects: { type: 'string' },
      concurrency: { type: 'string' },
      'poll-ms': { type: 'string' },
      'pg-via': { type: 'string' },
      node: { type: 'boolean' },
    },
  });
  const events = positiveInt('--events', values.events ?? '10000');
  const hosts = positiveInt('--hosts', values.hosts ?? '1000');
  if (Math.ceil(events / instancesPerSourceHost) * 2 > hosts) throw new Error(`--hosts ${hosts} is too few for ${events} events: at least ${Math.ceil(events / instancesPerSourceHost) * 2}`);
  const dialects = dialectList(values.dialects ?? 'sqlite,postgres');
  const pgVia = values['pg-via'] ?? 'socket';
  if (pgVia !== 'socket' && pgVia !== 'tcp') throw new Error(`--pg-via is socket or tcp, not ${pgVia}`);
  return { events, hosts, dialects, concurrency: positiveInt('--concurrency', values.concurrency ?? '16'), pollMs: positiveInt('--poll-ms', values['poll-ms'] ?? '20'), pgVia };
}

function hostId(i: number): string {
  return `h-${String(i).padStart(5, '0')}`;
}

/** Hosts round-robin over the zones; the first `sources` hosts hold the instances. */
function generateFleet(hosts: number, events: number): { spec: FleetSpec; sourceHosts: string[] } {
  const sources = Math.ceil(events / instancesPerSourceHost);
  const zoneIds = Array.from({ length: zones }, (_, z) => `bench-z${z}`);
  const spec: FleetSpec = {
    regions: [
      {
        id: 'bench-region',
        zones: zoneIds.map((id, z) => ({
          id,
          vswitches: [{ id: `vsw-${z}`, vpcId: 'vpc-bench', cidr: `10.${z}.0.0/16` }],
          hosts: Array.from({ length: hosts }, (_, i) => i)
            .filter((i) => i % zones === z)
            .map((i) => ({ id: hostId(i), ...hostShape })),
        })),
      },
    ],
    instanceTypes: [{ id: 'ecs.g7.large', family: 'ecs.g7', vcpus: 2, memoryGiB: 8 }],
    instances: Array.from({ length: events }, (_, n) => {
      const host = Math.floor(n / instancesPerSourceHost);
      return {
        id: `i-${String(n).padStart(6, '0')}`,
        account: 'default',
        host: hostId(host),
        type: 'ecs.g7.large',
        vswitch: `vsw-${host % zones}`,
        status: 'Running' as const,
        disks: [{ id: `d-${String(n).padStart(6, '0')}`, kind: 'system' as const, category: 'cloud_essd' as const, performanceLevel: 'PL1' as const, sizeGiB: 1, fillMiB: 0 }],
      };
    }),
  };
  return { spec, sourceHosts: Array.from({ length: sources }, (_, i) => hostId(i)) };
}

interface NodeReport {
  readonly cpuMs: number;
  readonly maxRssMiB: number;
}

/** One Ferry node: a child process running this file with --node (the worker of `ferry serve`). */
class NodeProcess {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;

  constructor(env: NodeJS.ProcessEnv) {
    this.#child = spawn(process.execPath, [...(process.env['FERRY_BENCH_NODE_ARGS']?.split(' ') ?? []), '--import', 'tsx', import.meta.filename, '--node'], { env: { ...process.env, ...env }, stdio: 'pipe' });
    this.#child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    this.#lines = createInterface({ input: this.#child.stdout })[Symbol.asyncIterator]();
  }

  async #read(): Promise<string> {
    const next = await this.#lines.next();
    if (next.done === true) throw new Error('bench node exited early');
    return next.value;
  }

  async ready(): Promise<void> {
    if ((await this.#read()) !== 'ready') throw new Error('bench node did not start');
  }

  go(): void {
    this.#child.stdin.write('go\n');
  }

  async stop(): Promise<NodeReport> {
    this.#child.stdin.write('stop\n');
    return JSON.parse(await this.#read()) as NodeReport;
  }
}

/** `--node`: open a runtime with its worker, say `ready`; count CPU from `go`; on `stop` report and exit. */
async function runNode(): Promise<void> {
  const runtime = await openRuntime({
    dataDir: process.env['FERRY_BENCH_DATA'] ?? '',
    dbUrl: process.env['FERRY_BENCH_DB'],
    logger: pino({ level: 'warn' }, pino.destination(2)),
    workerConcurrency: Number(process.env['FERRY_BENCH_CONCURRENCY']),
    pollMs: Number(process.env['FERRY_BENCH_POLL_MS']),
  });
  runtime.worker?.start();
  process.stdout.write('ready\n');
  let since = process.cpuUsage();
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'go') since = process.cpuUsage();
    if (line === 'stop') {
      const used = process.cpuUsage(since);
      await runtime.close(1_000);
      process.stdout.write(`${JSON.stringify({ cpuMs: (used.user + used.system) / 1000, maxRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`);
      process.exit(0);
    }
  }
}

function cpuMsSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

async function countEvents(database: Database, statuses: readonly string[]): Promise<number> {
  const row = await database.db.selectFrom('ens_events').select((eb) => eb.fn.countAll<number>().as('n')).where('status', 'in', [...statuses]).executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * The sim driver's own CPU for what one migration asks of it (stop; copy an empty 1 GiB disk to
 * another pool, asking its perl child for the data extents; delete the source; start), timed alone
 * in this process: the share of a migration that is simulated disk work, not control plane.
 */
async function simDriverBaseline(dataDir: string, runs: number): Promise<number> {
  const driver = new SimComputeDriver({ dataDir: join(dataDir, 'driver-baseline') });
  const signal = new AbortController().signal;
  const sources = [];
  for (let i = 0; i < runs; i += 1) {
    const diskId = `b-${i}`;
    const made = await driver.createDisk({ diskId, hostId: 'from', sizeBytes: 1024 ** 3, fillBytes: 0 }, signal);
    sources.push({ diskId, hostId: 'from', path: made.path });
  }
  const cpu = process.cpuUsage();
  for (const [i, source] of sources.entries()) {
    await driver.stop({ instanceId: `i-${i}`, hostId: 'from', diskPaths: [source.path] }, signal);
    const copy = await driver.copyDiskToHost({ source, targetHostId: 'to' }, signal);
    await driver.deleteDisk(source, signal);
    await driver.start({ instanceId: `i-${i}`, hostId: 'to', diskPaths: [copy.target.path] }, signal);
  }
  return cpuMsSince(cpu) / runs;
}

/** The CPU cost of one empty engine job on this database: the unit `ratio` is counted in. */
async function noopBaseline(database: Database, pollMs: number, concurrency: number): Promise<{ cpuMsPerJob: number; seconds: number }> {
  const jobs = new JobStore(database, systemClock);
  for (let done = 0; done < baselineJobs; done += 500) {
    await database.db.transaction().execute(async (trx) => {
      for (let i = 0; i < 500; i += 1) await jobs.enqueue('noop', null, {}, trx);
    });
  }
  let finished = 0;
  let resolveAll: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (resolveAll = resolve));
  const worker = new Worker(jobs, builtinHandlers, { pollMs, concurrency, events: { finished: () => ++finished === baselineJobs && resolveAll() } });
  const wall = performance.now();
  const cpu = process.cpuUsage();
  worker.start();
  await all;
  const cpuMs = cpuMsSince(cpu);
  const seconds = (performance.now() - wall) / 1000;
  await worker.stop();
  return { cpuMsPerJob: cpuMs / baselineJobs, seconds };
}

async function newDatabaseUrl(dialect: DialectName, dataDir: string, server: () => Promise<PostgresServer>, pgVia: Params['pgVia']): Promise<string> {
  if (dialect === 'sqlite') return `sqlite:${join(dataDir, 'ferry.db')}`;
  const started = await server();
  const url = pgVia === 'socket' ? started.socketUrl : started.url;
  if (url === undefined) throw new Error('this PostgreSQL has no Unix socket URL: use --pg-via tcp');
  const name = `bench_events_${Date.now()}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  return url.replace(/\/postgres$/, `/${name}`);
}


async function runDialect(dialect: DialectName, params: Params, tempRoot: string, server: () => Promise<PostgresServer>) {
  const dataDir = join(tempRoot, dialect);
  mkdirSync(dataDir, { recursive: true });
  const url = await newDatabaseUrl(dialect, dataDir, server, params.pgVia);
  const database = await openDatabase({ url });
  const nodes: NodeProcess[] = [];
  try {
    const { spec, sourceHosts } = generateFleet(params.hosts, params.events);
    let started = performance.now();
    await applyFleet(database, new SimComputeDriver({ dataDir }), spec);
    const setupSeconds = (performance.now() - started) / 1000;
    console.log(`  ${dialect}: fleet of ${params.hosts} hosts and ${params.events} instances applied in ${setupSeconds.toFixed(1)} s`);

    started = performance.now();
    let cpu = process.cpuUsage();
    for (const host of sourceHosts) {
      const change = await setHostState(database, host, 'Maintenance');
      await onHostStateChanged({ database, clock: systemClock, jobs: new JobStore(database, systemClock) }, change, { deadlineMs: 24 * 3600_000 });
    }
    const raiseSeconds = (performance.now() - started) / 1000;
    const raiseCpuMs = cpuMsSince(cpu);
    const raised = await countEvents(database, ['Inquiring']);
    if (raised !== params.events) throw new Error(`expected ${params.events} events, raised ${raised}`);

    const nodeCount = dialect === 'postgres' ? 2 : 1;
    const masterKey = randomBytes(32).toString('base64');
    for (let i = 0; i < nodeCount; i += 1) {
      const node = new NodeProcess({
        FERRY_BENCH_DATA: dataDir,
        FERRY_BENCH_DB: url,
        FERRY_BENCH_CONCURRENCY: String(params.concurrency),
        FERRY_BENCH_POLL_MS: String(params.pollMs),
        FERRY_MASTER_KEY: masterKey,
      });
      nodes.push(node);
      await node.ready();
    }

    const account = await database.db.selectFrom('accounts').select('id').where('name', '=', 'default').executeTakeFirstOrThrow();
    const ctx: ServiceContext = { database, clock: systemClock, jobs: new JobStore(database, systemClock), accountId: account.id, requestId: 'bench', dataDir };
    const events = await database.db.selectFrom('ens_events').select(['id', 'instance_id']).orderBy('id').execute();
    for (const node of nodes) node.go();
    started = performance.now();
    cpu = process.cpuUsage();
    for (let at = 0; at < events.length; at += answerBatch) {
      const items = events.slice(at, at + answerBatch).map((e) => ({ eventId: e.id, resourceId: e.instance_id, opsType: 'immediate', dataPolicy: 'force_transfer' }));
      const results = await answerEvents(ctx, 'migrate', items);
      const failed = results.find((r) => r.code !== 200);
      if (failed !== undefined) throw new Error(`answer failed: ${failed.message}`);
    }
    const answerCpuMs = cpuMsSince(cpu);
    const answerSeconds = (performance.now() - started) / 1000;
    let ended = 0;
    let lastReport = performance.now();
    while ((ended = await countEvents(database, ['Executed', 'Failed', 'Avoided'])) < params.events) {
      if (performance.now() - lastReport > 10_000) {
        console.log(`    ${ended} of ${params.events} events ended after ${((performance.now() - started) / 1000).toFixed(0)} s`);
        lastReport = performance.now();
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const seconds = (performance.now() - started) / 1000;
    const pollCpuMs = cpuMsSince(cpu) - answerCpuMs;
    const reports: NodeReport[] = [];
    for (const node of nodes.splice(0)) reports.push(await node.stop());
    const executed = await countEvents(database, ['Executed']);
    const left = await database.db.selectFrom('instances').select((eb) => eb.fn.countAll<number>().as('n')).where('host_id', 'in', sourceHosts).executeTakeFirstOrThrow();
    if (Number(left.n) !== params.events - executed) throw new Error(`${left.n} instances are still on source hosts, ${executed} events executed`);

    const failures = new Map<string, number>();
    for (const { error } of await database.db.selectFrom('ens_events').select('error').where('status', '=', 'Failed').execute()) {
      // Grouped by what went wrong, not by which instance or zone.
      const reason = (error ?? 'no error recorded').replace(/\b(i-\d+|bench-z\d+|h-\d+)/g, '…').slice(0, 160);
      failures.set(reason, (failures.get(reason) ?? 0) + 1);
    }
    const baseline = await noopBaseline(database, params.pollMs, params.concurrency);
    const simDriverCpuMs = await simDriverBaseline(dataDir, Math.min(params.events, 500));
    const nodesCpuMs = reports.reduce((sum, r) => sum + r.cpuMs, 0);
    const cpuMsPerMigration = (nodesCpuMs + answerCpuMs) / params.events;
    const controlPlaneCpuMs = Math.max(0, cpuMsPerMigration - simDriverCpuMs);
    return {
      dialect,
      nodes: nodeCount,
      events: params.events,
      hosts: params.hosts,
      sourceHosts: sourceHosts.length,
      executed,
      failed: params.events - executed,
      setupSeconds: round(setupSeconds, 1),
      raiseMsPerEvent: round((raiseSeconds * 1000) / params.events, 3),
      raiseCpuMsPerEvent: round(raiseCpuMs / params.events, 3),
      seconds: round(seconds, 2),
      answerSeconds: round(answerSeconds, 2),
      migrationsPerSec: round(params.events / seconds, 1),
      wallMsPerMigration: round((seconds * 1000) / params.events, 3),
      controlPlaneCpuMsPerMigration: round(controlPlaneCpuMs, 3),
      meetsTarget: controlPlaneCpuMs <= targetCpuMsPerMigration,
      cpuMsPerMigration: round(cpuMsPerMigration, 3),
      simDriverCpuMsPerMigration: round(simDriverCpuMs, 3),
      nodesCpuMsPerMigration: round(nodesCpuMs / params.events, 3),
      answerCpuMsPerMigration: round(answerCpuMs / params.events, 3),
      peakRssMiB: { client: round(process.resourceUsage().maxRSS / 1024, 0), nodes: reports.map((r) => round(r.maxRssMiB, 0)) },
      coordinatorPollCpuMs: round(pollCpuMs, 0),
      failures: Object.fromEntries(failures),
      baseline: { noopJobs: baselineJobs, cpuMsPerJob: round(baseline.cpuMsPerJob, 3), seconds: round(baseline.seconds, 2) },
      ratio: round(controlPlaneCpuMs / baseline.cpuMsPerJob, 1),
    };
  } finally {
    for (const node of nodes) await node.stop().catch(() => undefined);
    await database.close();
  }
}

async function main(): Promise<void> {
  const params = benchOptions(usage, readParams);
  const tempRoot = mkdtempSync(join(tmpdir(), 'ferry-bench-events-'));
  let server: Promise<PostgresServer> | undefined;
  const loadBefore = loadAverage1m();
  console.log(`bench/events: ${params.events} migrate events on ${params.hosts} hosts, worker concurrency ${params.concurrency}, poll ${params.pollMs} ms, PostgreSQL over ${params.pgVia}, ${availableParallelism()} cpus`);
  const results = [];
  try {
    for (const dialect of params.dialects) {
      const result = await runDialect(dialect, params, tempRoot, () => (server ??= startPostgres()));
      console.log(
        `  ${dialect} (${result.nodes} node${result.nodes > 1 ? 's' : ''}): ${result.seconds} s, ${result.migrationsPerSec} migrations/s, ` +
          `control plane ${result.controlPlaneCpuMsPerMigration} cpu ms/migration (target <= ${targetCpuMsPerMigration}: ${result.meetsTarget ? 'met' : 'NOT met'}; ` +
          `${result.cpuMsPerMigration} with the sim driver's disk work), ` +
          `${result.ratio}x a noop job, peak RSS ${Math.max(result.peakRssMiB.client, ...result.peakRssMiB.nodes)} MiB`,
      );
      results.push(result);
    }
  } finally {
    if (server !== undefined) (await server).stop();
    rmSync(tempRoot, { recursive: true, force: true });
  }
  const report = {
    bench: 'events',
    date: new Date().toISOString(),
    machine: machineInfo(loadBefore),
    parameters: {
      ...params,
      zones,
      instancesPerSourceHost,
      hostShape,
      disks: 'one system disk per instance, sizeGiB 1, fillMiB 0 (sparse, no data)',
      answers: `answerEvents (the service behind BatchEventMigrateInstance), ${answerBatch} per call, OpsType immediate, DataPolicy force_transfer`,
      nodes: 'separate processes, openRuntime with its worker (as ferry serve) and the sim driver; SQLite 1 node, PostgreSQL 2 nodes',
      postgresConnection: params.pgVia === 'socket' ? 'Unix socket (postgres://postgres@%2F<socket dir>:<port>/<db>)' : 'TCP to 127.0.0.1',
      targetCpuMsPerMigration,
      cpu: 'cpuMsPerMigration = CPU of the node processes from the first answer to the last event ended, plus the answering client, over the events; the PostgreSQL server is not counted',
      controlPlane: 'controlPlaneCpuMsPerMigration = cpuMsPerMigration - simDriverCpuMsPerMigration (the sim driver doing one migration\'s disk and power calls alone, timed in this process after the run)',
      baseline: `${baselineJobs} noop jobs through one in-process Worker on the same database after the run; ratio = controlPlaneCpuMsPerMigration / baseline cpuMsPerJob`,
    },
    results,
  };
  writeReport('events', report);
}

if (process.argv.includes('--node')) await runNode();
else await main();
