import { join, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Clock } from '../core/clock.ts';
import { clockFromEnv } from '../core/offset-clock.ts';
import { builtinHandlers } from '../engine/builtin-handlers.ts';
import type { ComputeDriver } from '../fleet/compute-driver.ts';
import { SimComputeDriver } from '../fleet/sim-driver.ts';
import { JobStore } from '../engine/job-store.ts';
import { type JobHandler, Worker } from '../engine/worker.ts';
import { KeyDirectory } from '../identity/access-keys.ts';
import { loadMasterKey, openSecretBox } from '../identity/master-key.ts';
import { NonceLedger } from '../identity/nonces.ts';
import { type RateLimits, defaultRateLimits } from '../identity/rate-limit.ts';
import type { SecretBox } from '../identity/secret-box.ts';
import { migrationHandlers } from '../migration/job-handlers.ts';
import { type Database, openDatabase } from '../store/database.ts';
import { type ServerMetrics, createMetrics } from './common/metrics.ts';

export interface RuntimeOptions {
  readonly dataDir: string;
  readonly dbUrl?: string | undefined;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly leaseMs?: number;
  readonly pollMs?: number;
  readonly workerConcurrency?: number;
  /** Run a job worker in this process (default true). */
  readonly worker?: boolean;
  readonly rateLimits?: RateLimits;
  /** The registry ContainerImage jobs push to; default FERRY_REGISTRY_URL, none when unset. */
  readonly registryUrl?: string | undefined;
}

/** Request limits from FERRY_RATE_USER_RPS, FERRY_RATE_USER_BURST, FERRY_RATE_API_RPS, FERRY_RATE_API_BURST. */
export function rateLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): RateLimits {
  const pick = (name: string, fallback: number): number => {
    const value = Number(env[name]);
    return Number.isFinite(value) && value > 0 ? value : fallback;
  };
  return {
    userPerSecond: pick('FERRY_RATE_USER_RPS', defaultRateLimits.userPerSecond),
    userBurst: pick('FERRY_RATE_USER_BURST', defaultRateLimits.userBurst),
    apiPerSecond: pick('FERRY_RATE_API_RPS', defaultRateLimits.apiPerSecond),
    apiBurst: pick('FERRY_RATE_API_BURST', defaultRateLimits.apiBurst),
  };
}

/** FERRY_REGISTRY_URL, or undefined when it is unset or empty. */
export function registryUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const url = env['FERRY_REGISTRY_URL'];
  return url === undefined || url === '' ? undefined : url;
}

/** Everything a running Ferry node holds: database, keys, job engine, metrics, logger. */
export interface Runtime {
  readonly dataDir: string;
  readonly database: Database;
  readonly clock: Clock;
  readonly secrets: SecretBox;
  /** Access keys and their policies, for every signed request. */
  readonly keys: KeyDirectory;
  /** Signature nonces seen in the timestamp window, recorded in the database. */
  readonly nonces: NonceLedger;
  readonly jobs: JobStore;
  /** Moves instance disks between host storage pools (`<dataDir>/pools/<hostId>`). */
  readonly driver: ComputeDriver;
  readonly worker: Worker | undefined;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
  readonly rateLimits: RateLimits;
  close(graceMs?: number): Promise<void>;
}

/** Open the database (migrating it), bind the master key, and start the worker. */
export async function openRuntime(options: RuntimeOptions): Promise<Runtime> {
  const dataDir = resolve(options.dataDir);
  const clock = options.clock ?? clockFromEnv();
  const logger = options.logger ?? pino({ name: 'ferry' });
  const database = await openDatabase({ url: options.dbUrl, dataDir });
  try {
    const secrets = await openSecretBox(database.db, loadMasterKey(dataDir));
    const jobs = new JobStore(database, clock);
    const metrics = createMetrics(jobs);
    const driver = new SimComputeDriver({ dataDir, clock });
    const handlers = new Map<string, JobHandler>([...builtinHandlers, ...migrationHandlers({ database, clock, jobs, dataDir, driver, registryUrl: options.registryUrl ?? registryUrlFromEnv() })]);
    const worker =
      options.worker === false
        ? undefined
        : new Worker(jobs, handlers, {
            clock,
            ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
            ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
            ...(options.workerConcurrency === undefined ? {} : { concurrency: options.workerConcurrency }),
            events: {
              claimed: (job, takeover) => {
                if (takeover) {
                  metrics.leaseTakeovers.inc({ kind: job.kind });
                  logger.warn({ jobId: job.id, kind: job.kind, attempt: job.attempts }, 'took over job after lease expiry');
                }
              },
              finished: (job, outcome) => {
                metrics.jobsFinished.inc({ kind: job.kind, outcome });
                if (outcome === 'lost') logger.warn({ jobId: job.id, kind: job.kind }, 'lease lost: result discarded, another worker owns the job');
              },
              error: (err, jobId) => logger.error({ err, jobId }, 'job engine error'),
            },
          });
    return {
      dataDir,
      database,
      clock,
      secrets,
      keys: new KeyDirectory(database.db, secrets),
      nonces: new NonceLedger(database.db, clock),
      jobs,
      driver,
      worker,
      metrics,
      logger,
      rateLimits: options.rateLimits ?? rateLimitsFromEnv(),
      close: async (graceMs = 10_000) => {
        await worker?.stop(graceMs);
        await database.close();
      },
    };
  } catch (err) {
    await database.close();
    throw err;
  }
}

export function defaultDataDir(): string {
  return join(process.cwd(), 'data');
}
