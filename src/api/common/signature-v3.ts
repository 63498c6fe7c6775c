/**
 * Signature V3 (ACS3-HMAC-SHA256), the default of every current generated SDK, exactly as
 * alibaba-rpc.md §4. A V3 request carries no Action/Version/Signature params: who signed and what
 * was signed travel in headers, and the body is bound through `x-acs-content-sha256`.
 */
import { createHash, createHmac } from 'node:crypto';
import { constantTimeEqual } from './constant-time.ts';
import { canonicalQuery, type ParamMap } from './percent-encoding.ts';

export const acs3Algorithm = 'ACS3-HMAC-SHA256';

/** Request headers as Node hands them to a server (names lower-cased; an array for repeats). */
export type HeaderMap = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The three fields of an `Authorization: ACS3-HMAC-SHA256 …` header. */
export interface Acs3Authorization {
  readonly accessKeyId: string;
  /** Lower-case header names, sorted, as the client listed them. */
  readonly signedHeaders: readonly string[];
  /** Lower-case hex HMAC-SHA256. */
  readonly signature: string;
}

/** What a V3 request says about who signed it, read before the secret is looked up. */
export interface V3Auth extends Acs3Authorization {
  /** The raw `x-acs-date`; its format and freshness are checked by request-time.ts. */
  readonly date: string;
  readonly signatureNonce: string;
  /** Lower-case hex SHA-256 the client claims for the body. */
  readonly contentSha256: string;
  readonly securityToken?: string;
}

export interface V3Request {
  /** HTTP method as received, e.g. `POST`. */
  readonly method: string;
  /** The URL path before `?`, as received (`/` for RPC). */
  readonly path: string;
  /** Decoded query-string params only; a form body is covered by the content hash instead. */
  readonly query: ParamMap;
  readonly headers: HeaderMap;
  /** The raw body bytes, exactly as received. */
  readonly body: Uint8Array;
}

export type IncompleteSignature = { readonly ok: false; readonly code: 'IncompleteSignature'; readonly reason: string };
export type Acs3ParseResult = { readonly ok: true; readonly value: Acs3Authorization } | IncompleteSignature;
export type V3AuthResult = { readonly ok: true; readonly value: V3Auth } | IncompleteSignature;
export type V3Verdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'SignatureDoesNotMatch'; readonly reason: string; readonly stringToSign?: string };

const hexSha256 = /^[0-9a-f]{64}$/;
const headerName = /^[a-z0-9-]+$/;
const credentialPattern = /^[\x21-\x7e]+$/;

function incomplete(reason: string): IncompleteSignature {
  return { ok: false, code: 'IncompleteSignature', reason };
}

/** Parse `ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<a;b>,Signature=<hex>`; anything else is IncompleteSignature. */
export function parseAcs3Authorization(header: string): Acs3ParseResult {
  const trimmed = header.trim();
  const space = trimmed.search(/\s/);
  const algorithm = space === -1 ? trimmed : trimmed.slice(0, space);
  if (algorithm !== acs3Algorithm) return incomplete(`the Authorization algorithm ${JSON.stringify(algorithm.slice(0, 40))} is not supported; use ${acs3Algorithm}`);
  const fields = new Map<string, string>();
  for (const part of trimmed.slice(space + 1).split(',')) {
    const eq = part.indexOf('=');
    const name = part.slice(0, Math.max(eq, 0)).trim();
    if (eq === -1 || !['Credential', 'SignedHeaders', 'Signature'].includes(name)) return incomplete('the Authorization header must hold exactly Credential=, SignedHeaders= and Signature=');
    if (fields.has(name)) return incomplete(`the Authorization header repeats ${name}`);
    fields.set(name, part.slice(eq + 1).trim());
  }
  const accessKeyId = fields.get('Credential') ?? '';
  const signedHeaders = fields.get('SignedHeaders') ?? '';
  const signature = (fields.get('Signature') ?? '').toLowerCase();
  if (!credentialPattern.test(accessKeyId)) return incomplete('the Authorization header has no Credential');
  if (!hexSha256.test(signature)) return incomplete('the Authorization Signature must be 64 hex digits');
  const names = signedHeaders.split(';');
  if (!names.every((name) => headerName.test(name))) return incomplete('SignedHeaders must list lower-case header names separated by ";"');
  if (!names.every((name, i) => i === 0 || (names[i - 1] ?? '') < name)) return incomplete('SignedHeaders must be sorted and without repeats');
  return { ok: true, value: { accessKeyId, signedHeaders: names, signature } };
}

/**
 * Read the V3 auth headers and check what was signed: host and every `x-acs-*` header present
 * must be in SignedHeaders, since an unsigned one could be changed in flight (a swapped
 * x-acs-action would run another API under the same signature).
 */
export function readV3Auth(headers: HeaderMap): V3AuthResult {
  const lower = lowerCaseHeaders(headers);
  const authorization = lower.get('authorization');
  if (authorization === undefined) return incomplete('the Authorization header is missing');
  const parsed = parseAcs3Authorization(authorization);
  if (!parsed.ok) return parsed;
  const signed = new Set(parsed.value.signedHeaders);
  for (const required of ['host', 'x-acs-date', 'x-acs-signature-nonce', 'x-acs-content-sha256']) {
    if (!lower.has(required)) return incomplete(`the ${required} header is missing`);
    if (!signed.has(required)) return incomplete(`the ${required} header must be signed (listed in SignedHeaders)`);
  }
  for (const name of lower.keys()) {
    if (name.startsWith('x-acs-') && !signed.has(name)) return incomplete(`the ${name} header must be signed (listed in SignedHeaders)`);
  }
  for (const name of signed) {
    if (!lower.has(name)) return incomplete(`SignedHeaders lists ${name}, which the request does not carry`);
  }
  const contentSha256 = (lower.get('x-acs-content-sha256') ?? '').toLowerCase();
  if (!hexSha256.test(contentSha256)) return incomplete('x-acs-content-sha256 must be 64 hex digits');
  const stsKeyId = lower.get('x-acs-accesskey-id');
  if (stsKeyId !== undefined && stsKeyId !== parsed.value.accessKeyId) return incomplete('x-acs-accesskey-id differs from the Authorization Credential');
  const token = lower.get('x-acs-security-token');
  const value: V3Auth = {
    ...parsed.value,
    date: lower.get('x-acs-date') ?? '',
    signatureNonce: lower.get('x-acs-signature-nonce') ?? '',
    contentSha256,
    ...(token === undefined || token === '' ? {} : { securityToken: token }),
  };
  return { ok: true, value };
}

/** Lower-case hex SHA-256 of a body (the empty body hashes to e3b0c442…b855). */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * `METHOD\nURI\nQUERY\nHEADERS\n\nSIGNED\nPAYLOADHASH`, the canonical request of §4 step 6.
 * The query encodes names as well as values, as the V3 documentation says; openapi-util encodes
 * only values, which is the same for the `[A-Za-z0-9.]` names every API uses.
 */
export function v3CanonicalRequest(request: Omit<V3Request, 'body'>, signedHeaders: readonly string[], payloadSha256: string): string {
  const lower = lowerCaseHeaders(request.headers);
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${lower.get(name) ?? ''}\n`).join('');
  const uri = request.path === '' ? '/' : request.path;
  return [request.method.toUpperCase(), uri, canonicalQuery(request.query), canonicalHeaders, signedHeaders.join(';'), payloadSha256].join('\n');
}

/** `ACS3-HMAC-SHA256\n` + hex SHA-256 of the canonical request. */
export function v3StringToSign(canonicalRequest: string): string {
  return `${acs3Algorithm}\n${sha256Hex(canonicalRequest)}`;
}

/** Hex HMAC-SHA256 of the string-to-sign, keyed with the bare secret (no `&`, unlike V1). */
export function v3Signature(stringToSign: string, accessKeySecret: string): string {
  return createHmac('sha256', accessKeySecret).update(stringToSign, 'utf8').digest('hex');
}

/** Check the body against x-acs-content-sha256, then recompute the signature and compare in constant time. */
export function verifyV3Signature(request: V3Request, auth: V3Auth, accessKeySecret: string): V3Verdict {
  const bodySha256 = sha256Hex(request.body);
  if (bodySha256 !== auth.contentSha256) {
    return { ok: false, code: 'SignatureDoesNotMatch', reason: 'x-acs-content-sha256 does not match the SHA-256 of the body' };
  }
  const stringToSign = v3StringToSign(v3CanonicalRequest(request, auth.signedHeaders, bodySha256));
  const expected = v3Signature(stringToSign, accessKeySecret);
  if (constantTimeEqual(auth.signature, expected)) return { ok: true };
  return { ok: false, code: 'SignatureDoesNotMatch', reason: 'the signature does not match', stringToSign };
}

/**
 * Header values by lower-case name, trimmed. Repeats are trimmed, sorted and joined with `,`
 * as openapi-util's getAuthorizationHeaders does, so both sides canonicalise them alike.
 */
function lowerCaseHeaders(headers: HeaderMap): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, raw] of Object.entries(headers)) {
    if (raw === undefined) continue;
    const values = (typeof raw === 'string' ? [raw] : [...raw]).map((v) => v.trim());
    const key = name.toLowerCase();
    const previous = out.get(key);
    out.set(key, (previous === undefined ? values : [previous, ...values]).sort().join(','));
  }
  return out;
}
