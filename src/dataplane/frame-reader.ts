/**
 * Reading frames (protocol.ts) off a byte stream. Two ways in, one parser:
 *
 * - `readFrames` takes any Readable's 'data' events and copies each piece into the frame it belongs to.
 * - `openFrames` does the same, except for a plain TCP socket: that one is re-opened on its own
 *   handle with Node's `onread`, so the kernel copies each read straight into the frame's payload
 *   buffer (for a data frame, a pool buffer the image can write from with O_DIRECT). Node's own
 *   reads are 64 KiB each into fresh malloc'd memory, one 'data' event and one copy apiece: 2 GiB
 *   through a bare socket that way cost the receiving process 1.6-1.7 s of CPU and 33k reads here,
 *   against 0.7 s and 1.3-1.6k reads straight into 4 MiB buffers.
 *
 * Either way a consumer pulls frames from an async generator; whole frames are parsed at most
 * `framesAhead` ahead of it before reading pauses.
 */
import { Socket } from 'node:net';
import { type Duplex, type Readable } from 'node:stream';
import { DataPlaneError } from './dataplane-error.ts';
import { connectionLost, type Frame, frameHeaderBytes, type FrameType, frameTypeIds } from './protocol.ts';

const frameTypesById = new Map<number, FrameType>(Object.entries(frameTypeIds).map(([name, id]) => [id, name as FrameType]));

/** Whole frames parsed ahead of the consumer before the stream is paused. */
const framesAhead = 2;

function protocolError(message: string): DataPlaneError {
  return new DataPlaneError('ProtocolError', `${message}; both ends must run the same Ferry data-plane protocol.`);
}

/** Cuts a byte stream into frames: bytes go where `target()` says, `filled(n)` completes frames. */
class FrameParser {
  readonly #header = Buffer.alloc(frameHeaderBytes);
  #headerFill = 0;
  #type: FrameType = 'error';
  #payload: Buffer | null = null;
  #payloadFill = 0;
  readonly #maxPayloadBytes: () => number;
  readonly #allocate: (lengthBytes: number) => Buffer;
  /** Stream bytes consumed, frame headers included. */
  bytesRead = 0;

  constructor(maxPayloadBytes: () => number, allocate: (lengthBytes: number) => Buffer) {
    this.#maxPayloadBytes = maxPayloadBytes;
    this.#allocate = allocate;
  }

  /** True while a frame has begun but not ended. */
  get partial(): boolean {
    return this.#headerFill > 0 || this.#payload !== null;
  }

  /** Where the next bytes of the stream go: the rest of the current header or payload; never empty. */
  target(): Buffer {
    return this.#payload === null ? this.#header.subarray(this.#headerFill) : this.#payload.subarray(this.#payloadFill);
  }

  /** `n` bytes were placed at the start of `target()`; the frame they complete, if any. */
  filled(n: number): Frame | undefined {
    this.bytesRead += n;
    if (this.#payload !== null) {
      this.#payloadFill += n;
      return this.#payloadFill === this.#payload.length ? this.#take() : undefined;
    }
    this.#headerFill += n;
    if (this.#headerFill < frameHeaderBytes) return undefined;
    this.#headerFill = 0;
    const found = frameTypesById.get(this.#header.readUInt8(0));
    if (found === undefined) throw protocolError(`Unknown frame type ${this.#header.readUInt8(0)}`);
    const length = this.#header.readUInt32BE(1);
    if (length > this.#maxPayloadBytes()) throw protocolError(`A ${found} frame of ${length} bytes exceeds the limit of ${this.#maxPayloadBytes()}`);
    this.#type = found;
    this.#payload = this.#allocate(length);
    this.#payloadFill = 0;
    return length === 0 ? this.#take() : undefined;
  }

  /** Consume `chunk`, appending each frame it completes to `out`. */
  push(chunk: Buffer, out: Frame[]): void {
    for (let at = 0; at < chunk.length; ) {
      const n = chunk.copy(this.target(), 0, at);
      at += n;
      const frame = this.filled(n);
      if (frame !== undefined) out.push(frame);
    }
  }

  #take(): Frame {
    const frame = { type: this.#type, payload: this.#payload ?? Buffer.alloc(0) };
    this.#payload = null;
    return frame;
  }
}

/** What feeds a FrameQueue: pausing and resuming its stream, and letting go of it. */
interface Feed {
  pause(): void;
  resume(): void;
  detach(): void;
}

/** Frames parsed and not yet taken, and how the stream that brings them stands. */
class FrameQueue {
  readonly parser: FrameParser;
  readonly #ready: Frame[] = [];
  #failure: Error | undefined;
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(parser: FrameParser) {
    this.parser = parser;
  }

  /** True when the stream should pause: enough frames wait, or it cannot go on. */
  get full(): boolean {
    return this.#ready.length >= framesAhead || this.#failure !== undefined;
  }

  add(frame: Frame): void {
    this.#ready.push(frame);
    this.#notify();
  }

  /** Bytes arrived in the parser's target (direct reads); false when the stream should pause. */
  filled(n: number): boolean {
    try {
      const frame = this.parser.filled(n);
      if (frame !== undefined) this.add(frame);
    } catch (err) {
      this.fail(err instanceof Error ? err : protocolError(String(err)));
    }
    return !this.full;
  }

  /** A piece of the stream arrived ('data' events). */
  push(chunk: Buffer): void {
    try {
      this.parser.push(chunk, this.#ready);
    } catch (err) {
      this.#failure ??= err instanceof Error ? err : protocolError(String(err));
    }
    this.#notify();
  }

  fail(err: Error): void {
    this.#failure ??= err;
    this.#notify();
  }

  end(): void {
    this.#ended = true;
    this.#notify();
  }

  /** The frames in order until the stream ends; a stream that ends inside a frame is a ConnectionLost. */
  async *frames(feed: Feed): AsyncGenerator<Frame, void, undefined> {
    try {
      for (;;) {
        const frame = this.#ready.shift();
        if (frame !== undefined) {
          if (!this.full && !this.#ended) feed.resume();
          yield frame;
        } else if (this.#failure !== undefined) {
          throw this.#failure;
        } else if (this.#ended) {
          if (this.parser.partial) throw connectionLost();
          return;
        } else {
          await new Promise<void>((resolve) => (this.#wake = resolve));
        }
      }
    } finally {
      feed.detach();
    }
  }

  #notify(): void {
    const resume = this.#wake;
    this.#wake = undefined;
    resume?.();
  }
}

/** Listen for a stream's end, close and errors on behalf of `queue`; returns how to stop listening. */
function watchEnd(stream: Readable, queue: FrameQueue): () => void {
  const onEnd = (): void => queue.end();
  const onError = (err: Error): void => queue.fail(connectionLost(err));
  stream.on('end', onEnd);
  stream.on('close', onEnd);
  stream.on('error', onError);
  return () => {
    stream.off('end', onEnd);
    stream.off('close', onEnd);
    stream.off('error', onError);
  };
}

/**
 * Frames read from `readable` until it ends. `maxPayloadBytes` is asked before each frame, so a
 * side can tighten it once it knows the chunk size; a larger frame is a protocol error (and never
 * allocated). Payloads come from `allocate` (a pool's `take`), so the consumer may give them back.
 * The stream flows ('data' events, each chunk copied out at once: an async iterator over a socket
 * kept more chunks alive and doubled the receiver's page faults) and is paused while
 * `framesAhead` frames wait. It is not destroyed when the consumer stops early; a stream error or
 * a close in the middle of a frame becomes a ConnectionLost.
 */
export function readFrames(
  readable: Readable,
  maxPayloadBytes: () => number,
  allocate: (lengthBytes: number) => Buffer = (lengthBytes) => Buffer.allocUnsafe(lengthBytes),
): AsyncGenerator<Frame, void, undefined> {
  return framesOf(readable, new FrameQueue(new FrameParser(maxPayloadBytes, allocate)));
}

function framesOf(readable: Readable, queue: FrameQueue): AsyncGenerator<Frame, void, undefined> {
  const onData = (chunk: Buffer): void => {
    queue.push(chunk);
    if (queue.full) readable.pause();
  };
  readable.on('data', onData);
  const unwatch = watchEnd(readable, queue);
  readable.resume();
  return queue.frames({
    pause: () => readable.pause(),
    resume: () => readable.resume(),
    detach: () => {
      readable.off('data', onData);
      unwatch();
      readable.pause();
    },
  });
}

/** A stream opened for frames: where to write (a new socket when reads were re-opened) and what was read. */
export interface FrameLink {
  readonly link: Duplex;
  readonly frames: AsyncGenerator<Frame, void, undefined>;
  /** Stream bytes read so far, frame headers included. */
  bytesRead(): number;
}

/** What a plain TCP socket holds that `openFrames` needs; not in Node's public types. */
interface HandleSocket {
  _handle: { useUserBuffer?: unknown } | null;
}

/**
 * Open `link` for frames as `readFrames` does, but when it is a plain TCP socket (an upgraded HTTP
 * connection, say) re-open its handle as a new socket whose reads go straight into each frame's
 * payload (see the module comment); from then on write to the returned `link`, never the old one.
 * Bytes the old socket had buffered (an upgrade's head, unshifted) are parsed first.
 */
export function openFrames(link: Duplex, maxPayloadBytes: () => number, allocate: (lengthBytes: number) => Buffer): FrameLink {
  const parser = new FrameParser(maxPayloadBytes, allocate);
  const queue = new FrameQueue(parser);
  const handle = link instanceof Socket && Object.getPrototypeOf(link) === Socket.prototype && !link.connecting && !link.destroyed ? (link as unknown as HandleSocket)._handle : null;
  if (handle === null || typeof handle.useUserBuffer !== 'function') {
    return { link, frames: framesOf(link, queue), bytesRead: () => parser.bytesRead };
  }
  const old = link as Socket;
  // Synchronously, so no read can land in the old socket between the two steps.
  for (let piece = old.read() as Buffer | null; piece !== null; piece = old.read() as Buffer | null) queue.push(piece);
  (old as unknown as HandleSocket)._handle = null;
  const socket = new Socket({
    handle,
    allowHalfOpen: old.allowHalfOpen,
    onread: { buffer: () => parser.target(), callback: (n: number) => queue.filled(n) },
  } as ConstructorParameters<typeof Socket>[0]);
  // The old socket lets go (a server stops counting it); the connection lives on in the new one.
  old.destroy();
  socket.on('error', () => undefined);
  const unwatch = watchEnd(socket, queue);
  socket.resume();
  const frames = queue.frames({
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    detach: () => {
      unwatch();
      socket.pause();
    },
  });
  return { link: socket, frames, bytesRead: () => parser.bytesRead };
}
