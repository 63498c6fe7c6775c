import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { codecById, codecForLevel, compressChunk, decompressChunk } from './compression.ts';

const MiB = 1024 * 1024;
const text = Buffer.from('2026-01-01T00:00:00.000Z INFO [api-3] user=alice latency=12ms msg="ok"\n'.repeat(16_000)).subarray(0, MiB);

test('level 0 sends chunks raw', async () => {
  const chunk = await compressChunk(text, 0);
  assert.equal(chunk.codec, 'raw');
  assert.equal(chunk.payload, text);
});

test('levels 1-10 compress compressible chunks with brotli and restore them exactly', async () => {
  for (const level of [1, 5, 10]) {
    const chunk = await compressChunk(text, level);
    assert.equal(chunk.codec, 'brotli', `level ${level}`);
    assert.ok(chunk.payload.length < text.length / 10, `level ${level} shrinks text: ${chunk.payload.length}`);
    assert.ok((await decompressChunk(chunk.codec, chunk.payload, text.length)).equals(text));
  }
});

test('a chunk that does not shrink goes raw', async () => {
  const random = randomBytes(MiB);
  const chunk = await compressChunk(random, 1);
  assert.equal(chunk.codec, 'raw');
  assert.ok((await decompressChunk(chunk.codec, chunk.payload, MiB)).equals(random));
});

test('higher levels never pick a faster, weaker setting than lower ones', () => {
  const qualities = Array.from({ length: 11 }, (_, level) => codecForLevel(level).quality);
  assert.deepEqual([...qualities].sort((a, b) => a - b), qualities);
  assert.equal(codecForLevel(0).codec, 'raw');
  for (const bad of [-1, 11, 1.5, Number.NaN]) assert.throws(() => codecForLevel(bad), RangeError);
});

test('a payload that does not decode to its declared length is a protocol error', async () => {
  const chunk = await compressChunk(text, 1);
  await assert.rejects(decompressChunk('brotli', chunk.payload, text.length - 1), { code: 'ProtocolError' });
  await assert.rejects(decompressChunk('brotli', Buffer.from('garbage'), 10), { code: 'ProtocolError' });
  await assert.rejects(decompressChunk('raw', Buffer.alloc(5), 6), { code: 'ProtocolError' });
});

test('codec ids on the wire map back to codecs', () => {
  assert.equal(codecById(0), 'raw');
  assert.equal(codecById(1), 'brotli');
  assert.equal(codecById(9), undefined);
});
