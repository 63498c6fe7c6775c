/**
 * The sending side of a transfer: reads the source disk, hashes every chunk, and sends each chunk
 * the receiver does not already hold. The receiver's STATE frame is the only input that decides
 * what to send, so one rule covers a full run (fresh image: all zero), an incremental run (the
 * image of the last good run) and a resume (the receiver's last checkpoint): confirmed chunks are
 * never sent again. At most `windowChunks` chunks are unacknowledged at any time.
 *
 * A Sender keeps the hashes it computed, so a resume through the same object skips reading
 * chunks the receiver confirmed; a new Sender (agent restarted) re-reads and re-hashes them but
 * sends only those that changed. The source must not change during a run (read a snapshot), and
 * each run (full or incremental) gets a new Sender: its cached hashes belong to one snapshot.
 */
import { type Duplex } from 'node:stream';
import { abortReason, untilAborted } from './abortable.ts';
import { type Block, chunkCountOf, defaultChunkSizeBytes, readBlocks, sourceSizeBytes } from './block-reader.ts';
import { BufferPool } from './buffer-pool.ts';
import { compressChunk, codecForLevel } from './compression.ts';
import { DataPlaneError } from './dataplane-error.ts';
import { readFrames } from './frame-reader.ts';
import { chunkDigest, hashAlgorithm, Manifest, proofOf } from './manifest.ts';
import {
  connectionLost,
  decodeError,
  decodeIndexes,
  decodeProof,
  encodeDataHeader,
  encodeIndexes,
  encodeOffer,
  encodeProof,
  type Frame,
  FrameWriter,
  protocolVersion,
  unexpectedFrame,
} from './protocol.ts';
import { type TokenBucket } from './rate-limit.ts';

/** Chunks prepared (hashed, compressed) ahead of the one being sent. */
const preparedAhead = 2;

export interface SenderOptions {
  /** A disk image file or a block device. */
  readonly sourcePath: string;
  /** Default 4 MiB. */
  readonly chunkSizeBytes?: number;
  /** Unacknowledged chunks in flight; default 16. */
  readonly windowChunks?: number;
  /** SMC compress_level 0-10; default 0 (raw). */
  readonly compressLevel?: number;
  /** SMC bandwidth_limit as a bucket (see `bucketForMbps`); none means unlimited. */
  readonly bucket?: TokenBucket | undefined;
}

export interface SendStats {
  /** Hex SHA-256 whole-image proof, equal on both sides. */
  readonly proof: string;
  readonly diskSizeBytes: number;
  readonly chunkCount: number;
  /** Chunk indexes sent in this run, in order (data and zero frames). */
  readonly sentIndexes: readonly number[];
  readonly dataChunksSent: number;
  readonly zeroChunksSent: number;
  /** Chunks the receiver already held. */
  readonly chunksUnchanged: number;
  /** Chunk bytes sent before compression. */
  readonly rawBytesSent: number;
  /** Every byte written to the link, frame headers included. */
  readonly wireBytesSent: number;
}

interface Outgoing {
  readonly index: number;
  readonly rawLengthBytes: number;
  readonly send: (writer: FrameWriter, signal: AbortSignal) => Promise<void>;
}

export class Sender {
  readonly #sourcePath: string;
  readonly #chunkSizeBytes: number;
  readonly #windowChunks: number;
  readonly #compressLevel: number;
  readonly #bucket: TokenBucket | undefined;
  #local: Manifest | undefined;

  constructor(options: SenderOptions) {
    this.#sourcePath = options.sourcePath;
    this.#chunkSizeBytes = options.chunkSizeBytes ?? defaultChunkSizeBytes;
    this.#windowChunks = options.windowChunks ?? 16;
    this.#compressLevel = options.compressLevel ?? 0;
    this.#bucket = options.bucket;
    codecForLevel(this.#compressLevel);
    if (!Number.isInteger(this.#windowChunks) || this.#windowChunks < 1) throw new RangeError(`windowChunks must be a positive integer, got ${this.#windowChunks}`);
  }

  /** Hashes of the source as far as this Sender has read it; complete after a successful run. */
  get manifest(): Manifest | undefined {
    return this.#local;
  }

  /**
   * Run one connection's worth of transfer over `link`. Resolves when the receiver has confirmed
   * every chunk and the proofs match; then the link is ended. On failure the link is destroyed;
   * a ConnectionLost error means: connect again and call `run` again (this object or a new one).
   */
  async run(link: Duplex, signal?: AbortSignal): Promise<SendStats> {
    const failed = new AbortController();
    const runSignal = signal === undefined ? failed.signal : AbortSignal.any([signal, failed.signal]);
    // Errors surface through the frame reader and writer; this keeps a late one from crashing the process.
    link.on('error', () => undefined);
    try {
      return await this.#run(link, runSignal, failed);
    } catch (err) {
      link.destroy();
      throw signal?.aborted === true ? abortReason(signal) : err;
    }
  }

  async #run(link: Duplex, signal: AbortSignal, failed: AbortController): Promise<SendStats> {
    const diskSizeBytes = await sourceSizeBytes(this.#sourcePath);
    const chunkSizeBytes = this.#chunkSizeBytes;
    const chunkCount = chunkCountOf(diskSizeBytes, chunkSizeBytes);
    if (this.#local?.diskSizeBytes !== diskSizeBytes) this.#local = Manifest.unknown(diskSizeBytes, chunkSizeBytes);
    const local = this.#local;

    const writer = new FrameWriter(link, this.#bucket);
    // The largest frame a receiver sends is its state: a header, a kind byte and a digest per chunk.
    const frames = readFrames(link, () => 64 * 1024 + chunkCount * 33);
    await writer.write(
      'offer',
      encodeOffer({ protocolVersion, diskSizeBytes, chunkSizeBytes, hashAlgorithm, windowChunks: this.#windowChunks }),
      undefined,
      signal,
    );
    const remote = await untilAborted(readState(frames, diskSizeBytes, chunkSizeBytes), signal);

    const inFlight = new Set<number>();
    let windowOpened: (() => void) | undefined;
    const acks = (async (): Promise<string> => {
      for await (const frame of frames) {
        if (frame.type === 'ack') {
          for (const index of decodeIndexes(frame.payload)) inFlight.delete(index);
          windowOpened?.();
        } else if (frame.type === 'done') {
          return decodeProof(frame.payload);
        } else if (frame.type === 'error') {
          throw decodeError(frame.payload, 'receiver');
        } else {
          throw unexpectedFrame(frame, 'ack or done');
        }
      }
      throw connectionLost();
    })();
    let ackFailure: unknown;
    acks.catch((err: unknown) => {
      ackFailure = err;
      failed.abort(err);
    });

    const waitForWindow = async (): Promise<void> => {
      while (inFlight.size >= this.#windowChunks) {
        await untilAborted(new Promise<void>((resolve) => (windowOpened = resolve)), signal);
      }
    };

    const sentIndexes: number[] = [];
    let dataChunksSent = 0;
    let rawBytesSent = 0;
    try {
      const readAheadChunks = 2;
      const pool = new BufferPool(chunkSizeBytes, readAheadChunks + preparedAhead + 2);
      const blocks = readBlocks(this.#sourcePath, {
        chunkSizeBytes,
        signal,
        // A chunk hashed earlier by this Sender and confirmed by the receiver need not be read again.
        want: (index) => !remote.sameAt(index, local),
        readAheadChunks,
        pool,
      });
      // One frame goes out while the next is read and hashed.
      let sending: Promise<void> = Promise.resolve();
      for await (const outgoing of this.#prepare(blocks, local, remote, pool)) {
        await waitForWindow();
        await sending;
        inFlight.add(outgoing.index);
        sentIndexes.push(outgoing.index);
        if (outgoing.rawLengthBytes > 0) dataChunksSent++;
        rawBytesSent += outgoing.rawLengthBytes;
        sending = outgoing.send(writer, signal);
        sending.catch(() => undefined);
      }
      await sending;
      const proof = proofOf(local);
      await writer.write('end', encodeProof(proof), undefined, signal);
      const receiverProof = await untilAborted(acks, signal);
      if (receiverProof !== proof) {
        throw new DataPlaneError('ProofMismatch', `The receiver's image proof ${receiverProof} differs from the source's ${proof}; run a full transfer.`);
      }
      await writer.end();
      return {
        proof,
        diskSizeBytes,
        chunkCount,
        sentIndexes,
        dataChunksSent,
        zeroChunksSent: sentIndexes.length - dataChunksSent,
        chunksUnchanged: chunkCount - sentIndexes.length,
        rawBytesSent,
        wireBytesSent: writer.bytesWritten,
      };
    } catch (err) {
      // The receiver's own report explains a failure better than the abort it caused here.
      throw ackFailure ?? err;
    }
  }

  /**
   * Hash each block, record it in `local`, drop what `remote` already holds, and compress the
   * rest; up to `preparedAhead` blocks are compressed at once (off the main thread), overlapping
   * the reading of the next block and the sending of the last.
   */
  async *#prepare(blocks: AsyncIterable<Block>, local: Manifest, remote: Manifest, pool: BufferPool): AsyncGenerator<Outgoing> {
    const ahead: Promise<Outgoing | null>[] = [];
    for await (const block of blocks) {
      const next = this.#outgoing(block, local, remote, pool);
      next.catch(() => undefined);
      ahead.push(next);
      const ready = ahead.length >= preparedAhead ? await ahead.shift() : null;
      if (ready !== null && ready !== undefined) yield ready;
    }
    for (const next of ahead) {
      const ready = await next;
      if (ready !== null) yield ready;
    }
  }

  /** The frame that brings the receiver chunk `block.index`, or null when it holds it already. */
  async #outgoing({ index, data }: Block, local: Manifest, remote: Manifest, pool: BufferPool): Promise<Outgoing | null> {
    if (data === null) {
      local.set(index, null);
      return remote.holds(index, null) ? null : zeroFrame(index);
    }
    const digest = chunkDigest(data);
    local.set(index, digest);
    if (remote.holds(index, digest)) {
      pool.give(data);
      return null;
    }
    return dataFrame(index, data, digest, this.#compressLevel, pool);
  }
}

function zeroFrame(index: number): Outgoing {
  return { index, rawLengthBytes: 0, send: (writer, signal) => writer.write('zero', encodeIndexes([index]), undefined, signal) };
}

/** A data frame; `data` goes back to the pool once nothing refers to it (after compression, or after the write). */
async function dataFrame(index: number, data: Buffer, digest: Buffer, level: number, pool: BufferPool): Promise<Outgoing> {
  const { codec, payload } = await compressChunk(data, level);
  if (payload !== data) pool.give(data);
  const head = encodeDataHeader({ index, codec, rawLengthBytes: data.length, digest });
  return {
    index,
    rawLengthBytes: data.length,
    send: async (writer, signal) => {
      await writer.write('data', head, payload, signal);
      if (payload === data) pool.give(data);
    },
  };
}

async function readState(frames: AsyncGenerator<Frame>, diskSizeBytes: number, chunkSizeBytes: number): Promise<Manifest> {
  const first = await frames.next();
  if (first.done === true) throw connectionLost();
  const frame = first.value;
  if (frame.type === 'error') throw decodeError(frame.payload, 'receiver');
  if (frame.type !== 'state') throw unexpectedFrame(frame, 'state');
  const remote = Manifest.decode(frame.payload);
  if (remote.diskSizeBytes !== diskSizeBytes || remote.chunkSizeBytes !== chunkSizeBytes) {
    throw new DataPlaneError(
      'GeometryMismatch',
      `The receiver describes a ${remote.diskSizeBytes}-byte disk in ${remote.chunkSizeBytes}-byte chunks, the source is ${diskSizeBytes} bytes in ${chunkSizeBytes}-byte chunks.`,
    );
  }
  return remote;
}
