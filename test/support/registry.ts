/** A real Docker Registry v2 (Debian's `docker-registry`) on 127.0.0.1, with its storage in a temp dir. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sleep } from '../../src/core/clock.ts';

const run = promisify(execFile);

export interface RegistryProcess {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** 127.0.0.1:PORT, as image references name it. */
  readonly host: string;
  /** Start it again on the same port and storage (after stop). */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Stop it and remove its storage. */
  close(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function startRegistry(): Promise<RegistryProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-registry-'));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'storage')}`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let output = '';
  const launch = async (): Promise<void> => {
    const proc = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child = proc;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`docker-registry exited with ${proc.exitCode}:\n${output}`);
      const ok = await fetch(`${url}/v2/`).then((r) => r.status === 200, () => false);
      if (ok) return;
      await sleep(100);
    }
    throw new Error(`docker-registry did not answer on ${url} in 20 s:\n${output}`);
  };
  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  };
  await launch();
  return {
    url,
    host: `127.0.0.1:${port}`,
    restart: launch,
    stop,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Run a command to completion; its stdout. */
export async function runTool(file: string, args: readonly string[]): Promise<string> {
  const { stdout } = await run(file, [...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}
