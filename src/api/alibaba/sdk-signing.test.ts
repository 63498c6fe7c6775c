/**
 * The verifiers accept what the official SDKs sign, without a server: first against
 * @alicloud/openapi-util's own signing functions on random inputs, then against whole requests
 * built by pop-core and openapi-client, caught at their HTTP transport (httpx) just before they
 * would leave the process, and read back the way the front door will read them.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import OpenApi from '@alicloud/openapi-client';
import openapiUtil from '@alicloud/openapi-util';
import RPCClient from '@alicloud/pop-core';
import * as tea from '@alicloud/tea-typescript';
import { RuntimeOptions } from '@alicloud/tea-util';
import fc from 'fast-check';
import { Type } from 'typebox';
import { decodeFlatParams } from './flat-params.ts';
import { decodeParams, mergeParams, type ParamMap } from '../common/percent-encoding.ts';
import { checkRequestTime } from '../common/request-time.ts';
import { readV1Auth, v1Signature, v1StringToSign, verifyV1Signature } from './signature-v1.ts';
import { readV3Auth, sha256Hex, verifyV3Signature } from '../common/signature-v3.ts';

const sdkUtil = openapiUtil.default;
const accessKeyId = 'LTAI5tTestKeyId';
const accessKeySecret = 'test/Secret+with=odd&chars';
const endpoint = '127.0.0.1:8080';

/** A request as a Node server would see it. */
interface WireRequest {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  /** Lower-case names, as IncomingMessage.headers has them. */
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

interface HttpxOptions {
  readonly method?: string;
  readonly headers?: Record<string, unknown>;
  readonly data?: unknown;
}

// Both pop-core and the tea runtime under openapi-client send through httpx.request.
const httpx = createRequire(import.meta.url)('httpx') as { request: (url: string, opts: HttpxOptions) => Promise<unknown> };

/** Run an SDK call and return the request it tried to send; the call itself then fails, unseen. */
async function captureRequest(send: () => Promise<unknown>): Promise<WireRequest> {
  let captured: WireRequest | undefined;
  const original = httpx.request;
  httpx.request = async (url, opts) => {
    const parsed = new URL(url);
    const headers: Record<string, string> = { host: parsed.host };
    for (const [name, value] of Object.entries(opts.headers ?? {})) headers[name.toLowerCase()] = String(value);
    captured = {
      method: (opts.method ?? 'GET').toUpperCase(),
      path: parsed.pathname,
      query: parsed.search.replace(/^\?/, ''),
      headers,
      body: await bodyBytes(opts.data),
    };
    throw new Error('captured before sending');
  };
  try {
    await send();
  } catch (err) {
    if (captured === undefined) throw err;
  } finally {
    httpx.request = original;
  }
  if (captured === undefined) assert.fail('the SDK sent nothing');
  return captured;
}

async function bodyBytes(data: unknown): Promise<Buffer> {
  if (data === undefined || data === null) return Buffer.alloc(0);
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof Readable) {
    const chunks: Buffer[] = [];
    for await (const chunk of data) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
    return Buffer.concat(chunks);
  }
  assert.fail(`unexpected request body ${typeof data}`);
}

function paramsOf(text: string): ParamMap {
  const result = decodeParams(text);
  assert.ok(result.ok, result.ok ? '' : result.reason);
  return result.params;
}

/** Query + form body merged, as the front door builds its param map. */
function allParams(request: WireRequest): ParamMap {
  const isForm = (request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
  const merged = mergeParams(paramsOf(request.query), isForm ? paramsOf(request.body.toString('utf8')) : {});
  assert.ok(merged.ok, merged.ok ? '' : merged.reason);
  return merged.params;
}

/** Verify a captured V1 request end to end and return its params. */
function assertV1Accepted(request: WireRequest): ParamMap {
  const params = allParams(request);
  const auth = readV1Auth(params);
  assert.ok(auth.ok, auth.ok ? '' : auth.reason);
  assert.equal(auth.value.accessKeyId, accessKeyId);
  assert.deepEqual(verifyV1Signature(request.method, params, accessKeySecret), { ok: true });
  assert.equal(verifyV1Signature(request.method, params, `${accessKeySecret}x`).ok, false);
  assert.ok(checkRequestTime(auth.value.timestamp, Date.now()).ok);
  return params;
}

/** Verify a captured V3 request end to end and return its query params. */
function assertV3Accepted(request: WireRequest): ParamMap {
  const auth = readV3Auth(request.headers);
  assert.ok(auth.ok, auth.ok ? '' : auth.reason);
  assert.equal(auth.value.accessKeyId, accessKeyId);
  const v3 = { method: request.method, path: request.path, query: paramsOf(request.query), headers: request.headers, body: request.body };
  assert.deepEqual(verifyV3Signature(v3, auth.value, accessKeySecret), { ok: true });
  assert.equal(verifyV3Signature(v3, auth.value, `${accessKeySecret}x`).ok, false);
  assert.ok(checkRequestTime(auth.value.date, Date.now()).ok);
  return v3.query;
}

function popCore(securityToken?: string): RPCClient {
  return new RPCClient({ accessKeyId, accessKeySecret, endpoint: `http://${endpoint}`, apiVersion: '2019-06-01', ...(securityToken === undefined ? {} : { securityToken }) });
}

function openApiClient(options: { signatureAlgorithm?: string; securityToken?: string } = {}): OpenApi.default {
  return new OpenApi.default(new OpenApi.Config({ accessKeyId, accessKeySecret, endpoint, protocol: 'http', ...options }));
}

function callApi(client: OpenApi.default, action: string, request: { query?: Record<string, string>; body?: Record<string, unknown> }): Promise<unknown> {
  const params = new OpenApi.Params({ action, version: '2019-06-01', protocol: 'HTTP', pathname: '/', method: 'POST', authType: 'AK', style: 'RPC', reqBodyType: 'formData', bodyType: 'json' });
  return client.callApi(params, new OpenApi.OpenApiRequest(request), new RuntimeOptions({}));
}

// The input of alibaba-rpc.md §7.
const Job = Type.Object({
  RegionId: Type.String(),
  SourceId: Type.String(),
  Name: Type.String(),
  JobId: Type.Array(Type.String()),
  Tag: Type.Array(Type.Object({ Key: Type.String(), Value: Type.String() })),
  DataDisk: Type.Array(Type.Object({ Index: Type.Integer(), Size: Type.Integer(), Part: Type.Array(Type.Object({ Device: Type.String(), SizeBytes: Type.Integer(), Block: Type.Boolean() })) })),
  ReplicationParameters: Type.String(),
  Disks: Type.Optional(Type.Object({ System: Type.Object({ Size: Type.Integer(), LVM: Type.Boolean() }) })),
});
const jobInput = {
  RegionId: 'cn-hangzhou',
  SourceId: 's-1',
  Name: "x!'()*~ 中",
  JobId: ['j-1', 'j-2'],
  Tag: [{ Key: 'env', Value: 'a b' }],
  DataDisk: [{ Index: 1, Size: 100, Part: [{ Device: '0_1', SizeBytes: 1024, Block: true }] }],
  ReplicationParameters: JSON.stringify({ bandwidth_limit: 100, compress_level: 7 }),
};

function assertJobDecoded(params: ParamMap, expected: object): void {
  const decoded = decodeFlatParams(Job, params);
  assert.ok(decoded.ok, decoded.ok ? '' : `${decoded.field}: ${decoded.reason}`);
  assert.deepEqual(decoded.value, expected);
}

test('V1: our signature equals openapi-util getRPCSignature on random params', () => {
  // openapi-util copies params into a plain {}, where a key `__proto__` vanishes; it cannot sign one.
  const name = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 10 }).filter((key) => key !== '__proto__');
  const params = fc.dictionary(name, fc.string({ unit: 'grapheme', maxLength: 20 }), { noNullPrototype: true });
  fc.assert(
    fc.property(params, fc.constantFrom('GET', 'POST'), fc.string({ minLength: 1 }), (signed, method, secret) => {
      const ours = v1Signature(v1StringToSign(method, signed), secret);
      assert.equal(ours, sdkUtil.getRPCSignature(signed, method, secret));
      assert.deepEqual(verifyV1Signature(method, { ...signed, Signature: ours }, secret), { ok: true });
    }),
  );
});

test('V3: a request signed by openapi-util getAuthorization verifies, with any query, x-acs-* headers and body', () => {
  const queryName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9.]{0,12}$/);
  const headerValue = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,20}[\x21-\x7e])?$/);
  const extraHeaders = fc.dictionary(fc.stringMatching(/^x-acs-[a-z][a-z0-9-]{0,10}$/), headerValue, { noNullPrototype: true });
  fc.assert(
    fc.property(
      fc.dictionary(queryName, fc.string({ unit: 'grapheme', maxLength: 20 }), { noNullPrototype: true }),
      extraHeaders,
      fc.option(fc.string({ unit: 'grapheme', maxLength: 64 }), { nil: undefined }),
      (query, extra, body) => {
        const bodyBuffer = Buffer.from(body ?? '', 'utf8');
        const headers: Record<string, string> = {
          ...extra,
          host: endpoint,
          'x-acs-action': 'DescribeReplicationJobs',
          'x-acs-version': '2019-06-01',
          'x-acs-date': '2024-01-01T00:00:00Z',
          'x-acs-signature-nonce': '0123456789abcdef0123456789abcdef',
          'x-acs-content-sha256': sha256Hex(bodyBuffer),
          ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
        };
        const sdkRequest = Object.assign(new tea.Request(), { method: 'POST', pathname: '/', query, headers });
        const authorization = sdkUtil.getAuthorization(sdkRequest, 'ACS3-HMAC-SHA256', headers['x-acs-content-sha256'] ?? '', accessKeyId, accessKeySecret);
        const received = { ...headers, authorization };
        const auth = readV3Auth(received);
        assert.ok(auth.ok, auth.ok ? '' : auth.reason);
        const verdict = verifyV3Signature({ method: 'POST', path: '/', query, headers: received, body: bodyBuffer }, auth.value, accessKeySecret);
        assert.deepEqual(verdict, { ok: true });
      },
    ),
  );
});

test('pop-core GET (params in the query) is accepted and its params decode back', async () => {
  const request = await captureRequest(() => popCore().request('CreateReplicationJob', jobInput));
  assert.equal(request.method, 'GET');
  assertJobDecoded(assertV1Accepted(request), jobInput);
});

test('pop-core POST (params in a form body) is accepted and its params decode back', async () => {
  const request = await captureRequest(() => popCore().request('CreateReplicationJob', jobInput, { method: 'POST' }));
  assert.equal(request.method, 'POST');
  assert.equal(request.query, '');
  assert.ok(request.body.length > 0);
  assertJobDecoded(assertV1Accepted(request), jobInput);
});

test('pop-core lower-case "post" (signed as POST, params in the query) is accepted', async () => {
  const request = await captureRequest(() => popCore().request('CreateReplicationJob', jobInput, { method: 'post' }));
  assertJobDecoded(assertV1Accepted(request), jobInput);
});

test('pop-core with an STS token signs SecurityToken, and the token is read', async () => {
  const request = await captureRequest(() => popCore('sts-token-1').request('StartReplicationJob', { JobId: 'j-1' }));
  const params = assertV1Accepted(request);
  const auth = readV1Auth(params);
  assert.ok(auth.ok);
  assert.equal(auth.value.securityToken, 'sts-token-1');
});

const withDisks = { ...jobInput, Disks: { System: { Size: 40, LVM: false } } };

test('openapi-client V3 (the generated SDKs\' default) is accepted and its query decodes back', async () => {
  const request = await captureRequest(() => callApi(openApiClient(), 'CreateReplicationJob', { query: sdkUtil.query(withDisks) }));
  assert.match(request.headers['authorization'] ?? '', /^ACS3-HMAC-SHA256 /);
  assertJobDecoded(assertV3Accepted(request), withDisks);
});

test('openapi-client V3 with a form body is accepted: the body is bound by x-acs-content-sha256', async () => {
  const request = await captureRequest(() => callApi(openApiClient(), 'CreateReplicationJob', { query: { RegionId: 'cn-hangzhou' }, body: { SourceId: 's-1', Name: 'a b+c' } }));
  assert.ok(request.body.length > 0);
  assertV3Accepted(request);
  assert.deepEqual({ ...allParams(request) }, { RegionId: 'cn-hangzhou', SourceId: 's-1', Name: 'a b+c' });
  const tampered = { ...request, body: Buffer.from('SourceId=s-2&Name=a%20b%2Bc') };
  const auth = readV3Auth(tampered.headers);
  assert.ok(auth.ok);
  assert.equal(verifyV3Signature({ ...tampered, query: paramsOf(tampered.query) }, auth.value, accessKeySecret).ok, false);
});

test('openapi-client V3 with STS credentials signs x-acs-accesskey-id and x-acs-security-token', async () => {
  const request = await captureRequest(() => callApi(openApiClient({ securityToken: 'sts-token-2' }), 'StartReplicationJob', { query: { JobId: 'j-1' } }));
  assertV3Accepted(request);
  const auth = readV3Auth(request.headers);
  assert.ok(auth.ok);
  assert.equal(auth.value.securityToken, 'sts-token-2');
});

test('openapi-client with signatureAlgorithm v2 (V1 through doRPCRequest) is accepted', async () => {
  const request = await captureRequest(() => callApi(openApiClient({ signatureAlgorithm: 'v2' }), 'CreateReplicationJob', { query: sdkUtil.query(withDisks) }));
  assert.equal(request.headers['authorization'], undefined);
  assertJobDecoded(assertV1Accepted(request), withDisks);
});

test('property: whatever text pop-core and openapi-client send is accepted and decodes back', async () => {
  const Free = Type.Object({ Name: Type.String(), JobId: Type.Array(Type.String()) });
  const text = fc.string({ unit: 'grapheme', maxLength: 16 });
  await fc.assert(
    fc.asyncProperty(text, fc.array(text, { minLength: 1, maxLength: 4 }), async (Name, JobId) => {
      const input = { Name, JobId };
      const v1 = await captureRequest(() => popCore().request('DescribeReplicationJobs', input, { method: 'POST' }));
      const v3 = await captureRequest(() => callApi(openApiClient(), 'DescribeReplicationJobs', { query: sdkUtil.query(input) }));
      for (const params of [assertV1Accepted(v1), assertV3Accepted(v3)]) {
        const decoded = decodeFlatParams(Free, params);
        assert.ok(decoded.ok);
        assert.deepEqual(decoded.value, input);
      }
    }),
    { numRuns: 40 },
  );
});
