/** A real `ferry serve` with a fresh access key, and the official SDK clients pointed at it. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FerryServer, ferryBin, repoRoot, startFerry } from './ferry-process.ts';

const run = promisify(execFile);
const require = createRequire(import.meta.url);

export interface CreatedKey {
  readonly accountId: string;
  readonly projectId: string;
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
}

/** Run `ferry ARGS...` to completion and return its stdout. */
export async function ferryCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { stdout } = await run(process.execPath, [ferryBin, ...args], { cwd: repoRoot, env: { ...process.env, ...env } });
  return stdout;
}

export interface FerryWithKey {
  readonly server: FerryServer;
  readonly data: string;
  readonly db: string | undefined;
  readonly key: CreatedKey;
  /** Another account's key (`ferry admin create-key --account NAME`). */
  createKey(account?: string): Promise<CreatedKey>;
  /** Kill the server and remove its data dir; call it from the suite's `after`. */
  close(): Promise<void>;
}

export async function startFerryWithKey(options: { db?: string; env?: NodeJS.ProcessEnv; extra?: readonly string[] } = {}): Promise<FerryWithKey> {
  const data = mkdtempSync(join(tmpdir(), 'ferry-api-'));
  const server = await startFerry({ data, ...(options.db === undefined ? {} : { db: options.db }), env: options.env ?? {}, extra: options.extra ?? [] });
  const close = async (): Promise<void> => {
    server.kill('SIGKILL');
    await server.exited;
    rmSync(data, { recursive: true, force: true });
  };
  const createKey = async (account = 'default'): Promise<CreatedKey> =>
    JSON.parse(await ferryCli(['admin', 'create-key', '--data', data, ...(options.db === undefined ? [] : ['--db', options.db]), '--account', account, '--json'])) as CreatedKey;
  return { server, data, db: options.db, key: await createKey(), createKey, close };
}

/** The pop-core RPCClient (signature V1), as users construct it. */
export interface PopClient {
  request(action: string, params: Record<string, unknown>, options?: Record<string, unknown>): Promise<Record<string, unknown>>;
}

export function popClient(url: string, key: CreatedKey, apiVersion = '2019-06-01'): PopClient {
  const RPCClient = require('@alicloud/pop-core') as new (config: Record<string, unknown>) => PopClient;
  return new RPCClient({ accessKeyId: key.accessKeyId, accessKeySecret: key.accessKeySecret, endpoint: url, apiVersion });
}

/** An error as the SDKs throw it: pop-core sets `code` and `data`, openapi clients add `statusCode`. */
export interface SdkError {
  readonly code: string;
  readonly statusCode?: number;
  readonly data?: Record<string, unknown>;
  readonly message: string;
}

export function isSdkError(code: string, statusCode?: number) {
  return (err: unknown): boolean => {
    const e = err as SdkError;
    if (e.code !== code) throw new Error(`expected ${code}, got ${e.code}: ${e.message}`);
    if (statusCode !== undefined && e.statusCode !== undefined && e.statusCode !== statusCode) throw new Error(`expected HTTP ${statusCode}, got ${e.statusCode}`);
    return true;
  };
}

interface OpenApiModule {
  default: new (config: unknown) => { callApi(params: unknown, request: unknown, runtime: unknown): Promise<{ body: Record<string, unknown>; statusCode: number }> };
  Config: new (config: Record<string, unknown>) => unknown;
  Params: new (params: Record<string, unknown>) => unknown;
  OpenApiRequest: new (request: Record<string, unknown>) => unknown;
}

/**
 * `@alicloud/openapi-client` as the generated SDKs drive it: signature V3 by default,
 * V1 with `signatureAlgorithm: 'v2'`. Calls are POST `/` with the params in the query string.
 */
export function openApiCall(url: string, key: CreatedKey, signature: 'v1' | 'v3', version = '2019-06-01') {
  const OpenApi = require('@alicloud/openapi-client') as OpenApiModule;
  const OpenApiUtil = (require('@alicloud/openapi-util') as { default: { query(q: Record<string, unknown>): Record<string, string> } }).default;
  const { RuntimeOptions } = require('@alicloud/tea-util') as { RuntimeOptions: new (o: Record<string, unknown>) => unknown };
  const endpoint = url.replace(/^http:\/\//, '');
  const client = new OpenApi.default(
    new OpenApi.Config({
      accessKeyId: key.accessKeyId,
      accessKeySecret: key.accessKeySecret,
      endpoint,
      protocol: 'http',
      ...(signature === 'v1' ? { signatureAlgorithm: 'v2' } : {}),
    }),
  );
  return async (action: string, query: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const params = new OpenApi.Params({ action, version, protocol: 'HTTP', pathname: '/', method: 'POST', authType: 'AK', style: 'RPC', reqBodyType: 'formData', bodyType: 'json' });
    const response = await client.callApi(params, new OpenApi.OpenApiRequest({ query: OpenApiUtil.query(query) }), new RuntimeOptions({}));
    return response.body;
  };
}
