import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelayMs } from './backoff.ts';

test('backoff doubles per attempt and stops at the cap', () => {
  const policy = { baseMs: 100, maxMs: 1_000, jitter: 0 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((a) => backoffDelayMs(policy, a)),
    [100, 200, 400, 800, 1_000, 1_000],
  );
});

test('jitter stays within its fraction of the delay', () => {
  const policy = { baseMs: 1_000, maxMs: 60_000, jitter: 0.2 };
  assert.equal(backoffDelayMs(policy, 1, () => 0), 800);
  assert.equal(backoffDelayMs(policy, 1, () => 1), 1_200);
});
