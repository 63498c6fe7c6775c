/**
 * Sparse backing files: where they hold data, reading a chunk without touching holes, the
 * content digest that proves two disks equal, and the seeded fill of a new disk.
 *
 * Node 20 has no lseek, so no SEEK_DATA/SEEK_HOLE; a perl child (perl-base ships with every
 * Debian-like system) makes the calls. One child per process answers every file in turn: starting
 * a child costs more CPU than a whole cold move of an empty disk. Without perl, or on a filesystem
 * that cannot say, the whole file counts as data and all-zero chunks are found by reading them.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { open, stat } from 'node:fs/promises';

export const mib = 1024 * 1024;

/** A byte range [startBytes, endBytes) that may hold non-zero data. */
export interface Extent {
  readonly startBytes: number;
  readonly endBytes: number;
}

// Reads NUL-terminated paths; answers each with "start end" lines, then "." (done) or "!" (cannot say).
const seekDataScript = `
$| = 1; $/ = "\\0";
while (my $path = <STDIN>) {
  chop $path;
  my $out = ''; my $ok = open(my $f, '<', $path);
  if ($ok) {
    my $end = -s $f; my $pos = 0;
    while ($pos < $end) {
      my $d = sysseek($f, $pos, 3);
      if (!defined $d) { $ok = 0 unless $!{ENXIO}; last; }
      my $h = sysseek($f, $d, 4);
      if (!defined $h) { $ok = 0; last; }
      $out .= sprintf("%d %d\\n", $d, $h); $pos = $h;
    }
    close $f;
  }
  print $ok ? "$out.\\n" : "!\\n";
}`;

interface SeekRequest {
  readonly lines: string[];
  readonly done: (lines: readonly string[] | null) => void;
}

/**
 * The perl child that finds data extents, started on first use and again after it exits. Requests
 * are answered in order; it keeps the process alive only while one is pending.
 */
class SeekHelper {
  #child: ChildProcessWithoutNullStreams | undefined;
  readonly #pending: SeekRequest[] = [];
  #partial = '';

  /** The lines answered for `path`, or null when its extents cannot be found. */
  query(path: string, signal?: AbortSignal): Promise<readonly string[] | null> {
    signal?.throwIfAborted();
    const child = this.#start();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(signal?.reason as Error);
      signal?.addEventListener('abort', onAbort, { once: true });
      // An aborted caller's answer is still read off the pipe, so the next one gets its own.
      this.#pending.push({ lines: [], done: (lines) => (signal?.removeEventListener('abort', onAbort), resolve(lines)) });
      if (this.#pending.length === 1) this.#ref(child, true);
      child.stdin.write(`${path}\0`);
    });
  }

  #start(): ChildProcessWithoutNullStreams {
    if (this.#child !== undefined) return this.#child;
    const child = spawn('perl', ['-e', seekDataScript], { stdio: 'pipe' });
    this.#child = child;
    this.#partial = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => this.#read(text));
    // A write to a child that died fails here and in 'close', which answers every pending request.
    child.stdin.on('error', () => undefined);
    child.on('error', () => this.#stopped(child));
    child.on('close', () => this.#stopped(child));
    child.unref();
    this.#ref(child, false);
    return child;
  }

  #read(text: string): void {
    const lines = (this.#partial + text).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      const request = this.#pending[0];
      if (request === undefined) continue;
      if (line !== '.' && line !== '!') {
        request.lines.push(line);
        continue;
      }
      this.#pending.shift();
      request.done(line === '.' ? request.lines : null);
    }
    if (this.#pending.length === 0 && this.#child !== undefined) this.#ref(this.#child, false);
  }

  #stopped(child: ChildProcessWithoutNullStreams): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    for (const request of this.#pending.splice(0)) request.done(null);
  }

  #ref(child: ChildProcessWithoutNullStreams, on: boolean): void {
    for (const pipe of [child.stdin, child.stdout, child.stderr] as const) {
      const socket = pipe as unknown as { ref?: () => void; unref?: () => void };
      if (on) socket.ref?.();
      else socket.unref?.();
    }
  }
}

const seekHelper = new SeekHelper();

/** Data extents of a file of `sizeBytes`, in order; the whole file when holes cannot be found. */
export async function dataExtents(path: string, sizeBytes: number, signal?: AbortSignal): Promise<Extent[]> {
  const whole = sizeBytes === 0 ? [] : [{ startBytes: 0, endBytes: sizeBytes }];
  // A fully allocated file has no holes to find; spare the child.
  if ((await stat(path)).blocks * 512 >= sizeBytes) return whole;
  const lines = await seekHelper.query(path, signal);
  if (lines === null) return whole;
  const extents: Extent[] = [];
  for (const line of lines) {
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
    let buf: Buffer | undefined;
    for (const index of chunksWithData(extents, chunkBytes)) {
      signal?.throwIfAborted();
      buf ??= Buffer.allocUnsafe(chunkBytes);
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
