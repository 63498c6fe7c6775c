import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readV1Auth, v1Signature, v1StringToSign, verifyV1Signature } from './signature-v1.ts';

// The documented test vector (alibaba-rpc.md §3).
const docParams = {
  AccessKeyId: 'testid',
  Action: 'DescribeRegions',
  Format: 'XML',
  SignatureMethod: 'HMAC-SHA1',
  SignatureNonce: '3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf',
  SignatureVersion: '1.0',
  Timestamp: '2016-02-23T12:46:24Z',
  Version: '2014-05-26',
};
const docStringToSign =
  'GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26';

test('the documented V1 vector gives the documented string-to-sign and signature', () => {
  assert.equal(v1StringToSign('GET', docParams), docStringToSign);
  assert.equal(v1Signature(docStringToSign, 'testsecret'), 'OLeaidS1JvxuMvnyHOwuJ+uX5qY=');
});

test('a request carrying the documented signature verifies; the Signature param itself is not signed', () => {
  const signed = { ...docParams, Signature: 'OLeaidS1JvxuMvnyHOwuJ+uX5qY=' };
  assert.deepEqual(verifyV1Signature('GET', signed, 'testsecret'), { ok: true });
  assert.equal(v1StringToSign('get', signed), docStringToSign);
});

test('a wrong secret, a changed param or another method is SignatureDoesNotMatch with our string-to-sign', () => {
  const signed = { ...docParams, Signature: 'OLeaidS1JvxuMvnyHOwuJ+uX5qY=' };
  assert.deepEqual(verifyV1Signature('GET', signed, 'othersecret'), { ok: false, code: 'SignatureDoesNotMatch', stringToSign: docStringToSign });
  assert.equal(verifyV1Signature('GET', { ...signed, Format: 'JSON' }, 'testsecret').ok, false);
  assert.equal(verifyV1Signature('POST', signed, 'testsecret').ok, false);
  assert.equal(verifyV1Signature('GET', { ...signed, Extra: '' }, 'testsecret').ok, false);
});

test('readV1Auth names the first missing auth param as MissingParameter', () => {
  assert.deepEqual(readV1Auth({ ...docParams, Signature: 's', SignatureNonce: '' }), { ok: false, code: 'MissingParameter', field: 'SignatureNonce', reason: 'is missing' });
  assert.deepEqual(readV1Auth({ ...docParams }), { ok: false, code: 'MissingParameter', field: 'Signature', reason: 'is missing' });
});

test('readV1Auth refuses other signature methods and versions as IncompleteSignature', () => {
  const base = { ...docParams, Signature: 's' };
  const method = readV1Auth({ ...base, SignatureMethod: 'HMAC-SHA256' });
  assert.ok(!method.ok);
  assert.equal(method.code, 'IncompleteSignature');
  assert.equal(method.field, 'SignatureMethod');
  const version = readV1Auth({ ...base, SignatureVersion: '2.0' });
  assert.ok(!version.ok);
  assert.equal(version.field, 'SignatureVersion');
});

test('readV1Auth returns the key id, nonce, timestamp and an STS token when present', () => {
  const result = readV1Auth({ ...docParams, Signature: 's', SecurityToken: 'tok' });
  assert.deepEqual(result, {
    ok: true,
    value: { accessKeyId: 'testid', signature: 's', signatureNonce: docParams.SignatureNonce, timestamp: docParams.Timestamp, securityToken: 'tok' },
  });
  const plain = readV1Auth({ ...docParams, Signature: 's' });
  assert.ok(plain.ok);
  assert.equal('securityToken' in plain.value, false);
});
