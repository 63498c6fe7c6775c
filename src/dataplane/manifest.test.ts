import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { xxh64 } from '@node-rs/xxhash';
import { buildManifest, chunkDigest, diffManifest, Manifest, proofOf, targetManifest } from './manifest.ts';
import { mutateTestDisk, writeTestDisk } from './test-disk.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'ferry-manifest-'));
const disk = join(dir, 'disk.raw');
const sizeBytes = 24 * MiB + 12345;
after(() => rmSync(dir, { recursive: true, force: true }));
before(async () => {
  await writeTestDisk(disk, { sizeBytes, seed: 3 });
});

/** A chunk's xxh64 as 8 big-endian bytes, computed here without the code under test. */
function xxh64Bytes(data: Uint8Array): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(xxh64(data));
  return out;
}

test('records zero chunks as zero and data chunks by their xxh64', async () => {
  const manifest = await buildManifest(disk, { chunkSizeBytes: MiB });
  assert.equal(manifest.algorithm, 'xxh64');
  const content = readFileSync(disk);
  assert.equal(manifest.chunkCount, 25);
  assert.equal(manifest.lengthOf(24), 12345);
  for (let i = 0; i < manifest.chunkCount; i++) {
    const chunk = content.subarray(i * MiB, Math.min((i + 1) * MiB, sizeBytes));
    if (chunk.every((b) => b === 0)) assert.equal(manifest.kindAt(i), 'zero', `chunk ${i}`);
    else assert.deepEqual(manifest.digestAt(i), xxh64Bytes(chunk), `chunk ${i}`);
  }
  const counts = manifest.counts();
  assert.ok(counts.zero > 0 && counts.data > 0 && counts.unknown === 0, JSON.stringify(counts));
});

/** SHA-256 over the proof header and every chunk's digest, zero chunks hashed like any other. */
function independentProof(content: Buffer, label: string, digest: (chunk: Buffer) => Buffer): string {
  const header = Buffer.alloc(32);
  header.write(label, 0, 'latin1');
  header.writeBigUInt64BE(BigInt(content.length), 20);
  header.writeUInt32BE(MiB, 28);
  const hash = createHash('sha256').update(header);
  for (let at = 0; at < content.length; at += MiB) hash.update(digest(content.subarray(at, Math.min(at + MiB, content.length))));
  return hash.digest('hex');
}

test('the proof is the same one anybody gets by hashing every chunk, zero ones included', async () => {
  const manifest = await buildManifest(disk, { chunkSizeBytes: MiB });
  const content = readFileSync(disk);
  assert.equal(proofOf(manifest), independentProof(content, 'ferry-proof-xxh64', xxh64Bytes));
  assert.notEqual(proofOf(await buildManifest(disk, { chunkSizeBytes: 2 * MiB })), proofOf(manifest), 'chunk size is part of the proof');
});

test('a SHA-256 manifest (images made before xxh64) still reads and proves as it did, but is no base for a run', async () => {
  const old = await buildManifest(disk, { chunkSizeBytes: MiB, algorithm: 'sha256' });
  const back = Manifest.decode(old.encode());
  assert.equal(back.algorithm, 'sha256');
  assert.equal(old.encode().readUInt8(4), 1, 'the SHA-256 format keeps its algorithm byte');
  const content = readFileSync(disk);
  assert.equal(proofOf(back), independentProof(content, 'ferry-image-proof-v1', (chunk) => createHash('sha256').update(chunk).digest()), 'proofs recorded by older runs still check');
  for (let i = 0; i < back.chunkCount; i++) {
    if (back.kindAt(i) === 'data') assert.deepEqual(back.digestAt(i), createHash('sha256').update(content.subarray(i * MiB, (i + 1) * MiB)).digest(), `chunk ${i}`);
  }
  // As the base of a run it holds nothing: the target starts empty and every data chunk is sent.
  const current = await buildManifest(disk, { chunkSizeBytes: MiB });
  assert.deepEqual(diffManifest(back, current), diffManifest(undefined, current));
  assert.deepEqual(targetManifest(back, sizeBytes, MiB).counts(), { unknown: 0, zero: current.chunkCount, data: 0 });
});

test('a proof needs every chunk known', () => {
  const manifest = Manifest.zero(3 * MiB, MiB);
  manifest.setUnknown(1);
  assert.throws(() => proofOf(manifest), /unknown/);
});

test('encodes compactly and decodes to the same manifest', async () => {
  const manifest = await buildManifest(disk, { chunkSizeBytes: MiB });
  manifest.setUnknown(2);
  const bytes = manifest.encode();
  const { data } = manifest.counts();
  assert.equal(bytes.length, 24 + manifest.chunkCount + 8 * data);
  const back = Manifest.decode(bytes);
  assert.equal(back.diskSizeBytes, sizeBytes);
  assert.equal(back.chunkSizeBytes, MiB);
  for (let i = 0; i < manifest.chunkCount; i++) {
    assert.equal(back.kindAt(i), manifest.kindAt(i));
    assert.deepEqual(back.digestAt(i), manifest.digestAt(i));
  }
  assert.throws(() => Manifest.decode(bytes.subarray(0, bytes.length - 1)), { code: 'ProtocolError' });
  assert.throws(() => Manifest.decode(Buffer.from('not a manifest at all, really')), { code: 'ProtocolError' });
});

test('diffManifest lists exactly the chunks an incremental run must send', async () => {
  const previous = await buildManifest(disk, { chunkSizeBytes: MiB });
  const changed = join(dir, 'changed.raw');
  copyFileSync(disk, changed);
  const offsets = await mutateTestDisk(changed, { fraction: 0.01, blockBytes: 64 * 1024 });
  const current = await buildManifest(changed, { chunkSizeBytes: MiB });
  const touched = [...new Set(offsets.map((o) => Math.floor(o / MiB)))].sort((a, b) => a - b);
  assert.deepEqual(diffManifest(previous, current), touched);
  assert.deepEqual(diffManifest(current, current), []);

  // A chunk that became zero must be sent (as a zero frame), or the target keeps stale data.
  const zeroed = current.clone();
  const dataChunk = [...Array(current.chunkCount).keys()].find((i) => current.kindAt(i) === 'data') ?? -1;
  zeroed.setZero(dataChunk);
  assert.deepEqual(diffManifest(current, zeroed), [dataChunk]);

  // No base (a fresh image): every non-zero chunk. A base of another chunk size: every chunk.
  const all = [...Array(current.chunkCount).keys()];
  assert.deepEqual(diffManifest(undefined, current), all.filter((i) => current.kindAt(i) === 'data'));
  assert.deepEqual(diffManifest(await buildManifest(disk, { chunkSizeBytes: 2 * MiB }), current), all);
});

test('a resized manifest keeps whole chunks, zeroes new ones and forgets the one whose length changed', () => {
  const manifest = Manifest.zero(2.5 * MiB, MiB);
  manifest.setDigest(0, chunkDigest(Buffer.alloc(MiB, 1)));
  manifest.setDigest(2, chunkDigest(Buffer.alloc(MiB / 2, 1)));
  const grown = manifest.resized(4 * MiB);
  assert.deepEqual([0, 1, 2, 3].map((i) => grown.kindAt(i)), ['data', 'zero', 'unknown', 'zero']);
  const shrunk = manifest.resized(1.5 * MiB);
  assert.deepEqual([0, 1].map((i) => shrunk.kindAt(i)), ['data', 'unknown']);
});

test('the digest of zero bytes is recorded as a zero chunk', () => {
  const manifest = Manifest.unknown(2 * MiB, MiB);
  manifest.setDigest(1, chunkDigest(Buffer.alloc(MiB)));
  assert.equal(manifest.kindAt(1), 'zero');
  assert.ok(manifest.holds(1, null));
});
