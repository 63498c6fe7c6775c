/**
 * A raw disk image written in place, chunk by chunk, at any offset and in any order. The file
 * is sized with ftruncate, so bytes never written stay holes: a receiver that skips zero chunks
 * produces a sparse image. Durability is explicit: `sync()` (fdatasync) before a chunk is
 * reported as confirmed.
 *
 * With `direct`, writes from memory made by `directMemory` go through a second, O_DIRECT handle:
 * the device reads them from that memory, so no copy into the page cache is made and nothing is
 * left for writeback. On this VM copying into the page cache was the receiver's largest cost:
 * 2 GiB written in 128 KiB pieces took 0.7-1.7 s of system time (in 1 MiB pieces 2.8-3.6 s),
 * against 0.16-0.4 s with O_DIRECT in 4 MiB writes, which also need one thread-pool round trip per
 * chunk instead of 32. Whatever cannot go direct (a filesystem that refuses O_DIRECT, a piece not
 * on 4 KiB boundaries, other memory) takes the page cache as before; fdatasync covers both.
 *
 * The disk pays for it: a request holds at most 254 segments here, so a 4 MiB write from 4 KiB
 * user pages travels as several requests, and the virtio disk was busy about twice as long for
 * the same bytes as for the page cache's writeback (2.1 s against 1.0 s per 1.5 GiB, at times).
 * Page-cache writes made on the event loop (no thread pool) were measured against it in
 * bench/replication, alternating: full runs 1.41-5.71 s (the first run of a server 2.3-5.7 s, its
 * process spending 2.6-3.3 s of system time filling memory the page cache had not used yet) against
 * 1.52-1.79 s with O_DIRECT.
 */
import { closeSync, constants, openSync, unlinkSync, writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type PoolMemory } from './buffer-pool.ts';
import { isAllZero, zeroBuffer } from './zeros.ts';

const sparsePieceBytes = 64 * 1024;
/**
 * Largest single write. GNU cp writes 128 KiB at a time (BASELINES 2); here writes of 256 KiB and
 * more into a fresh file now and then cost 5-10x the system time of 128 KiB ones (256 MiB written
 * in 4 MiB pieces: 64-733 ms of sys, in 128 KiB pieces: 54-71 ms), so chunks go out in 128 KiB pieces.
 */
const writePieceBytes = 128 * 1024;

/** Offsets, lengths and memory of O_DIRECT writes fall on multiples of this (512- and 4096-byte sectors alike). */
const directBlockBytes = 4096;

/** Memory from `directMemory`: the offset in it of a block boundary that O_DIRECT accepted. */
const directBases = new WeakMap<ArrayBuffer, number>();

export class RawImageWriter {
  readonly path: string;
  readonly sizeBytes: number;
  /** True when this open created the file or discarded its old content (`fresh`): it is all zero. */
  readonly startedEmpty: boolean;
  readonly #fh: FileHandle;
  #direct: FileHandle | undefined;
  /** A nameless O_DIRECT file beside the image, where `directMemory` tries its candidate offsets. */
  #probeFd: number | undefined;

  private constructor(path: string, sizeBytes: number, startedEmpty: boolean, fh: FileHandle, direct: FileHandle | undefined) {
    this.path = path;
    this.sizeBytes = sizeBytes;
    this.startedEmpty = startedEmpty;
    this.#fh = fh;
    this.#direct = direct;
  }

  /**
   * Open (creating if missing) the image at `path` and make it exactly `sizeBytes` long.
   * `fresh` discards any old content first, leaving an all-zero, fully sparse file. `direct`
   * asks for O_DIRECT writes where the filesystem allows them (see the module comment).
   */
  static async open(path: string, sizeBytes: number, options: { readonly fresh?: boolean; readonly direct?: boolean } = {}): Promise<RawImageWriter> {
    let fh: FileHandle;
    let created = false;
    try {
      fh = await open(path, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fh = await open(path, 'wx+');
      created = true;
    }
    try {
      if (options.fresh === true && !created) await fh.truncate(0);
      await fh.truncate(sizeBytes);
      if (created) await syncDirectory(dirname(path));
    } catch (err) {
      await fh.close();
      throw err;
    }
    // Linux only (O_DIRECT is undefined elsewhere); tmpfs and some others refuse it with EINVAL.
    const direct = options.direct === true && constants.O_DIRECT !== undefined ? await open(path, constants.O_RDWR | constants.O_DIRECT).catch(() => undefined) : undefined;
    return new RawImageWriter(path, sizeBytes, created || options.fresh === true, fh, direct);
  }

  /** True while writes from `directMemory` memory bypass the page cache. */
  get direct(): boolean {
    return this.#direct !== undefined;
  }

  /**
   * Memory for a BufferPool whose buffers of `bufferBytes` hold `headBytes` of header and then data
   * this image can write directly: the data begins on a block boundary that O_DIRECT accepted. JavaScript cannot
   * see an address, so the boundary is found by trying: 4 KiB O_DIRECT writes from each 16-byte
   * step (malloc's alignment) of a block into a nameless file beside the image; a misplaced one
   * is refused before any I/O. Without direct writes, plain memory.
   */
  directMemory(bufferBytes: number, headBytes: number): PoolMemory {
    const memory = new ArrayBuffer(bufferBytes + 2 * directBlockBytes);
    const plain = { memory, offsetBytes: 0 };
    if (this.#direct === undefined || headBytes > directBlockBytes) return plain;
    this.#probeFd ??= openProbe(this.path);
    if (this.#probeFd === undefined) return plain;
    for (let at = directBlockBytes; at < 2 * directBlockBytes; at += 16) {
      try {
        writeSync(this.#probeFd, new Uint8Array(memory, at, directBlockBytes), 0, directBlockBytes, 0);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EINVAL') continue;
        return plain;
      }
      directBases.set(memory, at);
      return { memory, offsetBytes: at - headBytes };
    }
    return plain;
  }

  /** Write `data` at `offsetBytes`. */
  async write(offsetBytes: number, data: Uint8Array): Promise<void> {
    let done = this.#fitsDirect(offsetBytes, data) ? await this.#writeDirect(offsetBytes, data) : 0;
    while (done < data.length) {
      const { bytesWritten } = await this.#fh.write(data, done, Math.min(writePieceBytes, data.length - done), offsetBytes + done);
      done += bytesWritten;
    }
  }

  /**
   * Write `data` at `offsetBytes` into a range that already reads as zeros, skipping its all-zero
   * 64 KiB pieces so they stay holes (what `cp --sparse=always` does). Wrong where the range may
   * hold old data: there the skipped zeros would leave it behind.
   */
  async writeSparse(offsetBytes: number, data: Uint8Array): Promise<void> {
    let runStart = -1;
    for (let at = 0; at < data.length; at += sparsePieceBytes) {
      const zero = isAllZero(data.subarray(at, at + sparsePieceBytes));
      if (!zero && runStart < 0) runStart = at;
      if (zero && runStart >= 0) {
        await this.write(offsetBytes + runStart, data.subarray(runStart, at));
        runStart = -1;
      }
    }
    if (runStart >= 0) await this.write(offsetBytes + runStart, data.subarray(runStart));
  }

  /**
   * Make [offsetBytes, offsetBytes + lengthBytes) read as zeros. Node cannot punch holes, so the
   * zeros are written; only chunks that held data before (incremental runs) come here.
   */
  async writeZeros(offsetBytes: number, lengthBytes: number): Promise<void> {
    for (let at = 0; at < lengthBytes; at += writePieceBytes) {
      await this.write(offsetBytes + at, zeroBuffer(Math.min(writePieceBytes, lengthBytes - at)));
    }
  }

  /** fdatasync: every write that completed before this call is durable when it resolves. */
  async sync(): Promise<void> {
    await this.#fh.datasync();
  }

  async close(): Promise<void> {
    if (this.#probeFd !== undefined) closeSync(this.#probeFd);
    this.#probeFd = undefined;
    await this.#direct?.close();
    this.#direct = undefined;
    await this.#fh.close();
  }

  #fitsDirect(offsetBytes: number, data: Uint8Array): boolean {
    const base = directBases.get(data.buffer as ArrayBuffer);
    return (
      this.#direct !== undefined &&
      base !== undefined &&
      data.byteOffset >= base &&
      (data.byteOffset - base) % directBlockBytes === 0 &&
      offsetBytes % directBlockBytes === 0 &&
      data.length % directBlockBytes === 0
    );
  }

  /** Write what it can of `data` through the O_DIRECT handle; the bytes written (the rest goes through the page cache). */
  async #writeDirect(offsetBytes: number, data: Uint8Array): Promise<number> {
    const direct = this.#direct;
    let done = 0;
    while (direct !== undefined && done < data.length) {
      let bytesWritten: number;
      try {
        ({ bytesWritten } = await direct.write(data, done, data.length - done, offsetBytes + done));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        // The filesystem takes O_DIRECT at open but not these writes: the page cache from now on.
        if (this.#direct === direct) this.#direct = undefined;
        await direct.close().catch(() => undefined);
        return done;
      }
      done += bytesWritten;
      if (bytesWritten % directBlockBytes !== 0) break;
    }
    return done;
  }
}

/** An O_DIRECT file beside `imagePath` that has no name (unlinked at once), or undefined when none can be made. */
function openProbe(imagePath: string): number | undefined {
  const path = `${imagePath}.direct-probe`;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | constants.O_DIRECT, 0o600);
  } catch {
    return undefined;
  }
  try {
    unlinkSync(path);
    return fd;
  } catch {
    closeSync(fd);
    return undefined;
  }
}

/** fsync a directory so a file just created in it survives a crash. */
async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
