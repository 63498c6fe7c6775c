/**
 * Every registered POP action gets random parameter maps through a real `ferry serve`: each answer
 * must be a success or a documented 4xx code, never a 5xx. New actions are covered automatically
 * because the list comes from the same registry the server dispatches with.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { TSchema } from 'typebox';
import { popProducts } from '../src/api/alibaba/action-registry.ts';
import { buildActionRegistry } from '../src/api/alibaba/all-actions.ts';
import { popEncode } from '../src/api/common/percent-encoding.ts';
import { v1Signature, v1StringToSign } from '../src/api/alibaba/signature-v1.ts';
import { errorCatalogue } from '../src/core/errors.ts';
import { type FerryWithKey, startFerryWithKey } from './support/api.ts';

/** Wire names an action's schema knows, in flattened form: `Name`, `Tag.1.Key`, `DataDisk.2.Part.1.SizeBytes`. */
function wireNames(schema: TSchema, prefix: string, depth = 0): string[] {
  const node = schema as { type?: string; properties?: Record<string, TSchema>; items?: TSchema; anyOf?: TSchema[] };
  if (depth > 4) return [prefix];
  if (node.anyOf !== undefined) return node.anyOf.flatMap((s) => wireNames(s, prefix, depth + 1));
  if (node.type === 'object' && node.properties !== undefined) {
    return Object.entries(node.properties).flatMap(([name, child]) => wireNames(child, prefix === '' ? name : `${prefix}.${name}`, depth + 1));
  }
  if (node.type === 'array' && node.items !== undefined) {
    return [prefix, ...wireNames(node.items, `${prefix}.1`, depth + 1), ...wireNames(node.items, `${prefix}.2`, depth + 1)];
  }
  return [prefix];
}

const wireValue = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -5, max: 40_000 }).map(String),
  fc.constantFrom('true', 'false', '', '0', '-1', '1e309', 'NaN', '9007199254740993', '2026-01-01T00:00:00Z', 'Image', 'TargetInstance', 'abandon'),
  fc.constantFrom('{"bandwidth_limit":10}', '[1,2', '["a","b"]', '{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":1}}}}}}}}}}}'),
  fc.string({ minLength: 200, maxLength: 3000 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
);

const documentedCodes = new Set<string>(Object.values(errorCatalogue).map((e) => e.alibabaCode));

describe('every POP action answers random params with success or a documented 4xx', () => {
  let ferry: FerryWithKey;
  before(async () => {
    ferry = await startFerryWithKey({ env: { FERRY_RATE_USER_RPS: '100000', FERRY_RATE_USER_BURST: '100000', FERRY_RATE_API_RPS: '100000', FERRY_RATE_API_BURST: '100000' } });
  });
  after(() => ferry.close());

  const actions = buildActionRegistry().all();
  it('has actions to fuzz', () => assert.ok(actions.length > 0));

  for (const action of actions) {
    it(`${action.product}:${action.name}`, async () => {
      const names = wireNames(action.params, '');
      const paramMap = fc.dictionary(fc.oneof(fc.constantFrom(...names), fc.string({ minLength: 1, maxLength: 10 })), wireValue, { maxKeys: 8 });
      await fc.assert(
        fc.asyncProperty(paramMap, async (params) => {
          const all: Record<string, string> = {
            ...params,
            Action: action.name,
            Version: popProducts[action.product].version,
            Format: 'JSON',
            AccessKeyId: ferry.key.accessKeyId,
            SignatureMethod: 'HMAC-SHA1',
            SignatureVersion: '1.0',
            SignatureNonce: randomUUID(),
            Timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
          };
          delete all['Signature'];
          all['Signature'] = v1Signature(v1StringToSign('POST', all), ferry.key.accessKeySecret);
          const form = Object.entries(all)
            .map(([k, v]) => `${popEncode(k)}=${popEncode(v)}`)
            .join('&');
          const response = await fetch(`${ferry.server.url}/`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
          const body = (await response.json()) as { Code?: string; Message?: string };
          const context = `${action.name} ${JSON.stringify(params).slice(0, 300)} -> ${response.status} ${body.Code ?? ''} ${body.Message ?? ''}`;
          assert.ok(response.status < 500, context);
          if (response.status !== 200) {
            assert.ok(body.Code !== undefined && documentedCodes.has(body.Code), `undocumented code: ${context}`);
          }
        }),
        { numRuns: 40 },
      );
    });
  }
});
