/**
 * A throwaway PostgreSQL for tests: initdb + pg_ctl on a temp dir and a free port, no docker.
 * The test runner starts one per run and exports FERRY_TEST_PG_URL; a test file run on its own
 * starts a private one. Each caller gets a fresh database inside it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface PostgresServer {
  /** Superuser URL of the `postgres` database, over TCP. */
  readonly url: string;
  /**
   * The same over the server's Unix socket (`postgres://postgres@%2Fsocket%2Fdir:port/postgres`,
   * the form a user's `--db` takes too); undefined for a server given by FERRY_TEST_PG_URL.
   */
  readonly socketUrl?: string;
  stop(): void;
}

function findPgBin(): string {
  const fromEnv = process.env['FERRY_PG_BIN'];
  if (fromEnv !== undefined && existsSync(join(fromEnv, 'initdb'))) return fromEnv;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0] !== undefined) return join(root, versions[0], 'bin');
  }
  throw new Error('PostgreSQL server binaries not found: run scripts/install-test-deps.sh (apt-get install postgresql)');
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

const isRoot = process.getuid?.() === 0;

/** initdb and postgres refuse to run as root: run them as the `postgres` user then. */
function runPg(bin: string, args: string[]): void {
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const out = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed: ${out.stderr || out.stdout}`);
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = findPgBin();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-pg-'));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o755);
  runPg(join(bin, 'initdb'), ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  const conf = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${dir}'`,
    'max_connections = 400',
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    'shared_buffers = 128MB',
  ].join('\n');
  writeFileSync(join(dataDir, 'postgresql.auto.conf'), `${conf}\n`);
  if (isRoot) runPg('/bin/chown', ['postgres:postgres', join(dataDir, 'postgresql.auto.conf')]);
  runPg(join(bin, 'pg_ctl'), ['-D', dataDir, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    socketUrl: `postgres://postgres@${encodeURIComponent(dir)}:${port}/postgres`,
    stop: () => {
      if (stopped) return;
      stopped = true;
      try {
        runPg(join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

let shared: Promise<PostgresServer> | undefined;

/** The run's PostgreSQL (FERRY_TEST_PG_URL), or a private one stopped when this process exits. */
export function testPostgres(): Promise<PostgresServer> {
  const url = process.env['FERRY_TEST_PG_URL'];
  if (url !== undefined && url !== '') return Promise.resolve({ url, stop: () => undefined });
  shared ??= startPostgres().then((server) => {
    process.once('exit', () => server.stop());
    return server;
  });
  return shared;
}

/** A new empty database in the test PostgreSQL; returns its URL. */
export async function freshPostgresDatabase(prefix = 't'): Promise<string> {
  const server = await testPostgres();
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  return server.url.replace(/\/postgres$/, `/${name}`);
}
