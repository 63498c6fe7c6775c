import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { checkRequestTime, maxClockSkewMs, parsePopTimestamp } from './request-time.ts';

const now = Date.UTC(2024, 0, 1, 12, 0, 0);

test('a POP timestamp is exactly yyyy-MM-ddTHH:mm:ssZ in UTC and a real date', () => {
  assert.equal(parsePopTimestamp('2024-01-01T12:00:00Z'), now);
  for (const bad of ['2024-01-01T12:00:00.000Z', '2024-01-01T12:00:00+08:00', '2024-01-01 12:00:00Z', '2024-02-30T00:00:00Z', '2024-01-01T24:00:00Z', '', 'x']) {
    assert.equal(parsePopTimestamp(bad), undefined, bad);
  }
  assert.equal(parsePopTimestamp('2024-02-29T00:00:00Z'), Date.UTC(2024, 1, 29));
});

test('property: a timestamp of that form parses exactly when it names a real UTC second', () => {
  const digits = (n: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: n, maxLength: n }).map((d) => d.join(''));
  const near = (n: number, max: number) => fc.oneof(digits(n), fc.integer({ min: 0, max }).map((v) => String(v).padStart(n, '0')));
  const stamp = fc
    .tuple(near(4, 9999), near(2, 13), near(2, 32), near(2, 25), near(2, 61), near(2, 61))
    .map(([y, mo, d, h, mi, s]) => `${y}-${mo}-${d}T${h}:${mi}:${s}Z`);
  fc.assert(
    fc.property(stamp, (text) => {
      // The meaning: the instant whose ISO form is this text, if there is one; years before 100 are refused.
      const instant = Date.parse(text);
      const real = Number.isFinite(instant) && new Date(instant).toISOString() === `${text.slice(0, -1)}.000Z` && Number(text.slice(0, 4)) >= 100;
      assert.equal(parsePopTimestamp(text), real ? instant : undefined, text);
    }),
    { numRuns: 5000 },
  );
});

test('a malformed time is InvalidTimeStamp.Format', () => {
  const result = checkRequestTime('2024-01-01T12:00:00.123Z', now);
  assert.ok(!result.ok);
  assert.equal(result.code, 'InvalidTimeStamp.Format');
});

test('a time up to 15 minutes either side is fresh; beyond is InvalidTimeStamp.Expired', () => {
  assert.equal(maxClockSkewMs, 15 * 60_000);
  assert.deepEqual(checkRequestTime('2024-01-01T12:15:00Z', now), { ok: true, timeMs: now + maxClockSkewMs });
  assert.ok(checkRequestTime('2024-01-01T11:45:00Z', now).ok);
  for (const stale of ['2024-01-01T12:15:01Z', '2024-01-01T11:44:59Z']) {
    const result = checkRequestTime(stale, now);
    assert.ok(!result.ok);
    assert.equal(result.code, 'InvalidTimeStamp.Expired');
  }
});
