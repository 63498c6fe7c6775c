/**
 * Sparse backing files: where they hold data, reading a chunk without touching holes, the
 * content digest that proves two disks equal, and the seeded fill of a new disk.
 *
 * Node 20 has no lseek, so no SEEK_DATA/SEEK_HOLE; a short perl child (perl-base ships with
 * every Debian-like system) makes the calls. Without it, or on a filesystem that cannot say,
 * the whole file counts as data and all-zero chunks are found by reading them.
 */
import { execFile } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { open, stat } from 'node:fs/promises';

export const mib = 1024 * 1024;

/** A byte range [startBytes, endBytes) that may hold non-zero data. */
export interface Extent {
  readonly startBytes: number;
  readonly endBytes: number;
}

// Exit 3: SEEK_DATA failed for a reason other than "no more data" (ENXIO).
const seekDataScript = `
open(my $f, '<', $ARGV[0]) or exit 2;
my $end = -s $f; my $pos = 0;
while ($pos < $end) {
  my $d = sysseek($f, $pos, 3);
  if (!defined $d) { exit($!{ENXIO} ? 0 : 3); }
  my $h = sysseek($f, $d, 4);
  exit 3 unless defined $h;
  printf "%d %d\\n", $d, $h; $pos = $h;
}`;

/** Data extents of a file of `sizeBytes`, in order; the whole file when holes cannot be found. */
export async function dataExtents(path: string, sizeBytes: number, signal?: AbortSignal): Promise<Extent[]> {
  const whole = sizeBytes === 0 ? [] : [{ startBytes: 0, endBytes: sizeBytes }];
  // A fully allocated file has no holes to find; spare the child process.
  if ((await stat(path)).blocks * 512 >= sizeBytes) return whole;
  const stdout = await new Promise<string | null>((resolve, reject) => {
    execFile('perl', ['-e', seekDataScript, path], { signal, maxBuffer: 256 * mib }, (err, out) => {
      if (signal?.aborted === true) reject(signal.reason as Error);
      else resolve(err === null ? out : null);
    });
  });
  if (stdout === null) return whole;
  const extents: Extent[] = [];
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const [start, end] = line.split(' ').map(Number);
    if (start === undefined || end === undefined || !(end > start)) return whole;
    extents.push({ startBytes: start, endBytes: Math.min(end, sizeBytes) });
  }
  return extents;
}

/** Indexes of the `chunkBytes` chunks that overlap any extent, ascending. */
export function chunksWithData(extents: readonly Extent[], chunkBytes: number): number[] {
  const out: number[] = [];
  for (const e of extents) {
    const first = Math.max(Math.floor(e.startBytes / chunkBytes), (out.at(-1) ?? -1) + 1);
    const last = Math.floor((e.endBytes - 1) / chunkBytes);
    for (let i = first; i <= last; i += 1) out.push(i);
  }
  return out;
}

let zeros = Buffer.alloc(0);

/** True when every byte is zero (native memcmp against a shared zero buffer). */
export function isAllZero(data: Buffer): boolean {
  if (data.length === 0) return true;
  if (data[0] !== 0) return false;
  if (zeros.length < data.length) zeros = Buffer.alloc(data.length);
  return data.equals(zeros.subarray(0, data.length));
}

/**
 * Read chunk `index` into `buf` (resized to the chunk's length): only the parts that overlap
 * data extents are read, holes are zero-filled in memory.
 */
export async function readChunk(file: FileHandle, extents: readonly Extent[], index: number, chunkBytes: number, sizeBytes: number, buf: Buffer): Promise<Buffer> {
  const start = index * chunkBytes;
  const end = Math.min(start + chunkBytes, sizeBytes);
  const chunk = buf.subarray(0, end - start);
  let cursor = start;
  for (const e of extents) {
    if (e.endBytes <= start) continue;
    if (e.startBytes >= end) break;
    const from = Math.max(start, e.startBytes);
    const to = Math.min(end, e.endBytes);
    chunk.fill(0, cursor - start, from - start);
    let done = 0;
    while (done < to - from) {
      const { bytesRead } = await file.read(chunk, from - start + done, to - from - done, from + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    chunk.fill(0, from - start + done, to - start);
    cursor = to;
  }
  chunk.fill(0, cursor - start);
  return chunk;
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Content digest of a disk: sha256 over its size and, for every non-zero chunk, the chunk's
 * index and sha256. Two files have equal digests exactly when their bytes are equal (up to
 * sha256), and it costs reads of the data only, not of a 20 GiB apparent size.
 */
export async function contentDigest(path: string, chunkBytes = 4 * mib, signal?: AbortSignal): Promise<string> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const extents = await dataExtents(path, size, signal);
    const entries: ChunkHash[] = [];
    const buf = Buffer.alloc(chunkBytes);
    for (const index of chunksWithData(extents, chunkBytes)) {
      signal?.throwIfAborted();
      const chunk = await readChunk(file, extents, index, chunkBytes, size, buf);
      if (!isAllZero(chunk)) entries.push([index, sha256Hex(chunk)]);
    }
    return manifestDigest(size, chunkBytes, entries);
  } finally {
    await file.close();
  }
}

/** A non-zero chunk's index and sha256. */
export type ChunkHash = readonly [index: number, sha256: string];

/** The content digest from a disk's chunk manifest (its non-zero chunks in ascending order). */
export function manifestDigest(sizeBytes: number, chunkBytes: number, entries: readonly ChunkHash[]): string {
  const manifest = createHash('sha256').update(`size ${sizeBytes} chunk ${chunkBytes}\n`);
  for (const [index, hash] of entries) manifest.update(`${index} ${hash}\n`);
  return manifest.digest('hex');
}

/**
 * Where a new disk's seeded data goes: `fillBytes` in 1 MiB blocks spread evenly over the disk,
 * so copies meet holes between data as real disks have.
 */
export function fillExtents(sizeBytes: number, fillBytes: number): Extent[] {
  const blocks = Math.ceil(fillBytes / mib);
  if (blocks === 0) return [];
  const strideMib = Math.max(1, Math.floor(sizeBytes / mib / blocks));
  const out: Extent[] = [];
  let left = fillBytes;
  for (let b = 0; b < blocks; b += 1) {
    const start = b * strideMib * mib;
    const length = Math.min(mib, left, sizeBytes - start);
    if (length <= 0) break;
    out.push({ startBytes: start, endBytes: start + length });
    left -= length;
  }
  return out;
}

/**
 * Write a disk's seeded data: an AES-256-CTR keystream keyed by sha256(seed), laid over
 * `fillExtents`. The same seed always gives the same bytes, on any machine.
 */
export async function writeSeededFill(file: FileHandle, seed: string, sizeBytes: number, fillBytes: number, signal?: AbortSignal): Promise<void> {
  const key = createHash('sha256').update(`ferry-disk-fill\0${seed}`).digest();
  const stream = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const plain = Buffer.alloc(mib);
  for (const e of fillExtents(sizeBytes, fillBytes)) {
    signal?.throwIfAborted();
    const data = stream.update(plain.subarray(0, e.endBytes - e.startBytes));
    await file.write(data, 0, data.length, e.startBytes);
  }
}
