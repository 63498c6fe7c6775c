import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { canonicalQuery, decodeParams, mergeParams, popEncode } from './percent-encoding.ts';

test('popEncode leaves only A-Z a-z 0-9 - _ . ~ literal and encodes the rest as uppercase %XY', () => {
  assert.equal(popEncode("x!'()*~"), 'x%21%27%28%29%2A~');
  assert.equal(popEncode('a b+c/d:e'), 'a%20b%2Bc%2Fd%3Ae');
  assert.equal(popEncode('AZaz09-_.~'), 'AZaz09-_.~');
  assert.equal(popEncode('é中'), '%C3%A9%E4%B8%AD');
  assert.equal(popEncode('/'), '%2F');
});

test('popEncode output holds only unreserved characters and %XY, and decodes back', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), (text) => {
      const encoded = popEncode(text);
      assert.match(encoded, /^(?:[A-Za-z0-9\-_.~]|%[0-9A-F]{2})*$/);
      assert.equal(decodeURIComponent(encoded), text);
    }),
  );
});

test('query strings decode the RFC 3986 form of pop-core and the querystring form of openapi-client alike', () => {
  const popCore = decodeParams('Name=x%21%27%28%29%2A~&Tag.1.Value=a%20b');
  const openapi = decodeParams("Name=x!%27()*~&Tag.1.Value=a%20b");
  assert.ok(popCore.ok && openapi.ok);
  assert.deepEqual({ ...popCore.params }, { Name: "x!'()*~", 'Tag.1.Value': 'a b' });
  assert.deepEqual({ ...openapi.params }, { ...popCore.params });
});

test('+ is a space and %2B a plus, in form bodies and queries', () => {
  const result = decodeParams('Name=a+b&Sum=1%2B1');
  assert.ok(result.ok);
  assert.equal(result.params['Name'], 'a b');
  assert.equal(result.params['Sum'], '1+1');
});

test('empty segments are skipped and a name without = has an empty value', () => {
  const result = decodeParams('&A=1&&B&C=&');
  assert.ok(result.ok);
  assert.deepEqual({ ...result.params }, { A: '1', B: '', C: '' });
});

test('a repeated name is refused rather than one copy silently winning', () => {
  assert.deepEqual(decodeParams('JobId.1=j-1&JobId.1=j-2'), {
    ok: false, code: 'InvalidParameter', field: 'JobId.1', reason: 'is given more than once',
  });
});

test('malformed escapes and invalid UTF-8 are InvalidParameter naming the param', () => {
  assert.deepEqual(decodeParams('Name=%ZZ'), { ok: false, code: 'InvalidParameter', field: 'Name', reason: 'is not valid percent-encoded UTF-8' });
  const badUtf8 = decodeParams('Name=%FF');
  assert.ok(!badUtf8.ok);
  assert.equal(badUtf8.field, 'Name');
  const badName = decodeParams('%E4%B8=1');
  assert.ok(!badName.ok);
  assert.match(badName.reason, /name/);
  const emptyName = decodeParams('=1');
  assert.ok(!emptyName.ok);
});

test('params named like Object.prototype members are plain params', () => {
  const result = decodeParams('__proto__=x&constructor=y&toString=z');
  assert.ok(result.ok);
  assert.equal(result.params['__proto__'], 'x');
  assert.equal(result.params['constructor'], 'y');
  assert.equal(Object.getPrototypeOf(result.params), null);
});

test('more than the allowed number of params is refused', () => {
  const text = Array.from({ length: 11 }, (_, i) => `P${i}=1`).join('&');
  const result = decodeParams(text, 10);
  assert.ok(!result.ok);
  assert.equal(result.field, '*');
  assert.ok(decodeParams(text, 11).ok);
});

test('query and body merge into one map; a name in both is refused', () => {
  const merged = mergeParams({ Action: 'StartReplicationJob' }, { JobId: 'j-1' });
  assert.ok(merged.ok);
  assert.deepEqual({ ...merged.params }, { Action: 'StartReplicationJob', JobId: 'j-1' });
  const clash = mergeParams({ JobId: 'j-1' }, { JobId: 'j-2' });
  assert.ok(!clash.ok);
  assert.equal(clash.field, 'JobId');
});

test('canonicalQuery sorts names by code unit (so Z precedes a) and encodes names and values', () => {
  assert.equal(canonicalQuery({ b: '2', a: 'x y', Z: '*', Signature: 's' }, 'Signature'), 'Z=%2A&a=x%20y&b=2');
  assert.equal(canonicalQuery({ 'JobId.10': 'b', 'JobId.9': 'a' }), 'JobId.10=b&JobId.9=a');
  assert.equal(canonicalQuery({}), '');
});

test('decoding what popEncode wrote gives back the original map', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.string({ unit: 'grapheme', minLength: 1 }), fc.string({ unit: 'grapheme' })), (params) => {
      const text = Object.entries(params).map(([k, v]) => `${popEncode(k)}=${popEncode(v)}`).join('&');
      const result = decodeParams(text);
      assert.ok(result.ok);
      assert.deepEqual({ ...result.params }, { ...params });
    }),
  );
});
