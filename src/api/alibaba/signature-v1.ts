/**
 * Signature V1 (HMAC-SHA1) of POP RPC requests, exactly as alibaba-rpc.md §3: the signed set is
 * every decoded param but `Signature`, canonicalised by us, never the client's wire escaping
 * (pop-core and openapi-client escape `! ' ( ) *` differently).
 */
import { createHmac } from 'node:crypto';
import { constantTimeEqual } from '../common/constant-time.ts';
import { canonicalQuery, popEncode, type ParamMap } from '../common/percent-encoding.ts';

/** What a V1 request says about who signed it, read before the secret is looked up. */
export interface V1Auth {
  readonly accessKeyId: string;
  readonly signature: string;
  readonly signatureNonce: string;
  /** The raw `Timestamp` param; its format and freshness are checked by request-time.ts. */
  readonly timestamp: string;
  readonly securityToken?: string;
}

export type V1AuthResult =
  | { readonly ok: true; readonly value: V1Auth }
  | { readonly ok: false; readonly code: 'MissingParameter' | 'IncompleteSignature'; readonly field: string; readonly reason: string };

export type V1Verdict = { readonly ok: true } | { readonly ok: false; readonly code: 'SignatureDoesNotMatch'; readonly stringToSign: string };

const requiredParams = ['AccessKeyId', 'Signature', 'SignatureMethod', 'SignatureVersion', 'SignatureNonce', 'Timestamp'] as const;

/** Read and sanity-check the V1 auth params (presence, SignatureMethod HMAC-SHA1, SignatureVersion 1.0). */
export function readV1Auth(params: ParamMap): V1AuthResult {
  for (const name of requiredParams) {
    if ((params[name] ?? '') === '') return { ok: false, code: 'MissingParameter', field: name, reason: 'is missing' };
  }
  if (params['SignatureMethod'] !== 'HMAC-SHA1') {
    return { ok: false, code: 'IncompleteSignature', field: 'SignatureMethod', reason: 'must be HMAC-SHA1' };
  }
  if (params['SignatureVersion'] !== '1.0') {
    return { ok: false, code: 'IncompleteSignature', field: 'SignatureVersion', reason: 'must be 1.0' };
  }
  const token = params['SecurityToken'];
  const value: V1Auth = {
    accessKeyId: params['AccessKeyId'] ?? '',
    signature: params['Signature'] ?? '',
    signatureNonce: params['SignatureNonce'] ?? '',
    timestamp: params['Timestamp'] ?? '',
    ...(token === undefined || token === '' ? {} : { securityToken: token }),
  };
  return { ok: true, value };
}

/** `METHOD&%2F&enc(canonicalQuery)` over every param but Signature; the method is upper-cased as pop-core does. */
export function v1StringToSign(method: string, params: ParamMap): string {
  return `${method.toUpperCase()}&${popEncode('/')}&${popEncode(canonicalQuery(params, 'Signature'))}`;
}

/** Base64 HMAC-SHA1 of the string-to-sign, keyed with `accessKeySecret + "&"`. */
export function v1Signature(stringToSign: string, accessKeySecret: string): string {
  return createHmac('sha1', `${accessKeySecret}&`).update(stringToSign, 'utf8').digest('base64');
}

/** Recompute the V1 signature of a request and compare it with its `Signature` param in constant time. */
export function verifyV1Signature(method: string, params: ParamMap, accessKeySecret: string): V1Verdict {
  const stringToSign = v1StringToSign(method, params);
  const expected = v1Signature(stringToSign, accessKeySecret);
  return constantTimeEqual(params['Signature'] ?? '', expected) ? { ok: true } : { ok: false, code: 'SignatureDoesNotMatch', stringToSign };
}
