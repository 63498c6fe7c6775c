/**
 * The receiving side of a transfer: tells the sender what the image holds (its STATE), writes
 * the chunks it gets in place into a raw image (zero chunks of a fresh image are never written,
 * so the image stays sparse), and confirms them in batches: fdatasync, then update the manifest,
 * then `onCheckpoint` (the caller persists it), then ACK. At the end it computes the whole-image
 * proof from its manifest and compares it with the sender's.
 *
 * To resume after a crash or a dropped link, build a Receiver with `state` = the last manifest
 * `onCheckpoint` delivered (or reuse this object) and run it on the new link.
 */
import { type Duplex } from 'node:stream';
import { abortReason, untilAborted } from './abortable.ts';
import { BufferPool } from './buffer-pool.ts';
import { decompressChunk } from './compression.ts';
import { keepFreedHeap } from './heap-tuning.ts';
import { DataPlaneError } from './dataplane-error.ts';
import { openFrames } from './frame-reader.ts';
import { chunkDigest, type Manifest, proofOf, targetManifest, usableState } from './manifest.ts';
import {
  connectionLost,
  dataHeaderBytes,
  decodeData,
  decodeError,
  decodeIndexes,
  decodeOffer,
  decodeProof,
  encodeError,
  encodeIndexes,
  encodeProof,
  type Frame,
  FrameWriter,
  type Offer,
  unexpectedFrame,
} from './protocol.ts';
import { RawImageWriter } from './raw-image-writer.ts';

/** Frames up to this size are control frames and get plain buffers, not pooled chunk buffers. */
const smallFrameBytes = 64 * 1024;

export interface Checkpoint {
  /** What the image durably holds now. Live object: encode or clone it before the callback returns. */
  readonly manifest: Manifest;
  /** Chunk indexes confirmed by this checkpoint. */
  readonly confirmed: readonly number[];
}

export interface ReceiverOptions {
  /** The raw image file; created when missing. */
  readonly imagePath: string;
  /**
   * What the image holds: the last checkpoint of an interrupted run, or the final manifest of the
   * previous good run for an incremental one. Omit for a new image (the file is emptied first);
   * a manifest of another hash algorithm counts as omitted (see `usableState`).
   */
  readonly state?: Manifest;
  /** Persist a checkpoint; confirmed chunks are acknowledged only after this resolves. */
  readonly onCheckpoint?: (checkpoint: Checkpoint) => Promise<void> | void;
  /** When set, an offer of another disk size is refused. */
  readonly expectedDiskSizeBytes?: number;
  /** Bytes written between fdatasyncs; default 64 MiB (capped at half the sender's window). */
  readonly fsyncBatchBytes?: number;
  /** Longest a written chunk waits for its fdatasync; default 1000 ms. */
  readonly fsyncIntervalMs?: number;
  /** Hash every chunk (xxh64) and refuse one that does not match the digest the sender declared; default true (SMC `checksum`). */
  readonly verifyChunks?: boolean;
  /** Chunk writes in flight at once; default 4. */
  readonly writesInFlight?: number;
  /**
   * Called once the proofs matched, before DONE is sent: whatever the caller records here (the
   * proof, final counters) is in place before the sender learns that the transfer finished.
   */
  readonly onProof?: (proof: string, manifest: Manifest) => Promise<void> | void;
}

export interface ReceiveStats {
  /** Hex SHA-256 whole-image proof, equal to the sender's. */
  readonly proof: string;
  readonly diskSizeBytes: number;
  readonly chunkCount: number;
  readonly dataChunksWritten: number;
  readonly zeroChunksWritten: number;
  /** Chunk bytes as they arrived (compressed where the sender compressed). */
  readonly payloadBytesReceived: number;
  /** Final manifest of the image; keep it as the base of the next incremental run. */
  readonly manifest: Manifest;
}

/** How the run's frames are read: the largest payload taken, and where chunk payloads go once the chunk size is known. */
interface FrameInput {
  maxPayloadBytes: number;
  pool: BufferPool | undefined;
}

interface Written {
  readonly index: number;
  readonly digest: Buffer | null;
}

export class Receiver {
  readonly #options: ReceiverOptions;
  #state: Manifest | undefined;
  #bytesRead: () => number = () => 0;

  constructor(options: ReceiverOptions) {
    this.#options = options;
    this.#state = usableState(options.state);
  }

  /** What the image durably holds, as of the last checkpoint. */
  get state(): Manifest | undefined {
    return this.#state;
  }

  /** Bytes the current (or last) run has read off its link so far, frame headers included. */
  get bytesRead(): number {
    return this.#bytesRead();
  }

  /**
   * Serve one connection. Resolves after the proofs matched and DONE was sent; rejects on any
   * failure (a ConnectionLost one is resumable). Chunks written before a failure are still
   * fsynced and checkpointed, so a resume does not ask for them again.
   */
  async run(link: Duplex, signal?: AbortSignal): Promise<ReceiveStats> {
    keepFreedHeap();
    link.on('error', () => undefined);
    // Chunk payloads land in reused buffers, given back once written; small frames need none.
    const input: FrameInput = { maxPayloadBytes: 64 * 1024, pool: undefined };
    const opened = openFrames(
      link,
      () => input.maxPayloadBytes,
      (lengthBytes) => (input.pool !== undefined && lengthBytes > smallFrameBytes ? input.pool.take(lengthBytes) : Buffer.allocUnsafe(lengthBytes)),
    );
    this.#bytesRead = () => opened.bytesRead();
    const writer = new FrameWriter(opened.link);
    // Aborted by the caller, or by a failed background write or flush.
    const stop = new AbortController();
    const runSignal = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]);
    try {
      return await this.#run(opened.frames, input, writer, runSignal, stop);
    } catch (err) {
      const failure: unknown = signal?.aborted === true ? abortReason(signal) : err;
      // Tell the sender why, unless the link is what failed.
      if (!(failure instanceof DataPlaneError && failure.code === 'ConnectionLost')) {
        await writer.write('error', encodeError(failure)).then(
          () => writer.end(),
          () => undefined,
        );
      }
      opened.link.destroy();
      throw failure;
    }
  }

  async #run(frames: AsyncGenerator<Frame>, input: FrameInput, writer: FrameWriter, signal: AbortSignal, stop: AbortController): Promise<ReceiveStats> {
    const options = this.#options;
    const offer = decodeOffer((await untilAborted(nextFrame(frames, 'offer'), signal)).payload);
    if (options.expectedDiskSizeBytes !== undefined && options.expectedDiskSizeBytes !== offer.diskSizeBytes) {
      throw new DataPlaneError('GeometryMismatch', `The sender offers a ${offer.diskSizeBytes}-byte disk where ${options.expectedDiskSizeBytes} bytes were expected.`);
    }
    const { image, state } = await this.#openImage(offer);
    // A raw chunk is written from the frame's own buffer, so the chunk (after the data header) sits where O_DIRECT takes it.
    const pool = new BufferPool(offer.chunkSizeBytes + dataHeaderBytes, (options.writesInFlight ?? 4) + 4, (bytes) => image.directMemory(bytes, dataHeaderBytes));
    input.pool = pool;
    try {
      await writer.write('state', state.encode(), undefined, signal);
      input.maxPayloadBytes = Math.max(64 * 1024, offer.chunkSizeBytes + dataHeaderBytes);
      return await this.#receive({ offer, image, state, frames, writer, pool, signal, stop });
    } finally {
      await image.close();
    }
  }

  /** Open the image at the offered size and settle what it holds before any chunk arrives. */
  async #openImage(offer: Offer): Promise<{ readonly image: RawImageWriter; readonly state: Manifest }> {
    const previous = this.#state;
    const image = await RawImageWriter.open(this.#options.imagePath, offer.diskSizeBytes, { fresh: previous === undefined, direct: true });
    // A file that had to be created is empty whatever `previous` says.
    const state = targetManifest(image.startedEmpty ? undefined : previous, offer.diskSizeBytes, offer.chunkSizeBytes);
    this.#state = state;
    return { image, state };
  }

  async #receive(run: {
    readonly offer: Offer;
    readonly image: RawImageWriter;
    readonly state: Manifest;
    readonly frames: AsyncGenerator<Frame>;
    readonly writer: FrameWriter;
    readonly pool: BufferPool;
    readonly signal: AbortSignal;
    readonly stop: AbortController;
  }): Promise<ReceiveStats> {
    const { offer, image, state, frames, writer, pool, signal, stop } = run;
    const options = this.#options;
    const verify = options.verifyChunks ?? true;
    const writesInFlight = Math.max(1, options.writesInFlight ?? 4);
    const batchBytes = Math.max(
      1,
      Math.min(options.fsyncBatchBytes ?? 64 * 1024 * 1024, Math.max(1, Math.floor(offer.windowChunks / 2)) * offer.chunkSizeBytes),
    );
    const intervalMs = options.fsyncIntervalMs ?? 1000;

    const writes = new Map<number, Promise<void>>();
    let written: Written[] = [];
    let writtenBytes = 0;
    let backgroundFailure: Error | undefined;
    let flushing: Promise<void> | undefined;
    let timer: NodeJS.Timeout | undefined;
    let linkOpen = true;
    let dataChunksWritten = 0;
    let zeroChunksWritten = 0;
    let payloadBytesReceived = 0;

    /** A background write or flush failed: pull the frame loop out of its read. */
    const fail = (err: unknown): void => {
      backgroundFailure ??= err instanceof Error ? err : new Error(String(err));
      stop.abort(err);
    };

    const flushOnce = async (): Promise<void> => {
      const batch = written;
      written = [];
      writtenBytes = 0;
      clearTimeout(timer);
      timer = undefined;
      if (batch.length === 0) return;
      await image.sync();
      for (const { index, digest } of batch) state.set(index, digest);
      const confirmed = batch.map((w) => w.index);
      await options.onCheckpoint?.({ manifest: state, confirmed });
      if (linkOpen) await writer.write('ack', encodeIndexes(confirmed));
    };

    const armTimer = (): void => {
      timer ??= setTimeout(() => {
        timer = undefined;
        maybeFlush(true);
      }, intervalMs);
    };

    /** Start a flush unless one runs; with `force`, flush whatever is written even below the batch size. */
    const maybeFlush = (force: boolean): void => {
      if (flushing !== undefined || written.length === 0 || (!force && writtenBytes < batchBytes)) return;
      flushing = flushOnce().then(
        () => {
          flushing = undefined;
          if (written.length > 0) armTimer();
          maybeFlush(false);
        },
        (err: unknown) => {
          flushing = undefined;
          fail(err);
        },
      );
    };

    const flushAll = async (): Promise<void> => {
      while (writes.size > 0) await Promise.allSettled(writes.values());
      while (flushing !== undefined) await flushing;
      if (backgroundFailure === undefined) await flushOnce();
    };

    /**
     * Verify chunk `index` (when `expected` is given), then write it (null: zeros). Resolves once
     * the chunk is under way: several chunks are written at once, and a chunk is written only
     * after it proved to match its digest, so a damaged one never reaches the image. A `pooled`
     * chunk (a view of a pool buffer no one else holds) is given back to the pool once written.
     */
    const startWrite = async (index: number, data: Buffer | null, expected: Buffer | null, pooled: boolean): Promise<void> => {
      const previous = writes.get(index);
      while (writes.size >= writesInFlight) await Promise.race(writes.values());
      const offsetBytes = index * offer.chunkSizeBytes;
      const lengthBytes = state.lengthOf(index);
      const run = async (): Promise<void> => {
        const bytes = data;
        // xxh64 on this thread: 0.4 ms per 4 MiB chunk, less than handing the chunk to a worker cost.
        if (bytes !== null && expected !== null && verify && !chunkDigest(bytes).equals(expected)) {
          throw new DataPlaneError('ChunkDigestMismatch', `Chunk ${index} does not match its digest; it was damaged in transit. Run the transfer again.`);
        }
        await previous;
        // Only a file emptied by this run is known to read zeros wherever no chunk was written yet.
        if (bytes === null) await image.writeZeros(offsetBytes, lengthBytes);
        else if (image.startedEmpty) await image.writeSparse(offsetBytes, bytes);
        else await image.write(offsetBytes, bytes);
        if (pooled && bytes !== null) pool.give(bytes);
        if (writes.get(index) === write) writes.delete(index);
        written.push({ index, digest: expected });
        writtenBytes += lengthBytes;
        armTimer();
        maybeFlush(false);
      };
      const write = run();
      writes.set(index, write);
      write.catch((err: unknown) => {
        if (writes.get(index) === write) writes.delete(index);
        fail(err);
      });
    };

    const checkIndex = (index: number): void => {
      if (index >= state.chunkCount) throw new DataPlaneError('ProtocolError', `The sender sent chunk ${index} of a ${state.chunkCount}-chunk disk.`);
    };

    try {
      let senderProof: string | undefined;
      for (;;) {
        const next = await untilAborted(frames.next(), signal);
        if (next.done === true) break;
        const frame = next.value;
        if (frame.type === 'data') {
          const { header, body } = decodeData(frame.payload);
          checkIndex(header.index);
          if (header.rawLengthBytes !== state.lengthOf(header.index)) {
            throw new DataPlaneError('ProtocolError', `Chunk ${header.index} arrived with ${header.rawLengthBytes} bytes, not ${state.lengthOf(header.index)}.`);
          }
          payloadBytesReceived += body.length;
          const data = await decompressChunk(header.codec, body, header.rawLengthBytes);
          const digest = Buffer.from(header.digest);
          // A raw chunk is a view of the frame's buffer (pooled when large), given back once written;
          // a decompressed one has its own memory, so the frame's buffer can go back at once.
          if (data !== body) pool.give(frame.payload);
          const pooled = data === body && frame.payload.length > smallFrameBytes;
          dataChunksWritten++;
          await startWrite(header.index, data, digest, pooled);
        } else if (frame.type === 'zero') {
          for (const index of decodeIndexes(frame.payload)) {
            checkIndex(index);
            zeroChunksWritten++;
            await startWrite(index, null, null, false);
          }
        } else if (frame.type === 'end') {
          senderProof = decodeProof(frame.payload);
          break;
        } else if (frame.type === 'error') {
          throw decodeError(frame.payload, 'sender');
        } else {
          throw unexpectedFrame(frame, 'data, zero or end');
        }
      }
      if (senderProof === undefined) throw connectionLost();
      await flushAll();
      if (backgroundFailure !== undefined) throw backgroundFailure;
      const proof = state.isComplete() ? proofOf(state) : 'incomplete';
      if (proof !== senderProof) {
        throw new DataPlaneError('ProofMismatch', `The image's proof ${proof} differs from the source's ${senderProof}; run a full transfer.`);
      }
      await options.onProof?.(proof, state);
      await writer.write('done', encodeProof(proof));
      await writer.end();
      return { proof, diskSizeBytes: offer.diskSizeBytes, chunkCount: state.chunkCount, dataChunksWritten, zeroChunksWritten, payloadBytesReceived, manifest: state };
    } catch (err) {
      linkOpen = false;
      // Chunks already written are good: make them durable and checkpoint them so a resume skips them.
      await flushAll().catch(() => undefined);
      throw backgroundFailure ?? err;
    } finally {
      clearTimeout(timer);
    }
  }
}

async function nextFrame(frames: AsyncGenerator<Frame>, expected: Frame['type']): Promise<Frame> {
  const next = await frames.next();
  if (next.done === true) throw connectionLost();
  if (next.value.type === 'error') throw decodeError(next.value.payload, 'sender');
  if (next.value.type !== expected) throw unexpectedFrame(next.value, expected);
  return next.value;
}
