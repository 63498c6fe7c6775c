/**
 * For tests of instance moves through real `ferry serve` processes: a fleet applied straight to
 * the server's database and storage pools, the SDK clients of the two clouds, disk digests, and
 * checks that a move never leaves an instance without its disks or its capacity counted twice.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { sleep } from '../../src/core/clock.ts';
import { SimComputeDriver, applyFleet, contentDigest, showFleet, showInstance } from '../../src/fleet/index.ts';
import { type Database, openDatabase } from '../../src/store/database.ts';
import type { CreatedKey, FerryWithKey } from './api.ts';

const require = createRequire(import.meta.url);

/** The server's own database (same URL, or its data dir's SQLite file), opened from the test. */
export async function openServerDatabase(ferry: Pick<FerryWithKey, 'data' | 'db'>): Promise<Database> {
  return openDatabase({ url: ferry.db, dataDir: ferry.data, poolSize: 4 });
}

/** Apply `spec` to the server's database, with backing files in the server's storage pools. */
export async function applyServerFleet(ferry: Pick<FerryWithKey, 'data' | 'db'>, database: Database, spec: unknown): Promise<void> {
  await applyFleet(database, new SimComputeDriver({ dataDir: ferry.data }), spec);
}

/** SHA-256 of a whole disk file, holes read as zeros. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Content digests (SHA-256 per 4 MiB chunk of data, holes skipped, over the file's size) of an
 * instance's disks, by disk id: equal exactly when the bytes are equal, without hashing the holes.
 */
export async function diskDigests(database: Database, instanceId: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const disk of (await showInstance(database, instanceId)).disks) out.set(disk.id, await contentDigest(disk.path));
  return out;
}

/** Every host's used vCPUs equal the instances placed on it, and no claim is left held. */
export async function assertCapacityCountedOnce(database: Database): Promise<void> {
  const view = await showFleet(database);
  assert.equal(view.heldClaims, 0, 'no placement claim is left held');
  for (const host of view.regions.flatMap((r) => r.zones.flatMap((z) => z.hosts))) {
    const used = host.numa.reduce((sum, n) => sum + n.usedVcpus, 0);
    const placed = view.instances.filter((i) => i.hostId === host.id).reduce((sum, i) => sum + i.vcpus, 0);
    assert.equal(used, placed, `host ${host.id} counts ${used} vCPUs for instances holding ${placed}`);
  }
}

/** Poll `probe` every `everyMs` until it answers something, or fail after `timeoutMs`. */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The Huawei ECS client as users build it (no region, AK/SK with the project id). */
export interface EcsClient {
  migrateServer(request: unknown): Promise<Record<string, unknown>>;
  showJob(request: unknown): Promise<Record<string, unknown>>;
  showServer(request: unknown): Promise<Record<string, unknown>>;
}

export interface EcsModule {
  EcsClient: { newBuilder(): { withCredential(c: unknown): { withEndpoint(e: string): { build(): EcsClient } } } };
  MigrateServerRequest: new () => { withServerId(id: string): { withBody(body: unknown): unknown } };
  MigrateServerRequestBody: new () => { withMigrate(option: unknown): unknown };
  MigrateServerOption: new () => { withDedicatedHostId(id: string): unknown };
  ShowJobRequest: new () => { withJobId(id: string): unknown };
  ShowServerRequest: new () => { withServerId(id: string): unknown };
}

let sdkLogSilenced = false;

/** The SDK logs every error answer to stdout through log4js; the tests assert those answers instead. */
function silenceSdkLog(): void {
  if (sdkLogSilenced) return;
  sdkLogSilenced = true;
  const fromCore = createRequire(require.resolve('@huaweicloud/huaweicloud-sdk-core'));
  const log4js = fromCore('log4js') as { configure(config: unknown): void };
  log4js.configure({ appenders: { out: { type: 'stdout' } }, categories: { default: { appenders: ['out'], level: 'off' } } });
}

export function ecsModule(): EcsModule {
  const ecs = require('@huaweicloud/huaweicloud-sdk-ecs') as EcsModule;
  silenceSdkLog();
  return ecs;
}

export function ecsClient(url: string, key: CreatedKey, projectId = key.projectId): EcsClient {
  const { BasicCredentials } = require('@huaweicloud/huaweicloud-sdk-core') as {
    BasicCredentials: new () => { withAk(ak: string): { withSk(sk: string): { withProjectId(p: string): unknown } } };
  };
  const credentials = new BasicCredentials().withAk(key.accessKeyId).withSk(key.accessKeySecret).withProjectId(projectId);
  return ecsModule().EcsClient.newBuilder().withCredential(credentials).withEndpoint(url).build();
}

/** What the Huawei SDK throws for an error answer. */
export interface HuaweiSdkError {
  readonly httpStatusCode: number;
  readonly errorCode: string;
  readonly errorMsg: string;
  readonly requestId?: string;
}

/** Await `call`, expect it to throw the Huawei error `errorCode` with `status`, and return it. */
export async function huaweiError(call: Promise<unknown>, status: number, errorCode: string): Promise<HuaweiSdkError> {
  const err = (await call.then(
    () => assert.fail(`expected ${errorCode}`),
    (e: unknown) => e,
  )) as HuaweiSdkError;
  assert.equal(err.errorCode, errorCode, `expected ${errorCode}, got ${err.errorCode}: ${err.errorMsg}`);
  assert.equal(err.httpStatusCode, status);
  return err;
}
