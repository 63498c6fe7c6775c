/**
 * A raw disk image written in place, chunk by chunk, at any offset and in any order. The file
 * is sized with ftruncate, so bytes never written stay holes: a receiver that skips zero chunks
 * produces a sparse image. Durability is explicit: `sync()` (fdatasync) before a chunk is
 * reported as confirmed.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isAllZero, zeroBuffer } from './zeros.ts';

const sparsePieceBytes = 64 * 1024;
/**
 * Largest single write. GNU cp writes 128 KiB at a time (BASELINES 2); here writes of 256 KiB and
 * more into a fresh file now and then cost 5-10x the system time of 128 KiB ones (256 MiB written
 * in 4 MiB pieces: 64-733 ms of sys, in 128 KiB pieces: 54-71 ms), so chunks go out in 128 KiB pieces.
 */
const writePieceBytes = 128 * 1024;

export class RawImageWriter {
  readonly path: string;
  readonly sizeBytes: number;
  /** True when this open created the file or discarded its old content (`fresh`): it is all zero. */
  readonly startedEmpty: boolean;
  readonly #fh: FileHandle;

  private constructor(path: string, sizeBytes: number, startedEmpty: boolean, fh: FileHandle) {
    this.path = path;
    this.sizeBytes = sizeBytes;
    this.startedEmpty = startedEmpty;
    this.#fh = fh;
  }

  /**
   * Open (creating if missing) the image at `path` and make it exactly `sizeBytes` long.
   * `fresh` discards any old content first, leaving an all-zero, fully sparse file.
   */
  static async open(path: string, sizeBytes: number, options: { readonly fresh?: boolean } = {}): Promise<RawImageWriter> {
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
    return new RawImageWriter(path, sizeBytes, created || options.fresh === true, fh);
  }

  /** Write `data` at `offsetBytes`. */
  async write(offsetBytes: number, data: Uint8Array): Promise<void> {
    let done = 0;
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
    await this.#fh.close();
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
