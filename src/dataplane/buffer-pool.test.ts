import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool } from './buffer-pool.ts';

test('a buffer given back is handed out again, at most maxFree are kept', () => {
  const pool = new BufferPool(1024, 1);
  const a = pool.take(1000);
  const b = pool.take(1024);
  assert.equal(a.length, 1000);
  assert.notEqual(a.buffer, b.buffer);
  pool.give(a.subarray(10, 20));
  pool.give(b);
  assert.equal(pool.take(512).buffer, a.buffer, 'a view gives back the whole buffer');
  assert.notEqual(pool.take(512).buffer, b.buffer, 'only one was kept');
});

test('a request larger than the pool size gets its own buffer, which is never pooled', () => {
  const pool = new BufferPool(1024, 4);
  const big = pool.take(4096);
  assert.equal(big.length, 4096);
  pool.give(big);
  assert.notEqual(pool.take(1024).buffer, big.buffer);
});
