/** SMC API test helpers: real `ferry agent` processes, disk files, sources registered over the agent contract, waits. */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { RegisterResponse, SourceFacts } from '../../src/core/agent-protocol.ts';
import { sleep } from '../../src/core/clock.ts';
import { callApi } from '../../src/cli/api-client.ts';
import type { CreatedKey, FerryWithKey, PopClient } from './api.ts';
import { ferryBin, repoRoot } from './ferry-process.ts';

/** Assert that an SDK call fails with the Alibaba `code` (and a message matching `message`). */
export async function rejectsWith(work: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(work, (err: unknown) => {
    const e = err as { code?: string; message?: string };
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (message !== undefined) assert.match(e.message ?? '', message);
    return true;
  });
}

/** A JSON value as plain objects: pop-core parses answers into objects without a prototype, which strict deep equality tells apart. */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Poll `probe` every `intervalMs` until it returns a value that is not undefined, or fail after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

/** A disk image file: `dataBytes` of random data after an MBR with one partition (or none), zeros up to `sizeBytes`. */
export function makeDisk(dir: string, name: string, sizeBytes: number, dataBytes: number, partitioned = true): string {
  const disk = Buffer.alloc(sizeBytes);
  randomBytes(dataBytes).copy(disk, 0);
  if (partitioned) {
    disk.fill(0, 0, 512);
    disk[446] = 0x80;
    disk[446 + 4] = 0x83;
    disk.writeUInt32LE(1, 446 + 8);
    disk.writeUInt32LE(sizeBytes / 512 - 1, 446 + 12);
    disk.writeUInt16LE(0xaa55, 510);
  }
  const path = join(dir, name);
  writeFileSync(path, disk);
  return path;
}

export interface AgentProcess {
  readonly sourceId: string;
  readonly process: ChildProcess;
  readonly stateDir: string;
  output(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  readonly exited: Promise<number | null>;
}

export interface AgentArgs {
  readonly name: string;
  readonly disks: readonly string[];
  readonly stateDir?: string;
  readonly root?: string;
  readonly token?: { readonly id: string; readonly code: string };
  /** Default: the FerryWithKey's key; `null` runs without one (activation code only). */
  readonly key?: CreatedKey | null;
  readonly endpoint?: string;
}

/** State dirs startAgent made itself; a test may restart an agent on one, so they go only when the test process ends. */
const madeStateDirs: string[] = [];
process.once('exit', () => {
  for (const dir of madeStateDirs) rmSync(dir, { recursive: true, force: true });
});

function newStateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-agent-'));
  madeStateDirs.push(dir);
  return dir;
}

/** Start `ferry agent` and wait for its first stdout line, {"sourceId"}. */
export function startAgent(ferry: FerryWithKey, args: AgentArgs): Promise<AgentProcess> {
  const stateDir = args.stateDir ?? newStateDir();
  const key = args.key === undefined ? ferry.key : args.key;
  const argv = [
    ferryBin, 'agent', '--name', args.name, ...args.disks.flatMap((d) => ['--disk', d]), '--state-dir', stateDir, '--poll-ms', '5000',
    ...(args.root === undefined ? [] : ['--root', args.root]),
    ...(args.token === undefined ? [] : ['--token-id', args.token.id, '--token-code', args.token.code]),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, FERRY_ENDPOINT: args.endpoint ?? ferry.server.url, FERRY_ACCESS_KEY_ID: key?.accessKeyId ?? '', FERRY_ACCESS_KEY_SECRET: key?.accessKeySecret ?? '' };
  const child = spawn(process.execPath, argv, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      const { sourceId } = JSON.parse(line) as { sourceId: string };
      resolve({ sourceId, process: child, stateDir, output: () => out, exited, stop: () => (child.kill('SIGTERM'), exited) });
    });
    void exited.then((code) => reject(new Error(`ferry agent exited with ${code} before registering:\n${out}`)));
  });
}

/** Facts of a machine with these disks (bytes), as an agent would report them. */
export function machineFacts(diskSizes: readonly number[], platform = 'Debian GNU/Linux 12 (bookworm)'): SourceFacts {
  const letters = 'abcdefghijklmnopq';
  return {
    agentVersion: 'test',
    hostname: 'test-host',
    platform,
    architecture: 'x86_64',
    kernelLevel: 6,
    cores: 2,
    memoryBytes: 4 * 1024 ** 3,
    ipv4: ['10.0.0.2'],
    disks: diskSizes.map((sizeBytes, index) => {
      const path = `/dev/vd${letters[index] ?? 'z'}`;
      return { index, path, sizeBytes, partitionTable: 'none' as const, parts: [{ index: 0, offsetBytes: 0, sizeBytes, type: 'Normal' as const, path: `${path}1` }] };
    }),
  };
}

/**
 * A source registered over the agent contract by the test itself, no agent process: for rules that
 * need sources but no run. It stays Available as long as the server's heartbeat period allows.
 */
export async function contractSource(ferry: FerryWithKey, key: CreatedKey, name: string, facts: SourceFacts): Promise<string> {
  const creds = { endpoint: ferry.server.url, accessKeyId: key.accessKeyId, accessKeySecret: key.accessKeySecret };
  return (await callApi<RegisterResponse>(creds, 'POST', '/api/v1/agent/register', { name, facts })).sourceId;
}

export type Job = Record<string, unknown> & { Status: string; BusinessStatus: string; ErrorCode: string; ImageId: string; Progress: number };

/** The job as DescribeReplicationJobs reports it. */
export async function describeJob(client: PopClient, jobId: string): Promise<Job | undefined> {
  const answer = await client.request('DescribeReplicationJobs', { JobId: [jobId] });
  return (answer['ReplicationJobs'] as { ReplicationJob: Job[] }).ReplicationJob[0];
}

/** Wait until the job's Status is `status` (and BusinessStatus, when given). */
export function jobReaches(client: PopClient, jobId: string, status: string, business?: string, timeoutMs = 30_000): Promise<Job> {
  return waitFor(`${jobId} to be ${status}${business === undefined ? '' : `/${business}`}`, async () => {
    const job = await describeJob(client, jobId);
    return job !== undefined && job.Status === status && (business === undefined || job.BusinessStatus === business) ? job : undefined;
  }, timeoutMs);
}

export type Source = Record<string, unknown> & { State: string; ErrorCode: string };

export async function describeSource(client: PopClient, sourceId: string): Promise<Source | undefined> {
  const answer = await client.request('DescribeSourceServers', { SourceId: [sourceId] });
  return (answer['SourceServers'] as { SourceServer: Source[] }).SourceServer[0];
}
