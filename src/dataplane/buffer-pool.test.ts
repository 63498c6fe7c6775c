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

test('buffers from an allocator begin where it says, are reused from there, and foreign memory is never taken in', () => {
  const made: ArrayBuffer[] = [];
  const pool = new BufferPool(1024, 2, (bytes) => {
    const memory = new ArrayBuffer(bytes + 100);
    made.push(memory);
    return { memory, offsetBytes: 40 };
  });
  const a = pool.take(1024);
  assert.deepEqual([a.byteOffset, a.length, made.length], [40, 1024, 1]);
  pool.give(a);
  const again = pool.take(10);
  assert.deepEqual([again.buffer === made[0], again.byteOffset], [true, 40]);
  pool.give(Buffer.from(new ArrayBuffer(1024)));
  pool.take(1024);
  assert.equal(made.length, 2, 'memory the pool did not make is not handed out');
});
