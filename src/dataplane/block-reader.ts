/**
 * Reads a disk image or block device in fixed chunks. Chunks that lie wholly in a hole are
 * reported as zero without being read; chunks that are read and turn out all zero are reported
 * the same way. Each data chunk comes in its own buffer, which the consumer owns (and gives back
 * to `pool` when it passed one); at most `readAheadChunks` reads run ahead of the consumer, so
 * memory stays at a few chunks whatever the disk size.
 */
import { readFile, stat, type FileHandle, open } from 'node:fs/promises';
import { dataExtents, type Extent } from './data-extents.ts';
import { type BufferPool } from './buffer-pool.ts';
import { DataPlaneError } from './dataplane-error.ts';
import { isAllZero } from './zeros.ts';

export const defaultChunkSizeBytes = 4 * 1024 * 1024;

/** One chunk of the source; `data` is null when the chunk is all zero (a hole or zero bytes). */
export interface Block {
  readonly index: number;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  readonly data: Buffer | null;
}

export interface ReadBlocksOptions {
  /** Default 4 MiB. */
  readonly chunkSizeBytes?: number;
  readonly signal?: AbortSignal;
  /** Chunks for which this returns false are neither read nor yielded; asked in index order. */
  readonly want?: (index: number) => boolean;
  /** Reads kept in flight ahead of the consumer; default 2. */
  readonly readAheadChunks?: number;
  /** Where chunk buffers come from; the consumer gives each `data` back when done with it. */
  readonly pool?: BufferPool;
}

/** How many chunks of `chunkSizeBytes` cover `sizeBytes` (the last one may be short). */
export function chunkCountOf(sizeBytes: number, chunkSizeBytes: number): number {
  return Math.ceil(sizeBytes / chunkSizeBytes);
}

/** Length in bytes of chunk `index` (only the last chunk may be shorter than the chunk size). */
export function chunkLengthOf(index: number, sizeBytes: number, chunkSizeBytes: number): number {
  return Math.min(chunkSizeBytes, sizeBytes - index * chunkSizeBytes);
}

/** Size in bytes of a regular file or a block device (the latter from /sys/dev/block). */
export async function sourceSizeBytes(path: string): Promise<number> {
  const info = await stat(path, { bigint: true }).catch((err: unknown) => {
    throw new DataPlaneError('SourceUnreadable', `Cannot open the source disk ${path}; check the path and its permissions.`, { cause: err });
  });
  if (info.isFile()) return Number(info.size);
  if (!info.isBlockDevice()) {
    throw new DataPlaneError('SourceUnreadable', `The source ${path} is neither a regular file nor a block device.`);
  }
  // glibc's dev_t layout: major in bits 8-19 and 32+, minor in bits 0-7 and 20+.
  const dev = info.rdev;
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  const sectors = await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8');
  return Number(sectors.trim()) * 512;
}

/** True when no extent overlaps [start, end); `cursor` walks the sorted extents forward. */
function inHole(extents: readonly Extent[], cursor: { at: number }, start: number, end: number): boolean {
  while (cursor.at < extents.length && (extents[cursor.at]?.endBytes ?? 0) <= start) cursor.at++;
  const next = extents[cursor.at];
  return next === undefined || next.startBytes >= end;
}

/**
 * The parts of [start, end) that extents cover, relative to `start`, or null when that is all of
 * it; called after `inHole` for the same range, so `cursor` already points at the first overlap.
 */
function dataRanges(extents: readonly Extent[], cursor: { at: number }, start: number, end: number): [number, number][] | null {
  const ranges: [number, number][] = [];
  for (let i = cursor.at; i < extents.length; i++) {
    const extent = extents[i];
    if (extent === undefined || extent.startBytes >= end) break;
    ranges.push([Math.max(extent.startBytes, start) - start, Math.min(extent.endBytes, end) - start]);
  }
  return ranges.length === 1 && ranges[0]?.[0] === 0 && ranges[0][1] === end - start ? null : ranges;
}

/**
 * Read chunk `index`; with `ranges`, only those parts of it (the rest is a hole: zero-filled here,
 * which costs less than the kernel copying the zeros it would read there).
 */
async function readChunk(fh: FileHandle, index: number, offsetBytes: number, lengthBytes: number, ranges: readonly [number, number][] | null, pool: BufferPool | undefined): Promise<Block> {
  const data = pool?.take(lengthBytes) ?? Buffer.allocUnsafeSlow(lengthBytes);
  let filled = 0;
  for (const [from, to] of ranges ?? [[0, lengthBytes]]) {
    data.fill(0, filled, from);
    for (let done = from; done < to; ) {
      const { bytesRead } = await fh.read(data, done, to - done, offsetBytes + done);
      if (bytesRead === 0) {
        throw new DataPlaneError('SourceUnreadable', `The source disk ended at byte ${offsetBytes + done}, before its size; was it resized while being read?`);
      }
      done += bytesRead;
    }
    filled = to;
  }
  data.fill(0, filled, lengthBytes);
  if (!isAllZero(data)) return { index, offsetBytes, lengthBytes, data };
  pool?.give(data);
  return { index, offsetBytes, lengthBytes, data: null };
}

/** Yields the chunks of `path` in index order; see the module comment for holes and memory. */
export async function* readBlocks(path: string, options: ReadBlocksOptions = {}): AsyncGenerator<Block, void, undefined> {
  const chunkSizeBytes = options.chunkSizeBytes ?? defaultChunkSizeBytes;
  const readAhead = Math.max(1, options.readAheadChunks ?? 2);
  const { signal, want, pool } = options;
  signal?.throwIfAborted();
  const sizeBytes = await sourceSizeBytes(path);
  const extents = await dataExtents(path, signal);
  const fh = await open(path, 'r').catch((err: unknown) => {
    throw new DataPlaneError('SourceUnreadable', `Cannot open the source disk ${path}; check the path and its permissions.`, { cause: err });
  });
  const count = chunkCountOf(sizeBytes, chunkSizeBytes);
  const cursor = { at: 0 };
  const queue: Promise<Block>[] = [];
  let next = 0;
  const fill = (): void => {
    while (queue.length < readAhead && next < count) {
      const index = next++;
      if (want !== undefined && !want(index)) continue;
      const offsetBytes = index * chunkSizeBytes;
      const lengthBytes = chunkLengthOf(index, sizeBytes, chunkSizeBytes);
      const endBytes = offsetBytes + lengthBytes;
      const pending =
        extents !== null && inHole(extents, cursor, offsetBytes, endBytes)
          ? Promise.resolve<Block>({ index, offsetBytes, lengthBytes, data: null })
          : readChunk(fh, index, offsetBytes, lengthBytes, extents === null ? null : dataRanges(extents, cursor, offsetBytes, endBytes), pool);
      // Reads run ahead; their failures surface when the consumer reaches them.
      pending.catch(() => undefined);
      queue.push(pending);
    }
  };
  try {
    for (;;) {
      fill();
      const pending = queue.shift();
      if (pending === undefined) return;
      const block = await pending;
      signal?.throwIfAborted();
      yield block;
    }
  } finally {
    await Promise.allSettled(queue);
    await fh.close();
  }
}
