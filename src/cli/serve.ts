import { buildApp } from '../api/app.ts';
import { openRuntime } from '../api/runtime.ts';
import { demoBanner, setUpDemo } from './demo.ts';
import { parseListenAddress } from './listen-address.ts';

export interface ServeOptions {
  readonly listen: string;
  readonly data: string;
  readonly db?: string;
  readonly leaseMs?: number;
  readonly pollMs?: number;
  readonly workerConcurrency?: number;
  readonly shutdownGraceMs: number;
  readonly registry?: string;
  /** Apply the demo fleet and print a ready access key (see demo.ts). */
  readonly demo?: boolean;
}

/**
 * Start a Ferry node: HTTP front doors plus a job worker. SIGTERM or SIGINT stops claiming,
 * lets running jobs finish (or hands them back after the grace period), then closes the database.
 */
export async function serve(options: ServeOptions): Promise<void> {
  const { host, port } = parseListenAddress(options.listen);
  const runtime = await openRuntime({
    dataDir: options.data,
    dbUrl: options.db,
    ...(options.registry === undefined ? {} : { registryUrl: options.registry }),
    ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
    ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
    ...(options.workerConcurrency === undefined ? {} : { workerConcurrency: options.workerConcurrency }),
  });
  const demo = options.demo === true ? await setUpDemo(runtime) : undefined;
  const app = buildApp(runtime);
  await app.listen({ host, port });
  const address = app.server.address();
  const boundPort = address !== null && typeof address === 'object' ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  runtime.worker?.start();
  runtime.logger.info({ url, database: runtime.database.dialect, location: runtime.database.location, worker: runtime.worker?.owner }, 'ferry started');
  const dbFlag = options.db === undefined ? '' : ' --db <same URL>';
  process.stderr.write(
    `ferry: listening on ${url} (${runtime.database.dialect}: ${runtime.database.location})\n` +
      `ferry: create an access key with: npx ferry admin create-key --data ${options.data}${dbFlag} --json\n` +
      (demo === undefined ? '' : demoBanner(demo, url)),
  );

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    runtime.logger.info({ signal }, 'shutting down: no new jobs claimed, running jobs finish or are handed back');
    void Promise.all([app.close(), runtime.worker?.stop(options.shutdownGraceMs)])
      .then(() => runtime.database.close())
      .then(
        () => {
          runtime.logger.info('stopped');
          process.exit(0);
        },
        (err: unknown) => {
          runtime.logger.error({ err }, 'unclean shutdown');
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
