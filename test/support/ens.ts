/** Helpers for the ENS event tests: the pop-core client for ENS, event polling, full-file sha256 of sparse disks. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { type ApiCredentials, callApi } from '../../src/cli/api-client.ts';
import type { EventView } from '../../src/migration/events.ts';
import { type CreatedKey, type FerryWithKey, type PopClient, popClient } from './api.ts';

export const ensVersion = '2017-11-10';

export function ensClient(ferry: FerryWithKey, key: CreatedKey = ferry.key): PopClient {
  return popClient(ferry.server.url, key, ensVersion);
}

export function credsOf(ferry: FerryWithKey, key: CreatedKey = ferry.key): ApiCredentials {
  return { endpoint: ferry.server.url, accessKeyId: key.accessKeyId, accessKeySecret: key.accessKeySecret };
}

export function cliEnv(ferry: FerryWithKey, key: CreatedKey = ferry.key): NodeJS.ProcessEnv {
  return { FERRY_ENDPOINT: ferry.server.url, FERRY_ACCESS_KEY_ID: key.accessKeyId, FERRY_ACCESS_KEY_SECRET: key.accessKeySecret };
}

/** A pop-core call that must fail: its body Code and HTTP status. */
export async function ensError(client: PopClient, action: string, params: Record<string, unknown>): Promise<{ code: string; status: number; message: string }> {
  try {
    await client.request(action, params, { method: 'POST' });
  } catch (err) {
    const e = err as { code?: string; message: string; entry?: { response?: { statusCode?: number } } };
    return { code: e.code ?? '', status: e.entry?.response?.statusCode ?? 0, message: e.message };
  }
  return assert.fail(`${action} ${JSON.stringify(params)} succeeded; an error was expected`);
}

export async function expectEnsError(client: PopClient, action: string, params: Record<string, unknown>, code: string, message?: RegExp): Promise<void> {
  const err = await ensError(client, action, params);
  assert.deepEqual([err.code, err.status], [code, 400], `${action} ${JSON.stringify(params)}: ${err.message}`);
  if (message !== undefined) assert.match(err.message, message);
}

/** An event through the native API, polled until its status is one of `statuses`. */
export async function waitForEvent(ferry: FerryWithKey, eventId: string, statuses: readonly string[], timeoutMs = 30_000): Promise<EventView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const event = await callApi<EventView>(credsOf(ferry), 'GET', `/api/v1/events/${eventId}`);
    if (statuses.includes(event.status)) return event;
    if (Date.now() > deadline) assert.fail(`event ${eventId} is ${event.status} after ${timeoutMs} ms, not ${statuses.join('/')}: ${JSON.stringify(event)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface InstanceShow {
  readonly hostId: string;
  readonly status: string;
  readonly disks: readonly { readonly id: string; readonly kind: string; readonly path: string; readonly hostId: string }[];
}

export function showInstance(ferry: FerryWithKey, instanceId: string): Promise<InstanceShow> {
  return callApi<InstanceShow>(credsOf(ferry), 'GET', `/api/v1/instances/${instanceId}`);
}

const hashCache = new Map<string, string>();

/**
 * sha256 of every byte of a (sparse) disk file, holes included.
 * `cacheKey` (the disk id: seeded disks of the same id hold the same bytes) skips repeats.
 */
export async function sha256File(path: string, cacheKey?: string): Promise<string> {
  const cached = cacheKey === undefined ? undefined : hashCache.get(cacheKey);
  if (cached !== undefined) return cached;
  const hash = createHash('sha256');
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const buf = Buffer.alloc(8 * 1024 * 1024);
    for (let at = 0; at < size; at += buf.length) {
      const want = Math.min(buf.length, size - at);
      const { bytesRead } = await file.read(buf, 0, want, at);
      assert.equal(bytesRead, want);
      hash.update(buf.subarray(0, want));
    }
  } finally {
    await file.close();
  }
  const digest = hash.digest('hex');
  if (cacheKey !== undefined) hashCache.set(cacheKey, digest);
  return digest;
}
