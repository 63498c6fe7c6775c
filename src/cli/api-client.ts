import { randomBytes } from 'node:crypto';
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { AppError } from '../core/errors.ts';
import { acs3Algorithm, sha256Hex, v3CanonicalRequest, v3Signature, v3StringToSign } from '../api/common/signature-v3.ts';
import type { ParamMap } from '../api/common/percent-encoding.ts';

/** Where and as whom the CLI calls Ferry: FERRY_ENDPOINT, FERRY_ACCESS_KEY_ID, FERRY_ACCESS_KEY_SECRET. */
export interface ApiCredentials {
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
}

export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): ApiCredentials {
  const endpoint = env['FERRY_ENDPOINT'] ?? 'http://127.0.0.1:8080';
  const accessKeyId = env['FERRY_ACCESS_KEY_ID'];
  const accessKeySecret = env['FERRY_ACCESS_KEY_SECRET'];
  if (accessKeyId === undefined || accessKeyId === '' || accessKeySecret === undefined || accessKeySecret === '') {
    throw new AppError('MissingParameter', { name: 'FERRY_ACCESS_KEY_ID and FERRY_ACCESS_KEY_SECRET (make a key with: ferry admin create-key --json)' });
  }
  return { endpoint: endpoint.replace(/\/+$/, ''), accessKeyId, accessKeySecret };
}

/** A Ferry error answer, carrying the server's code, message and request id. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string,
  ) {
    super(`${code}: ${message} (request ${requestId})`);
    this.name = 'ApiError';
  }
}

/** No answer at all from the endpoint (refused, unknown host, reset): the server is not where the CLI looked. */
export class EndpointUnreachableError extends Error {
  constructor(
    readonly endpoint: string,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? ((cause.cause instanceof Error ? cause.cause.message : undefined) ?? cause.message) : String(cause);
    super(`cannot reach Ferry at ${endpoint} (${reason}); start it with ferry serve, or set FERRY_ENDPOINT to where it listens`, { cause });
    this.name = 'EndpointUnreachableError';
  }
}

function popDate(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The headers of a native API request signed with ACS3-HMAC-SHA256. */
function signedHeaders(creds: ApiCredentials, method: string, url: URL, query: ParamMap, payload: Buffer, json: boolean): Record<string, string> {
  const headers: Record<string, string> = {
    host: url.host,
    'x-acs-date': popDate(Date.now()),
    'x-acs-signature-nonce': randomBytes(16).toString('hex'),
    'x-acs-content-sha256': sha256Hex(payload),
    ...(json ? { 'content-type': 'application/json' } : {}),
  };
  const signed = Object.keys(headers).sort();
  const canonical = v3CanonicalRequest({ method, path: url.pathname, query, headers }, signed, headers['x-acs-content-sha256'] ?? '');
  const signature = v3Signature(v3StringToSign(canonical), creds.accessKeySecret);
  headers['authorization'] = `${acs3Algorithm} Credential=${creds.accessKeyId},SignedHeaders=${signed.join(';')},Signature=${signature}`;
  return headers;
}

/** Send a native API request signed with ACS3-HMAC-SHA256; the answer as fetch gives it. */
export async function signedFetch(creds: ApiCredentials, method: string, path: string, body?: unknown, query: ParamMap = {}): Promise<Response> {
  const url = new URL(`${creds.endpoint}${path}`);
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body), 'utf8');
  const headers = signedHeaders(creds, method, url, query, payload, body !== undefined);
  try {
    return await fetch(url, { method, headers, ...(body === undefined ? {} : { body: payload }) });
  } catch (err) {
    throw new EndpointUnreachableError(creds.endpoint, err);
  }
}

/**
 * A signed GET whose answer is a large byte stream (image data), through node:http: a Node
 * stream straight from the socket, without fetch's web-stream layer. Refusals become ApiError.
 */
export function signedGetStream(creds: ApiCredentials, path: string): Promise<IncomingMessage> {
  const url = new URL(`${creds.endpoint}${path}`);
  const headers = signedHeaders(creds, 'GET', url, {}, Buffer.alloc(0), false);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers }, (response) => {
      if ((response.statusCode ?? 500) < 400) {
        resolve(response);
        return;
      }
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (piece: string) => (text += piece));
      response.on('end', () => reject(answerError({ status: response.statusCode ?? 500, statusText: response.statusMessage ?? '' }, text)));
    });
    req.on('error', (err) => reject(new EndpointUnreachableError(creds.endpoint, err)));
    req.end();
  });
}

/** The ApiError of a failed answer whose body is `text`. */
function answerError(response: Pick<Response, 'status' | 'statusText'>, text: string): ApiError {
  let error: { code?: string; message?: string; requestId?: string } = {};
  try {
    error = (JSON.parse(text) ?? {}) as typeof error;
  } catch {
    // not JSON: the status line says enough
  }
  return new ApiError(response.status, error.code ?? 'InternalError', error.message ?? response.statusText, error.requestId ?? '');
}

/** A signed GET whose answer is bytes (manifests, image data); refusals become ApiError. */
export async function callApiBytes(creds: ApiCredentials, path: string): Promise<Response> {
  const response = await signedFetch(creds, 'GET', path);
  if (!response.ok) throw answerError(response, await response.text());
  return response;
}

/** Call the native API with an ACS3-HMAC-SHA256 signature; returns the parsed JSON answer. */
export async function callApi<T>(creds: ApiCredentials, method: string, path: string, body?: unknown, query: ParamMap = {}): Promise<T> {
  const response = await signedFetch(creds, method, path, body, query);
  const text = await response.text();
  if (!response.ok) throw answerError(response, text);
  try {
    return (text === '' ? undefined : JSON.parse(text)) as T;
  } catch {
    throw new ApiError(response.status, 'InvalidResponse', `the server answered non-JSON: ${text.slice(0, 200)}`, '');
  }
}
