import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  parseAcs3Authorization,
  readV3Auth,
  sha256Hex,
  v3CanonicalRequest,
  v3Signature,
  v3StringToSign,
  verifyV3Signature,
  type HeaderMap,
  type V3Request,
} from './signature-v3.ts';

// The vector of alibaba-rpc.md §4.
const emptySha256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const signedHeaders = ['host', 'x-acs-action', 'x-acs-content-sha256', 'x-acs-date', 'x-acs-signature-nonce', 'x-acs-version'];
const vectorHeaders = {
  host: 'smc.aliyuncs.com',
  'x-acs-action': 'DescribeReplicationJobs',
  'x-acs-version': '2019-06-01',
  'x-acs-date': '2024-01-01T00:00:00Z',
  'x-acs-signature-nonce': '0123456789abcdef0123456789abcdef',
  'x-acs-content-sha256': emptySha256,
};
const vectorSignature = '4daed4389571906419f55afd29f2ab20b4423f317322766087031fd31bfe1961';
const authorization = `ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=${signedHeaders.join(';')},Signature=${vectorSignature}`;

function vectorRequest(headers: HeaderMap = { ...vectorHeaders, authorization }, body: Uint8Array = new Uint8Array()): V3Request {
  return { method: 'POST', path: '/', query: { 'JobId.1': 'j-1', RegionId: 'cn-hangzhou' }, headers, body };
}

function readAuth(headers: HeaderMap) {
  const auth = readV3Auth(headers);
  assert.ok(auth.ok, auth.ok ? '' : auth.reason);
  return auth.value;
}

test('the §4 vector gives the documented canonical-request hash and signature', () => {
  assert.equal(sha256Hex(''), emptySha256);
  const canonical = v3CanonicalRequest(vectorRequest(), signedHeaders, emptySha256);
  assert.equal(sha256Hex(canonical), 'dc70d4537d4fd171f384c0815532f75f0691f325a5b6e45ec94f6a952eaee434');
  // CanonicalHeaders ends with \n, so a blank line precedes SignedHeaders.
  assert.match(canonical, /x-acs-version:2019-06-01\n\nhost;x-acs-action;/);
  assert.equal(v3Signature(v3StringToSign(canonical), 'testsecret'), vectorSignature);
});

test('a request carrying the vector Authorization verifies with the right secret only', () => {
  const request = vectorRequest();
  const auth = readAuth(request.headers);
  assert.deepEqual(verifyV3Signature(request, auth, 'testsecret'), { ok: true });
  const wrong = verifyV3Signature(request, auth, 'othersecret');
  assert.ok(!wrong.ok);
  assert.equal(wrong.code, 'SignatureDoesNotMatch');
  assert.match(wrong.stringToSign ?? '', /^ACS3-HMAC-SHA256\ndc70d453/);
});

test('a changed query param or signed header breaks the signature', () => {
  const request = vectorRequest();
  const auth = readAuth(request.headers);
  assert.equal(verifyV3Signature({ ...request, query: { 'JobId.1': 'j-2', RegionId: 'cn-hangzhou' } }, auth, 'testsecret').ok, false);
  const swapped = { ...vectorHeaders, authorization, 'x-acs-action': 'DeleteReplicationJob' };
  assert.equal(verifyV3Signature({ ...request, headers: swapped }, readAuth(swapped), 'testsecret').ok, false);
});

test('unsigned headers (accept, user-agent) may change; values are trimmed', () => {
  const headers = { ...vectorHeaders, authorization, accept: 'application/json', 'user-agent': 'anything', host: '  smc.aliyuncs.com ' };
  assert.deepEqual(verifyV3Signature(vectorRequest(headers), readAuth(headers), 'testsecret'), { ok: true });
});

test('a body that does not hash to x-acs-content-sha256 is refused before the signature is computed', () => {
  const request = vectorRequest(undefined, new TextEncoder().encode('JobId=j-9'));
  const verdict = verifyV3Signature(request, readAuth(request.headers), 'testsecret');
  assert.deepEqual(verdict, { ok: false, code: 'SignatureDoesNotMatch', reason: 'x-acs-content-sha256 does not match the SHA-256 of the body' });
});

test('the Authorization header parses into key id, signed headers and signature', () => {
  assert.deepEqual(parseAcs3Authorization(authorization), {
    ok: true,
    value: { accessKeyId: 'testid', signedHeaders, signature: vectorSignature },
  });
  // Spaces after commas, as some hand-written clients send, are tolerated.
  const spaced = parseAcs3Authorization(`ACS3-HMAC-SHA256 Credential=testid, SignedHeaders=host, Signature=${vectorSignature.toUpperCase()}`);
  assert.ok(spaced.ok);
  assert.equal(spaced.value.signature, vectorSignature);
});

test('malformed Authorization headers are IncompleteSignature with a reason', () => {
  const sig = vectorSignature;
  const cases = {
    'other algorithm': `ACS3-HMAC-SM3 Credential=a,SignedHeaders=host,Signature=${sig}`,
    'V1-style': 'acs testid:abc',
    'algorithm only': 'ACS3-HMAC-SHA256',
    'field missing': `ACS3-HMAC-SHA256 Credential=a,Signature=${sig}`,
    'field repeated': `ACS3-HMAC-SHA256 Credential=a,Credential=b,SignedHeaders=host,Signature=${sig}`,
    'unknown field': `ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=${sig},Extra=1`,
    'empty credential': `ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=${sig}`,
    'short signature': 'ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=abc',
    'upper-case header': `ACS3-HMAC-SHA256 Credential=a,SignedHeaders=Host,Signature=${sig}`,
    'unsorted headers': `ACS3-HMAC-SHA256 Credential=a,SignedHeaders=x-acs-date;host,Signature=${sig}`,
    'repeated header': `ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;host,Signature=${sig}`,
    'empty header name': `ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;;x-acs-date,Signature=${sig}`,
  };
  for (const [label, header] of Object.entries(cases)) {
    const result = parseAcs3Authorization(header);
    assert.ok(!result.ok, label);
    assert.equal(result.code, 'IncompleteSignature', label);
    assert.ok(result.reason.length > 0, label);
  }
});

test('readV3Auth returns what freshness and replay checks need', () => {
  const headers = { ...vectorHeaders, authorization, 'x-acs-security-token': 'sts-token', 'x-acs-accesskey-id': 'testid' };
  const withSts = `ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-accesskey-id;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version,Signature=${vectorSignature}`;
  const auth = readAuth({ ...headers, authorization: withSts });
  assert.equal(auth.accessKeyId, 'testid');
  assert.equal(auth.date, '2024-01-01T00:00:00Z');
  assert.equal(auth.signatureNonce, '0123456789abcdef0123456789abcdef');
  assert.equal(auth.contentSha256, emptySha256);
  assert.equal(auth.securityToken, 'sts-token');
});

test('an x-acs-* header left out of SignedHeaders is IncompleteSignature', () => {
  const result = readV3Auth({ ...vectorHeaders, authorization, 'x-acs-credentials-provider': 'static_ak' });
  assert.ok(!result.ok);
  assert.equal(result.code, 'IncompleteSignature');
  assert.match(result.reason, /x-acs-credentials-provider/);
});

test('host must be signed, and every signed header must be present', () => {
  const noHost = `ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=${signedHeaders.slice(1).join(';')},Signature=${vectorSignature}`;
  const unsignedHost = readV3Auth({ ...vectorHeaders, authorization: noHost });
  assert.ok(!unsignedHost.ok);
  assert.match(unsignedHost.reason, /host/);
  const extra = `ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=content-type;${signedHeaders.join(';')},Signature=${vectorSignature}`;
  const absent = readV3Auth({ ...vectorHeaders, authorization: extra });
  assert.ok(!absent.ok);
  assert.match(absent.reason, /content-type/);
});

test('missing V3 headers and a missing Authorization are IncompleteSignature', () => {
  const noDate = { ...vectorHeaders, 'x-acs-date': undefined, authorization };
  for (const headers of [noDate, { ...vectorHeaders }, { ...vectorHeaders, authorization, 'x-acs-content-sha256': 'nothex' }]) {
    const result = readV3Auth(headers);
    assert.ok(!result.ok);
    assert.equal(result.code, 'IncompleteSignature');
  }
});

test('an STS key id header must name the same key as the Credential', () => {
  const all = `ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-accesskey-id;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=${vectorSignature}`;
  const result = readV3Auth({ ...vectorHeaders, authorization: all, 'x-acs-accesskey-id': 'otherid' });
  assert.ok(!result.ok);
  assert.match(result.reason, /x-acs-accesskey-id/);
});

test('header names are matched case-insensitively, as a non-Node caller might pass them', () => {
  const headers = { Host: 'smc.aliyuncs.com', 'X-Acs-Action': 'DescribeReplicationJobs', 'x-acs-version': '2019-06-01', 'x-acs-date': '2024-01-01T00:00:00Z', 'x-acs-signature-nonce': '0123456789abcdef0123456789abcdef', 'x-acs-content-sha256': emptySha256, Authorization: authorization };
  assert.deepEqual(verifyV3Signature(vectorRequest(headers), readAuth(headers), 'testsecret'), { ok: true });
});
