/**
 * bench/engine: how many empty (`noop`) jobs the durable job engine claims and completes per
 * second, on SQLite and on PostgreSQL, with 1 and with 4 workers, against a baseline measured in
 * the same run on the same database: a bare loop of one INSERT and one UPDATE per "job".
 *
 * Usage: npx tsx bench/engine.ts [--jobs 5000] [--poll-ms 5] [--dialects sqlite,postgres]
 *        (or FERRY_BENCH_JOBS, FERRY_BENCH_POLL_MS, FERRY_BENCH_DIALECTS)
 * Writes bench/results/engine.json.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { systemClock } from '../src/core/clock.ts';
import { newId } from '../src/core/ids.ts';
import { builtinHandlers } from '../src/engine/builtin-handlers.ts';
import { JobStore } from '../src/engine/job-store.ts';
import { Worker, type WorkerEvents, defaultWorkerConcurrency } from '../src/engine/worker.ts';
import { type Database, type DialectName, openDatabase } from '../src/store/database.ts';
import { type PostgresServer, startPostgres } from '../test/support/postgres.ts';
import { benchOptions, dialectList, positiveInt } from './support/args.ts';
import { loadAverage1m, machineInfo, printTable, round, writeReport } from './support/report.ts';

const targetRatio = 0.3;
const workerCounts = [1, 4] as const;
const enqueueBatch = 500;

interface Params {
  readonly jobs: number;
  readonly warmupJobs: number;
  readonly pollMs: number;
  readonly dialects: readonly DialectName[];
}

interface ConfigResult {
  readonly dialect: DialectName;
  readonly workers: number;
  /** `shared`: every worker uses one Database; `per-worker`: each worker has its own Database and pool. */
  readonly databaseHandles: 'shared' | 'per-worker';
  readonly jobs: number;
  readonly seconds: number;
  readonly jobsPerSec: number;
  readonly baselineSeconds: number;
  readonly baselinePerSec: number;
  readonly ratio: number;
  readonly meetsTarget: boolean;
  /** CPU of this Node process per job and per baseline pair: steadier than wall time on a busy machine. */
  readonly cpuMsPerJob: number;
  readonly baselineCpuMsPerPair: number;
  /** Jobs each worker runs at once: the engine's default. */
  readonly concurrency: number;
  /** The machine's 1-minute load average when this configuration started: how much it shared the CPUs. */
  readonly loadAverage1m: number;
}

/** Wall seconds and CPU milliseconds of this process spent in one timed phase. */
interface Timing {
  readonly seconds: number;
  readonly cpuMs: number;
}

function startTiming(): () => Timing {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { seconds: (performance.now() - wall) / 1000, cpuMs: (used.user + used.system) / 1000 };
  };
}

const usage = `Usage: npx tsx bench/engine.ts [--jobs 5000] [--poll-ms 5] [--dialects sqlite,postgres]
       (or FERRY_BENCH_JOBS, FERRY_BENCH_POLL_MS, FERRY_BENCH_DIALECTS)
Claims and completes --jobs empty jobs per configuration (each dialect, 1 and 4 workers) against a bare
INSERT + UPDATE loop on the same database; writes bench/results/engine.json.`;

function readParams(): Params {
  const { values } = parseArgs({
    options: {
      jobs: { type: 'string' },
      'poll-ms': { type: 'string' },
      dialects: { type: 'string' },
    },
  });
  const jobs = positiveInt('--jobs', values.jobs ?? process.env['FERRY_BENCH_JOBS'] ?? '5000');
  const pollMs = positiveInt('--poll-ms', values['poll-ms'] ?? process.env['FERRY_BENCH_POLL_MS'] ?? '5');
  const dialects = dialectList(values.dialects ?? process.env['FERRY_BENCH_DIALECTS'] ?? 'sqlite,postgres');
  return { jobs, warmupJobs: Math.min(500, Math.ceil(jobs / 10)), pollMs, dialects };
}

/**
 * Where one configuration's database lives; the baseline and the engine both run there.
 * A SQLite target also names its file, for the baseline's own better-sqlite3 connection.
 */
type Target = { readonly dialect: 'sqlite'; readonly url: string; readonly path: string } | { readonly dialect: 'postgres'; readonly url: string };

const scratchTable = 'bench_scratch';
const createScratch = `create table if not exists ${scratchTable} (id text primary key, state text not null, updated_at bigint not null)`;

/**
 * The baseline: per "job", INSERT a row into a scratch table, then UPDATE it. Each statement
 * autocommits, so a pair costs two commits, as the engine's claim and finish are two transactions
 * per job at best. Ids are made before the clock starts, as the engine's jobs are enqueued before.
 * SQLite: one better-sqlite3 connection with the engine's pragmas (WAL, synchronous=NORMAL); the
 * driver is synchronous, so one loop is all one process can drive. PostgreSQL: one `pg` client
 * per worker, the loops running at once.
 */
async function timeBaseline(target: Target, pairs: number, loops: number): Promise<Timing> {
  const ids = Array.from({ length: pairs }, () => newId('b'));
  if (target.dialect === 'sqlite') {
    const handle = new SqliteDatabase(target.path, { timeout: 10_000 });
    try {
      handle.pragma('journal_mode = WAL');
      handle.pragma('synchronous = NORMAL');
      handle.exec(createScratch);
      const insert = handle.prepare(`insert into ${scratchTable} (id, state, updated_at) values (?, 'queued', ?)`);
      const update = handle.prepare(`update ${scratchTable} set state = 'succeeded', updated_at = ? where id = ?`);
      const stop = startTiming();
      for (const id of ids) {
        insert.run(id, Date.now());
        update.run(Date.now(), id);
      }
      return stop();
    } finally {
      handle.close();
    }
  }
  const clients = Array.from({ length: loops }, () => new pg.Client({ connectionString: target.url }));
  await Promise.all(clients.map((c) => c.connect()));
  try {
    await clients[0]?.query(createScratch);
    const stop = startTiming();
    await Promise.all(
      clients.map(async (client, loop) => {
        for (let i = loop; i < ids.length; i += loops) {
          await client.query(`insert into ${scratchTable} (id, state, updated_at) values ($1, 'queued', $2)`, [ids[i], Date.now()]);
          await client.query(`update ${scratchTable} set state = 'succeeded', updated_at = $1 where id = $2`, [Date.now(), ids[i]]);
        }
      }),
    );
    return stop();
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

/** Enqueue `jobs` noop jobs, then time from worker start until every one has succeeded. */
async function timeEngine(databases: readonly Database[], workers: number, jobs: number, pollMs: number): Promise<Timing> {
  const [first] = databases;
  if (first === undefined) throw new Error('no database');
  const enqueuer = new JobStore(first, systemClock);
  for (let done = 0; done < jobs; done += enqueueBatch) {
    const count = Math.min(enqueueBatch, jobs - done);
    await first.db.transaction().execute(async (trx) => {
      for (let i = 0; i < count; i += 1) await enqueuer.enqueue('noop', null, {}, trx);
    });
  }
  let succeeded = 0;
  let settle: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  const allDone = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const events: WorkerEvents = {
    finished: (_job, state) => {
      if (state === 'succeeded') succeeded += 1;
      else settle?.reject(new Error(`a noop job ended ${state}`));
      if (succeeded === jobs) settle?.resolve();
    },
    error: (err) => settle?.reject(err),
  };
  const pool = Array.from(
    { length: workers },
    (_, i) => new Worker(new JobStore(databases[i % databases.length] ?? first, systemClock), builtinHandlers, { pollMs, events }),
  );
  const stop = startTiming();
  for (const worker of pool) worker.start();
  try {
    await allDone;
    return stop();
  } finally {
    await Promise.all(pool.map((w) => w.stop()));
  }
}

async function countSucceeded(database: Database): Promise<number> {
  const row = await database.db
    .selectFrom('jobs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('state', '=', 'succeeded')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function newTarget(dialect: DialectName, tempRoot: string, server: () => Promise<PostgresServer>, name: string): Promise<Target> {
  if (dialect === 'sqlite') {
    const path = join(tempRoot, name, 'ferry.db');
    return { dialect, url: `sqlite:${path}`, path };
  }
  const { url } = await server();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  return { dialect, url: url.replace(/\/postgres$/, `/${name}`) };
}

/**
 * SQLite workers share one Database: better-sqlite3 is synchronous, so a second connection in
 * the same process would busy-wait on the first's write lock and stall the event loop holding it.
 * PostgreSQL workers each get their own Database and pool, as separate Ferry processes would.
 */
async function runConfig(target: Target, workers: number, params: Params): Promise<ConfigResult> {
  const perWorker = target.dialect === 'postgres';
  const loadAtStart = loadAverage1m();
  const databases: Database[] = [];
  try {
    for (let i = 0; i < (perWorker ? workers : 1); i += 1) databases.push(await openDatabase({ url: target.url }));
    const [first] = databases;
    if (first === undefined) throw new Error('no database');
    // Warm up the JIT, the pools and the caches on both paths before either is timed.
    await timeBaseline(target, params.warmupJobs, workers);
    await timeEngine(databases, workers, params.warmupJobs, params.pollMs);
    const base = await timeBaseline(target, params.jobs, workers);
    const engine = await timeEngine(databases, workers, params.jobs, params.pollMs);
    const total = await countSucceeded(first);
    if (total !== params.jobs + params.warmupJobs) throw new Error(`expected ${params.jobs + params.warmupJobs} succeeded jobs, found ${total}`);
    const jobsPerSec = params.jobs / engine.seconds;
    const baselinePerSec = params.jobs / base.seconds;
    const ratio = jobsPerSec / baselinePerSec;
    return {
      dialect: target.dialect,
      workers,
      databaseHandles: perWorker ? 'per-worker' : 'shared',
      jobs: params.jobs,
      seconds: round(engine.seconds, 3),
      jobsPerSec: round(jobsPerSec, 0),
      baselineSeconds: round(base.seconds, 3),
      baselinePerSec: round(baselinePerSec, 0),
      ratio: round(ratio, 3),
      meetsTarget: ratio >= targetRatio,
      cpuMsPerJob: round(engine.cpuMs / params.jobs, 3),
      baselineCpuMsPerPair: round(base.cpuMs / params.jobs, 3),
      concurrency: defaultWorkerConcurrency,
      loadAverage1m: loadAtStart,
    };
  } finally {
    for (const database of databases) await database.close();
  }
}

function printResults(results: readonly ConfigResult[]): void {
  const header = ['dialect', 'workers', 'databases', 'jobs', 'seconds', 'jobs/s', 'baseline pairs/s', 'ratio', `>= ${targetRatio}`, 'cpu ms/job', 'baseline cpu ms/pair', 'concurrency', 'load 1m'];
  const rows = results.map((r) => [
    r.dialect,
    String(r.workers),
    r.databaseHandles,
    String(r.jobs),
    r.seconds.toFixed(2),
    String(r.jobsPerSec),
    String(r.baselinePerSec),
    r.ratio.toFixed(3),
    r.meetsTarget ? 'yes' : 'NO',
    r.cpuMsPerJob.toFixed(3),
    r.baselineCpuMsPerPair.toFixed(3),
    String(r.concurrency),
    r.loadAverage1m.toFixed(2),
  ]);
  printTable(header, rows);
}

async function main(): Promise<void> {
  const params = benchOptions(usage, readParams);
  const tempRoot = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
  let server: Promise<PostgresServer> | undefined;
  const results: ConfigResult[] = [];
  const loadBefore = loadAverage1m();
  console.log(`bench/engine: ${params.jobs} noop jobs per config (warm-up ${params.warmupJobs}), pollMs ${params.pollMs}, ${cpus().length} cpus, node ${process.version}`);
  try {
    for (const dialect of params.dialects) {
      for (const workers of workerCounts) {
        const target = await newTarget(dialect, tempRoot, () => (server ??= startPostgres()), `bench_${dialect}_${workers}w`);
        const result = await runConfig(target, workers, params);
        console.log(`  ${dialect} x${workers}: ${result.jobsPerSec} jobs/s, baseline ${result.baselinePerSec} pairs/s, ratio ${result.ratio}`);
        results.push(result);
      }
    }
  } finally {
    if (server !== undefined) (await server).stop();
    rmSync(tempRoot, { recursive: true, force: true });
  }
  console.log('');
  printResults(results);
  const met = results.filter((r) => r.meetsTarget).length;
  console.log(`\ntarget: ratio >= ${targetRatio} (engine jobs/s ÷ baseline pairs/s); met in ${met} of ${results.length} configs`);
  const report = {
    bench: 'engine',
    date: new Date().toISOString(),
    machine: machineInfo(loadBefore),
    parameters: {
      jobs: params.jobs,
      warmupJobs: params.warmupJobs,
      pollMs: params.pollMs,
      workerCounts,
      workerOptions: `Worker defaults (concurrency ${defaultWorkerConcurrency}, leaseMs 30000) except pollMs`,
      handlers: 'builtinHandlers; every job is kind noop',
      targetRatio,
      ratio: 'engine jobs/s ÷ baseline pairs/s',
      cpu: 'cpuMsPerJob and baselineCpuMsPerPair count this Node process only, not the PostgreSQL server',
      baseline:
        'per job one INSERT then one UPDATE on a scratch table, each autocommitted; SQLite: better-sqlite3 directly, WAL, synchronous=NORMAL, one loop; PostgreSQL: pg directly, one client per worker running at once',
      databases:
        'SQLite: a temp file, all workers share one Database (one connection); PostgreSQL: throwaway server (fsync off, synchronous_commit off), each worker its own Database with the default pool of 10',
    },
    results,
  };
  writeReport('engine', report);
}

await main();
