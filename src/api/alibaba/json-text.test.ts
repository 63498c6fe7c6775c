import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { deepFreeze } from '../../core/deep-freeze.ts';
import { jsonText, rememberJsonText } from './json-text.ts';

test('an answer carrying remembered values reads exactly as JSON.stringify writes it', () => {
  const item = (id: string) => rememberJsonText(deepFreeze({ SourceId: id, Size: 42_949_672_960, Info: '{"a":"b\\n"}', Parts: { Part: [{ Path: '/dev/vda1' }] } }));
  const body = { RequestId: 'R-1', Skipped: undefined, TotalCount: 3, SourceServers: { SourceServer: [item('s-1'), item('s-2'), { SourceId: 's-3', Gone: undefined }] } };
  assert.equal(jsonText(body), JSON.stringify(body));
  const odd = { When: new Date(0), List: [undefined, () => 1, item('s-4'), null], Nested: { Deeper: { Deepest: [item('s-5')] } } };
  assert.equal(jsonText(odd), JSON.stringify(odd));
});

test('property: any JSON-like body, with some parts remembered, reads as JSON.stringify writes it', () => {
  const leaf = fc.oneof(fc.string(), fc.double({ noNaN: false }), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined));
  const tree = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object'), tie('remembered')),
    array: fc.array(tie('value'), { maxLength: 4 }),
    object: fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 4 }),
    remembered: fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 4 }).map((o) => rememberJsonText(deepFreeze(o))),
  }));
  fc.assert(
    fc.property(fc.dictionary(fc.string({ maxLength: 6 }), tree.value, { maxKeys: 5 }), (body) => {
      assert.equal(jsonText(body), JSON.stringify(body));
    }),
  );
});

test('only frozen values are remembered, so a remembered text cannot go stale', () => {
  assert.throws(() => rememberJsonText({ SourceId: 's-1' }), /frozen/);
});
