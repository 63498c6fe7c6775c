/**
 * SHA-256 of chunks on a worker thread, so the receiver verifies chunks on one core while its main
 * thread moves bytes (socket, file) on the other. (The agent's sender hashes on its main thread:
 * see Sender's #digest for why.) The chunk's memory moves to the worker and back
 * (a transfer, no copy). Sharing it instead (SharedArrayBuffer) would spare the moves, but then
 * every copy into it from a socket read goes through V8's relaxed (non-vector) memmove: 13 % of
 * the receiver's CPU here, against 5 % for the copy into plain memory. WebCrypto's
 * `subtle.digest` also hashes off the main thread, but it copies each chunk into fresh memory
 * first: 2-3x the CPU of hashing 4 MiB chunks in place on this machine.
 *
 * One worker per process, started on first use and referenced only while a digest is owed, so it
 * never keeps a process alive. When it cannot start or dies, chunks are hashed on the calling thread.
 */
import { Worker } from 'node:worker_threads';
import { chunkDigest } from './manifest.ts';

/** The worker's whole program (CommonJS, so it needs no loader for TypeScript). */
const workerSource = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
parentPort.on('message', ({ id, memory, offset, length }) => {
  let digest;
  try {
    digest = createHash('sha256').update(new Uint8Array(memory, offset, length)).digest();
  } catch (err) {
    digest = undefined;
  }
  parentPort.postMessage({ id, memory, digest }, [memory]);
});
`;

interface Reply {
  readonly id: number;
  readonly memory: ArrayBuffer;
  readonly digest?: Uint8Array;
}

/** A digest, and the chunk's bytes in the memory that came back. */
export interface MovedDigest {
  readonly digest: Buffer;
  readonly data: Buffer;
}

interface Pending {
  readonly offset: number;
  readonly length: number;
  readonly resolve: (moved: MovedDigest) => void;
  readonly reject: (err: Error) => void;
}

class DigestWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  broken = false;

  constructor() {
    // A small heap: it holds one message at a time (an agent must stay under 200 MiB in all).
    this.#worker = new Worker(workerSource, { eval: true });
    this.#worker.unref();
    this.#worker.on('message', (reply: Reply) => {
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) this.#worker.unref();
      if (pending === undefined) return;
      const data = Buffer.from(reply.memory, pending.offset, pending.length);
      // A failure there (none is known) is retried here, where it will surface.
      const digest = reply.digest === undefined ? chunkDigest(data) : Buffer.from(reply.digest.buffer, reply.digest.byteOffset, reply.digest.length);
      pending.resolve({ digest, data });
    });
    const fail = (err: unknown): void => {
      this.broken = true;
      const error = err instanceof Error ? err : new Error(`the SHA-256 worker exited with ${String(err)}`);
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', fail);
  }

  digest(data: Buffer): Promise<MovedDigest> {
    const id = this.#nextId++;
    if (this.#pending.size === 0) this.#worker.ref();
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { offset: data.byteOffset, length: data.length, resolve, reject });
      const memory = data.buffer;
      this.#worker.postMessage({ id, memory, offset: data.byteOffset, length: data.length }, [memory as ArrayBuffer]);
    });
  }
}

let shared: DigestWorker | undefined;

/**
 * SHA-256 of `data`, computed on the digest worker. `data` must view an ArrayBuffer that its
 * caller alone holds (a BufferPool buffer, never a slice of Node's shared buffer pool): that
 * memory moves to the worker and back, every view of it reads as empty meanwhile, and the bytes
 * come back as the returned `data`.
 */
export async function chunkDigestMoving(data: Buffer): Promise<MovedDigest> {
  if (shared === undefined || shared.broken) {
    try {
      shared = new DigestWorker();
    } catch {
      return { digest: chunkDigest(data), data };
    }
  }
  return shared.digest(data);
}
