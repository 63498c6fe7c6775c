import assert from 'node:assert/strict';
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
