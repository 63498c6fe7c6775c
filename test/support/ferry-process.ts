/** Start real `ferry` processes for integration and crash tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..', '..');
export const ferryBin = join(repoRoot, 'bin', 'ferry.mjs');

export interface FerryServer {
  readonly url: string;
  readonly process: ChildProcess;
  /** stdout (JSON logs) and stderr collected so far. */
  output(): string;
  /** The worker's lease owner name, as /healthz reports it. */
  owner(): Promise<string>;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

export interface ServeArgs {
  readonly data: string;
  readonly db?: string;
  readonly extra?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

export function startFerry(args: ServeArgs): Promise<FerryServer> {
  // FERRY_SERVE_NODE_ARGS passes flags such as --cpu-prof to the server's node, for profiling benchmarks.
  const nodeArgs = (process.env['FERRY_SERVE_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const argv = [...nodeArgs, ferryBin, 'serve', '--listen', '127.0.0.1:0', '--data', args.data, ...(args.db === undefined ? [] : ['--db', args.db]), ...(args.extra ?? [])];
  const child = spawn(process.execPath, argv, { cwd: repoRoot, env: { ...process.env, ...args.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ferry serve did not start in 60 s:\n${out}`));
    }, 60_000);
    const onData = (): void => {
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match?.[1] === undefined) return;
      clearTimeout(timer);
      child.stderr.off('data', onData);
      const url = match[1];
      resolve({
        url,
        process: child,
        output: () => out,
        owner: async () => ((await (await fetch(`${url}/healthz`)).json()) as { worker: string }).worker,
        stop: async () => {
          child.kill('SIGTERM');
          return exited;
        },
        kill: (signal) => child.kill(signal),
        exited,
      });
    };
    child.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`ferry serve exited with ${code} before listening:\n${out}`));
    });
  });
}

/** Sum a counter family from a /metrics text, optionally only samples whose labels include `labelFilter`. */
export async function metricSum(url: string, name: string, labelFilter = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const [series, value] = line.split(' ');
    if (series !== undefined && series.includes(labelFilter) && value !== undefined) sum += Number(value);
  }
  return sum;
}
