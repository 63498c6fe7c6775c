/**
 * Huawei Cloud's SDK-HMAC-SHA256 request signature (huawei-ecs-api.md, "Signing"): the canonical
 * request is the method, the URI with every segment percent-encoded and a trailing `/`, the sorted
 * query, the signed headers as `name:value\n`, their names joined by `;`, and the body's SHA-256;
 * the string to sign is `SDK-HMAC-SHA256\n<X-Sdk-Date>\n<hex sha256(canonical request)>`.
 */
import { createHash, createHmac } from 'node:crypto';
import { constantTimeEqual } from '../common/constant-time.ts';
import { popEncode } from '../common/percent-encoding.ts';

export const sdkAlgorithm = 'SDK-HMAC-SHA256';

export interface SdkAuthorization {
  readonly accessKeyId: string;
  /** Lower-case header names in the order the client listed them. */
  readonly signedHeaders: readonly string[];
  readonly signature: string;
}

export type SdkAuthResult = { readonly ok: true; readonly value: SdkAuthorization } | { readonly ok: false; readonly reason: string };

/** Parse `SDK-HMAC-SHA256 Access=<ak>, SignedHeaders=<a;b>, Signature=<hex>`. */
export function parseSdkAuthorization(header: string): SdkAuthResult {
  const trimmed = header.trim();
  if (!trimmed.startsWith(`${sdkAlgorithm} `)) return { ok: false, reason: `the Authorization header must start with ${sdkAlgorithm}` };
  const fields = new Map<string, string>();
  for (const part of trimmed.slice(sdkAlgorithm.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return { ok: false, reason: 'the Authorization header is malformed' };
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const accessKeyId = fields.get('Access');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (accessKeyId === undefined || accessKeyId === '') return { ok: false, reason: 'Access is missing from the Authorization header' };
  if (signedHeaders === undefined || signedHeaders === '') return { ok: false, reason: 'SignedHeaders is missing from the Authorization header' };
  if (signature === undefined || !/^[0-9a-f]{64}$/.test(signature)) return { ok: false, reason: 'Signature must be 64 lower-case hex digits' };
  return { ok: true, value: { accessKeyId, signedHeaders: signedHeaders.split(';').map((h) => h.trim().toLowerCase()), signature } };
}

/** The URI as signed: each segment percent-encoded, always ending in `/`. */
export function canonicalUri(path: string): string {
  const encoded = path
    .split('/')
    .map((segment) => popEncode(decodeURIComponentSafe(segment)))
    .join('/');
  return encoded.endsWith('/') ? encoded : `${encoded}/`;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Query params sorted by name; a repeated name contributes each of its values, sorted. */
export function canonicalSdkQuery(query: ReadonlyMap<string, readonly string[]>): string {
  return [...query.keys()]
    .sort()
    .flatMap((name) => [...(query.get(name) ?? [])].sort().map((value) => `${popEncode(name)}=${popEncode(value)}`))
    .join('&');
}

export interface SdkRequest {
  readonly method: string;
  readonly path: string;
  readonly query: ReadonlyMap<string, readonly string[]>;
  /** Header values by lower-case name. */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Uint8Array;
}

export function sdkStringToSign(request: SdkRequest, signedHeaders: readonly string[], sdkDate: string): string {
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${(request.headers.get(name) ?? '').trim()}\n`).join('');
  const canonicalRequest = [
    request.method.toUpperCase(),
    canonicalUri(request.path),
    canonicalSdkQuery(request.query),
    canonicalHeaders,
    signedHeaders.join(';'),
    createHash('sha256').update(request.body).digest('hex'),
  ].join('\n');
  return `${sdkAlgorithm}\n${sdkDate}\n${createHash('sha256').update(canonicalRequest).digest('hex')}`;
}

export function sdkSignature(stringToSign: string, secretKey: string): string {
  return createHmac('sha256', secretKey).update(stringToSign, 'utf8').digest('hex');
}

export function verifySdkSignature(request: SdkRequest, auth: SdkAuthorization, sdkDate: string, secretKey: string): boolean {
  return constantTimeEqual(auth.signature, sdkSignature(sdkStringToSign(request, auth.signedHeaders, sdkDate), secretKey));
}

/** Epoch ms of an `X-Sdk-Date` (`YYYYMMDDTHHMMSSZ`), or undefined when malformed. */
export function parseSdkDate(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (m === null) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  return new Date(ms).getUTCDate() === d ? ms : undefined;
}
