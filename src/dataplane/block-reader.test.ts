import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync, ftruncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Block, readBlocks, sourceSizeBytes } from './block-reader.ts';
import { dataExtents, parseFilefrag } from './data-extents.ts';
import { isAllZero } from './zeros.ts';

const dir = mkdtempSync(join(tmpdir(), 'ferry-block-reader-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

/** 10.5 MiB in 1 MiB chunks: data at chunks 0, 3 (one byte at its end), 7-8 and the short last chunk; written zeros at 5; holes elsewhere. */
function sparseFixture(name: string): { path: string; content: Buffer } {
  const path = join(dir, name);
  const content = Buffer.alloc(10.5 * MiB);
  randomFillSync(content, 0, MiB);
  content[4 * MiB - 1] = 7;
  randomFillSync(content, 7 * MiB, 2 * MiB);
  randomFillSync(content, 10 * MiB, 0.5 * MiB);
  const fd = openSync(path, 'w');
  for (const [from, to] of [[0, MiB], [4 * MiB - 4096, 4 * MiB], [5 * MiB, 6 * MiB], [7 * MiB, 9 * MiB], [10 * MiB, 10.5 * MiB]] as const) {
    writeSync(fd, content, from, to - from, from);
  }
  ftruncateSync(fd, content.length);
  closeSync(fd);
  return { path, content };
}

async function collect(iter: AsyncIterable<Block>): Promise<Block[]> {
  const out: Block[] = [];
  for await (const block of iter) out.push(block);
  return out;
}

test('reads every chunk in order with the short last one, and reports holes and zero bytes as zero', async () => {
  const { path, content } = sparseFixture('mixed.raw');
  const blocks = await collect(readBlocks(path, { chunkSizeBytes: MiB }));
  assert.deepEqual(
    blocks.map((b) => [b.index, b.offsetBytes, b.lengthBytes]),
    Array.from({ length: 11 }, (_, i) => [i, i * MiB, i === 10 ? 0.5 * MiB : MiB]),
  );
  assert.deepEqual(
    blocks.map((b) => b.data !== null),
    [true, false, false, true, false, false, false, true, true, false, true],
  );
  for (const block of blocks) {
    const expected = content.subarray(block.offsetBytes, block.offsetBytes + block.lengthBytes);
    if (block.data === null) assert.ok(isAllZero(expected), `chunk ${block.index} reported zero`);
    else assert.ok(block.data.equals(expected), `chunk ${block.index} content`);
  }
});

test('finds the data extents of a sparse file and none for a fully allocated one', async () => {
  const { path } = sparseFixture('extents.raw');
  const extents = await dataExtents(path);
  assert.ok(extents !== null, 'python3 with SEEK_DATA is needed to map holes; run scripts/install-test-deps.sh');
  // Every written range lies inside an extent, and the 1 MiB holes between are outside all of them.
  const covered = (from: number, to: number): boolean => extents.some((e) => e.startBytes <= from && e.endBytes >= to);
  assert.ok(covered(0, MiB) && covered(4 * MiB - 4096, 4 * MiB) && covered(7 * MiB, 9 * MiB) && covered(10 * MiB, 10.5 * MiB));
  assert.ok(extents.every((e) => e.endBytes <= MiB || e.startBytes >= 2 * MiB), 'chunk 1 is a hole');

  const full = join(dir, 'full.raw');
  writeFileSync(full, Buffer.alloc(2 * MiB, 1));
  assert.equal(await dataExtents(full), null);
});

test('skips chunks the caller does not want, without yielding them', async () => {
  const { path } = sparseFixture('want.raw');
  const blocks = await collect(readBlocks(path, { chunkSizeBytes: MiB, want: (i) => i % 3 === 0 }));
  assert.deepEqual(blocks.map((b) => b.index), [0, 3, 6, 9]);
});

test('stops with the abort reason when the signal aborts mid-read', async () => {
  const { path } = sparseFixture('abort.raw');
  const controller = new AbortController();
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const block of readBlocks(path, { chunkSizeBytes: MiB, signal: controller.signal })) {
        seen.push(block.index);
        if (block.index === 2) controller.abort(new Error('stop here'));
      }
    })(),
    /stop here/,
  );
  assert.deepEqual(seen, [0, 1, 2]);
});

test('a missing source fails with SourceUnreadable', async () => {
  await assert.rejects(collect(readBlocks(join(dir, 'nope.raw'))), { name: 'DataPlaneError', code: 'SourceUnreadable' });
});

test('reads a block device through a loop device, sized from /sys', async (t) => {
  assert.equal(process.getuid?.(), 0, 'attaching a loop device needs root; run the data-plane tests as root (as CI does)');
  const { path, content } = sparseFixture('loop.raw');
  const device = execFileSync('losetup', ['--find', '--show', path], { encoding: 'utf8' }).trim();
  t.after(() => execFileSync('losetup', ['--detach', device]));
  assert.equal(await sourceSizeBytes(device), content.length);
  const blocks = await collect(readBlocks(device, { chunkSizeBytes: 4 * MiB }));
  assert.equal(blocks.length, 3);
  const joined = Buffer.concat(blocks.map((b) => b.data ?? Buffer.alloc(b.lengthBytes)));
  assert.ok(joined.equals(readFileSync(path)));
});

test('filefrag output: unwritten (preallocated) extents count as holes, neighbours merge', () => {
  const output = [
    'Filesystem type is: ef53',
    'File size of t.raw is 10485760 (2560 blocks of 4096 bytes)',
    ' ext:     logical_offset:        physical_offset: length:   expected: flags:',
    '   0:      256..     511:    6240000..   6240255:    256:        256: unwritten',
    '   1:        0..      15:    6100000..   6100015:     16:            ',
    '   2:       16..      31:    6200000..   6200015:     16:    6100016:',
    '   3:     1000..    1000:          0..         0:      0:             last,unknown_loc,delalloc',
    't.raw: 4 extents found',
  ].join('\n');
  assert.deepEqual(parseFilefrag(output), [
    { startBytes: 0, endBytes: 32 * 4096 },
    { startBytes: 1000 * 4096, endBytes: 1001 * 4096 },
  ]);
  assert.equal(parseFilefrag('filefrag: FIBMAP unsupported'), null);
});
