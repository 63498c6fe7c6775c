import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RawImageWriter } from './raw-image-writer.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'ferry-raw-writer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a new image has its full size but only the written chunks allocated', async () => {
  const path = join(dir, 'new.raw');
  const image = await RawImageWriter.open(path, 64 * MiB);
  assert.equal(image.startedEmpty, true);
  await image.write(8 * MiB, Buffer.alloc(MiB, 0xab));
  await image.sync();
  await image.close();
  const info = statSync(path);
  assert.equal(info.size, 64 * MiB);
  assert.ok(info.blocks * 512 <= 2 * MiB, `allocated ${info.blocks * 512} bytes`);
  const content = readFileSync(path);
  assert.equal(content[8 * MiB], 0xab);
  assert.equal(content[9 * MiB], 0);
});

test('reopening keeps the content, resizes, and writeZeros clears a range', async () => {
  const path = join(dir, 'reopen.raw');
  writeFileSync(path, Buffer.alloc(3 * MiB, 1));
  const image = await RawImageWriter.open(path, 4 * MiB);
  assert.equal(image.startedEmpty, false);
  await image.writeZeros(MiB, MiB);
  await image.close();
  const content = readFileSync(path);
  assert.equal(content.length, 4 * MiB);
  assert.deepEqual([content[0], content[MiB], content[2 * MiB - 1], content[2 * MiB], content[3 * MiB]], [1, 0, 0, 1, 0]);
});

test('fresh discards old content', async () => {
  const path = join(dir, 'fresh.raw');
  writeFileSync(path, Buffer.alloc(MiB, 9));
  const image = await RawImageWriter.open(path, 2 * MiB, { fresh: true });
  await image.close();
  assert.ok(readFileSync(path).every((b) => b === 0));
  assert.equal(statSync(path).blocks, 0);
});

test('writeSparse leaves the all-zero 64 KiB pieces of a chunk as holes', async () => {
  const path = join(dir, 'sparse.raw');
  const image = await RawImageWriter.open(path, 4 * MiB);
  const chunk = Buffer.alloc(2 * MiB);
  chunk.fill(7, 0, 64 * 1024);
  chunk.fill(8, MiB + 5, MiB + 6);
  chunk.fill(9, 2 * MiB - 100);
  await image.writeSparse(MiB, chunk);
  await image.sync();
  await image.close();
  const content = readFileSync(path);
  assert.ok(content.subarray(MiB, 3 * MiB).equals(chunk));
  assert.ok(statSync(path).blocks * 512 <= 3 * 64 * 1024, `allocated ${statSync(path).blocks * 512} bytes for three non-zero pieces`);
});

/** Bytes of `path` held in the page cache (util-linux fincore). */
function cachedBytes(path: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' }).trim());
}

test('with direct, chunks from directMemory bypass the page cache; anything else is written through it, and all reads back exactly', async () => {
  const path = join(dir, 'direct.raw');
  const image = await RawImageWriter.open(path, 8 * MiB + 1000, { direct: true });
  const head = 17;
  const { memory, offsetBytes } = image.directMemory(MiB + head, head);
  const chunk = Buffer.from(memory, offsetBytes + head, MiB);
  randomFillSync(chunk);
  await image.writeSparse(2 * MiB, chunk);
  const direct = image.direct;
  // Not on 4 KiB file boundaries, other memory, a tail shorter than a block: the page cache.
  await image.write(4 * MiB + 512, chunk.subarray(0, 64 * 1024));
  const plain = randomFillSync(Buffer.alloc(MiB));
  await image.write(5 * MiB, plain);
  await image.write(8 * MiB, chunk.subarray(0, 1000));
  await image.sync();
  await image.close();
  const content = readFileSync(path);
  assert.ok(content.subarray(2 * MiB, 3 * MiB).equals(chunk));
  assert.ok(content.subarray(4 * MiB + 512, 4 * MiB + 512 + 64 * 1024).equals(chunk.subarray(0, 64 * 1024)));
  assert.ok(content.subarray(5 * MiB, 6 * MiB).equals(plain));
  assert.ok(content.subarray(8 * MiB).equals(chunk.subarray(0, 1000)));
  assert.ok(content.subarray(0, 2 * MiB).every((b) => b === 0));
  if (direct) {
    // Read back above, so cached now: a second image, written and only inspected, shows where the bytes went.
    const second = join(dir, 'direct-2.raw');
    const again = await RawImageWriter.open(second, 4 * MiB, { direct: true });
    const pool = again.directMemory(MiB, 0);
    await again.write(0, Buffer.from(pool.memory, pool.offsetBytes, MiB).fill(7));
    await again.write(2 * MiB, plain);
    await again.close();
    assert.equal(cachedBytes(second), MiB, 'only the chunk from plain memory sits in the page cache');
  }
});
