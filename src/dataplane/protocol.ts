/**
 * The data plane's wire format: length-prefixed binary frames over any byte stream pair (a TCP
 * socket, or an HTTP request body one way and its response body the other, joined with
 * `Duplex.from({ readable, writable })`).
 *
 * Frame: `u8 type | u32 payloadLength (big-endian) | payload`.
 *
 * | type      | from     | payload |
 * |-----------|----------|---------|
 * | offer (1) | sender   | JSON `Offer`: protocol version, disk and chunk size, chunk hash (`xxh64`), window |
 * | state (2) | receiver | `Manifest.encode()` of what the target holds now (unknown where unsure) |
 * | data (3)  | sender   | `u32 index, u8 codec, u32 rawLength, 8-byte xxh64 of the raw chunk (big-endian)`, then the (compressed) chunk |
 * | zero (4)  | sender   | `u32 index` repeated: those chunks are all zero (the receiver writes zeros) |
 * | ack (5)   | receiver | `u32 index` repeated: chunks written, fsynced and checkpointed |
 * | end (6)   | sender   | 32-byte proof (SHA-256 over the chunk digests): every chunk has been sent |
 * | done (7)  | receiver | 32-byte proof the receiver computed; sent only when it equals the sender's |
 * | error (8) | either   | JSON `{code, message}`; the connection closes after it |
 *
 * Order: offer, state, then data/zero frames from the sender and ack frames from the receiver
 * interleaved, then end and done. Protocol 2 replaced protocol 1's SHA-256 chunk digests with xxh64;
 * the two do not talk to each other (the receiver refuses the offer). Frames are read by
 * frame-reader.ts and written by FrameWriter below.
 */
import { type Writable } from 'node:stream';
import { untilAborted } from './abortable.ts';
import { codecById, codecIds, type Codec } from './compression.ts';
import { DataPlaneError, dataPlaneErrorCodes, type DataPlaneErrorCode } from './dataplane-error.ts';
import { digestBytesOf, hashAlgorithm, proofBytes } from './manifest.ts';
import { type TokenBucket } from './rate-limit.ts';

export const protocolVersion = 2;

export const frameTypeIds = { offer: 1, state: 2, data: 3, zero: 4, ack: 5, end: 6, done: 7, error: 8 } as const;
export type FrameType = keyof typeof frameTypeIds;

export const frameHeaderBytes = 5;
const digestBytes = digestBytesOf[hashAlgorithm];
export const dataHeaderBytes = 4 + 1 + 4 + digestBytes;

export interface Frame {
  readonly type: FrameType;
  readonly payload: Buffer;
}

export interface Offer {
  readonly protocolVersion: number;
  readonly diskSizeBytes: number;
  readonly chunkSizeBytes: number;
  readonly hashAlgorithm: string;
  /** Unacknowledged chunks the sender keeps in flight; the receiver fsyncs at least every half window. */
  readonly windowChunks: number;
}

export interface DataHeader {
  readonly index: number;
  readonly codec: Codec;
  readonly rawLengthBytes: number;
  readonly digest: Buffer;
}

/** The link closed early; a new run resumes from the receiver's checkpoint. */
export function connectionLost(cause?: unknown): DataPlaneError {
  return new DataPlaneError('ConnectionLost', 'The connection closed before the transfer finished; run the transfer again to resume.', { cause });
}

function protocolError(message: string): DataPlaneError {
  return new DataPlaneError('ProtocolError', `${message}; both ends must run the same Ferry data-plane protocol.`);
}

function parseJson(payload: Buffer, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(payload.toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // falls through to the protocol error below
  }
  throw protocolError(`The ${what} frame is not a JSON object`);
}

export function encodeOffer(offer: Offer): Buffer {
  return Buffer.from(JSON.stringify(offer), 'utf8');
}

export function decodeOffer(payload: Buffer): Offer {
  const raw = parseJson(payload, 'offer');
  const int = (name: string, min: number): number => {
    const value = raw[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw protocolError(`The offer's ${name} is ${String(value)}`);
    return value;
  };
  const offer: Offer = {
    protocolVersion: int('protocolVersion', 1),
    diskSizeBytes: int('diskSizeBytes', 0),
    chunkSizeBytes: int('chunkSizeBytes', 1),
    hashAlgorithm: String(raw['hashAlgorithm']),
    windowChunks: int('windowChunks', 1),
  };
  if (offer.protocolVersion !== protocolVersion) throw protocolError(`The sender speaks protocol ${offer.protocolVersion}, this receiver ${protocolVersion}`);
  if (offer.hashAlgorithm !== hashAlgorithm) {
    throw new DataPlaneError('GeometryMismatch', `The sender hashes with ${offer.hashAlgorithm}, this receiver with ${hashAlgorithm}; upgrade the older side.`);
  }
  return offer;
}

export function encodeDataHeader(header: DataHeader): Buffer {
  if (header.digest.length !== digestBytes) throw new RangeError(`a chunk digest has ${digestBytes} bytes, got ${header.digest.length}`);
  const out = Buffer.allocUnsafe(dataHeaderBytes);
  out.writeUInt32BE(header.index, 0);
  out.writeUInt8(codecIds[header.codec], 4);
  out.writeUInt32BE(header.rawLengthBytes, 5);
  header.digest.copy(out, 9);
  return out;
}

export function decodeData(payload: Buffer): { readonly header: DataHeader; readonly body: Buffer } {
  if (payload.length < dataHeaderBytes) throw protocolError('A data frame is shorter than its header');
  const codec = codecById(payload.readUInt8(4));
  if (codec === undefined) throw protocolError(`A data frame uses codec ${payload.readUInt8(4)}, unknown here`);
  return {
    header: {
      index: payload.readUInt32BE(0),
      codec,
      rawLengthBytes: payload.readUInt32BE(5),
      digest: payload.subarray(9, dataHeaderBytes),
    },
    body: payload.subarray(dataHeaderBytes),
  };
}

export function encodeIndexes(indexes: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(indexes.length * 4);
  indexes.forEach((index, i) => out.writeUInt32BE(index, i * 4));
  return out;
}

export function decodeIndexes(payload: Buffer): number[] {
  if (payload.length % 4 !== 0) throw protocolError('An index list is not a multiple of 4 bytes');
  const out: number[] = [];
  for (let at = 0; at < payload.length; at += 4) out.push(payload.readUInt32BE(at));
  return out;
}

export function encodeProof(proofHex: string): Buffer {
  return Buffer.from(proofHex, 'hex');
}

export function decodeProof(payload: Buffer): string {
  if (payload.length !== proofBytes) throw protocolError(`A proof has ${payload.length} bytes, not ${proofBytes}`);
  return payload.toString('hex');
}

export function encodeError(err: unknown): Buffer {
  const code: DataPlaneErrorCode = err instanceof DataPlaneError ? err.code : 'ProtocolError';
  const message = err instanceof Error ? err.message : String(err);
  return Buffer.from(JSON.stringify({ code, message }), 'utf8');
}

/** The error a peer reported, as a DataPlaneError of the peer's code. */
export function decodeError(payload: Buffer, peer: 'sender' | 'receiver'): DataPlaneError {
  const raw = parseJson(payload, 'error');
  const code = typeof raw['code'] === 'string' && raw['code'] in dataPlaneErrorCodes ? (raw['code'] as DataPlaneErrorCode) : 'ProtocolError';
  return new DataPlaneError(code, `The ${peer} reported: ${String(raw['message'])}`);
}

/** An unexpected frame type at this point of the exchange. */
export function unexpectedFrame(frame: Frame, expected: string): DataPlaneError {
  return protocolError(`Got a ${frame.type} frame where ${expected} was expected`);
}

/**
 * Writes whole frames to `writable`, one at a time even when several callers write at once.
 * Each write resolves when the stream has handed the frame on, which is the backpressure; with a
 * token bucket, frames go out in slices of at most the bucket's burst, each paid for first.
 */
export class FrameWriter {
  readonly #writable: Writable;
  readonly #bucket: TokenBucket | undefined;
  readonly #sliceBytes: number;
  #tail: Promise<void> = Promise.resolve();
  /** Bytes handed to the stream, frame headers included. */
  bytesWritten = 0;

  constructor(writable: Writable, bucket?: TokenBucket) {
    this.#writable = writable;
    this.#bucket = bucket;
    this.#sliceBytes = Math.min(bucket?.burstBytes ?? Infinity, 256 * 1024);
  }

  /** Write one frame whose payload is `head` followed by `body`; `body` may be reused once this resolves. */
  write(type: FrameType, head: Buffer, body?: Buffer, signal?: AbortSignal): Promise<void> {
    const turn = this.#tail.then(() => this.#write(type, head, body, signal));
    this.#tail = turn.catch(() => undefined);
    return turn;
  }

  async #write(type: FrameType, head: Buffer, body: Buffer | undefined, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    const bodyBytes = body?.length ?? 0;
    const first = Buffer.allocUnsafe(frameHeaderBytes + head.length);
    first.writeUInt8(frameTypeIds[type], 0);
    first.writeUInt32BE(head.length + bodyBytes, 1);
    head.copy(first, frameHeaderBytes);
    const parts = body === undefined || bodyBytes === 0 ? [first] : [first, body];
    if (this.#bucket === undefined) {
      await this.#send(parts, signal);
      return;
    }
    for (const part of parts) {
      for (let at = 0; at < part.length; at += this.#sliceBytes) {
        const slice = part.subarray(at, at + this.#sliceBytes);
        await this.#bucket.take(slice.length, signal);
        await this.#send([slice], signal);
      }
    }
  }

  /**
   * Write `parts` as one batch and resolve once the stream has handed them on (the last write's
   * callback): from then on nothing here refers to them, so a caller may reuse their memory.
   */
  #send(parts: readonly Buffer[], signal: AbortSignal | undefined): Promise<void> {
    const writable = this.#writable;
    if (writable.destroyed || writable.writableEnded) return Promise.reject(connectionLost());
    const handedOn = new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => (err === undefined || err === null ? resolve() : reject(connectionLost(err)));
      writable.cork();
      parts.forEach((part, i) => {
        this.bytesWritten += part.length;
        writable.write(part, i === parts.length - 1 ? done : undefined);
      });
      writable.uncork();
    });
    return untilAborted(handedOn, signal);
  }

  /** End the stream once every frame queued so far is written. */
  async end(): Promise<void> {
    await this.#tail;
    if (!this.#writable.destroyed && !this.#writable.writableEnded) this.#writable.end();
  }
}
