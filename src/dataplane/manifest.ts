/**
 * Chunk manifests: for a disk of `diskSizeBytes` cut into chunks of `chunkSizeBytes`, what each
 * chunk holds: all zero, data with a digest, or unknown (a receiver that lost track of a chunk).
 * The whole-image proof is SHA-256 over a fixed header and every chunk's digest in index order, a
 * zero chunk counting as the digest of that many zero bytes; so it equals the proof of the same
 * image hashed chunk by chunk without zero detection, and both sides compute it alike.
 *
 * Chunk digests are xxh64 (`@node-rs/xxhash`, 9,875 MiB/s on one core against SHA-256's 1,499,
 * BASELINES 3.3): with SHA-256 per chunk on both sides, hashing alone took about a core-second per
 * side for a 2 GiB disk, more than a full copy at cp's speed leaves on two cores. 64 bits catch
 * accidental damage and changes (a miss has odds of 2^-64 per chunk), not a forger: someone who
 * controls the bytes can craft a chunk with a given xxh64. Manifests of the earlier SHA-256 format
 * are still read (images made before keep exporting and checking), but they are no base for a new
 * run: their digests cannot be compared with xxh64 ones, so such a target is taken to hold nothing.
 */
import { createHash } from 'node:crypto';
import { xxh64 } from '@node-rs/xxhash';
import { chunkCountOf, chunkLengthOf, defaultChunkSizeBytes, readBlocks, sourceSizeBytes } from './block-reader.ts';
import { DataPlaneError } from './dataplane-error.ts';
import { zeroBuffer } from './zeros.ts';

export type HashAlgorithm = 'sha256' | 'xxh64';

/** The chunk digest this version computes, offers on the wire and writes into new manifests. */
export const hashAlgorithm: HashAlgorithm = 'xxh64';

/** Bytes of one chunk digest, per algorithm. */
export const digestBytesOf = { sha256: 32, xxh64: 8 } as const satisfies Record<HashAlgorithm, number>;

/** Bytes of a whole-image proof (hex: twice as many characters). */
export const proofBytes = 32;

export type ChunkKind = 'unknown' | 'zero' | 'data';

const kindCodes = { unknown: 0, zero: 1, data: 2 } as const satisfies Record<ChunkKind, number>;
const kindsByCode: readonly ChunkKind[] = ['unknown', 'zero', 'data'];

const magic = Buffer.from('FMF1', 'latin1');
const headerBytes = 24;
/** The header's hash-algorithm byte. */
const algorithmCodes = { sha256: 1, xxh64: 2 } as const satisfies Record<HashAlgorithm, number>;
const algorithmsByCode = new Map<number, HashAlgorithm>(Object.entries(algorithmCodes).map(([name, code]) => [code, name as HashAlgorithm]));

/** The digest of one chunk's bytes (xxh64: 8 bytes, big-endian). */
export function chunkDigest(data: Uint8Array, algorithm: HashAlgorithm = hashAlgorithm): Buffer {
  if (algorithm === 'sha256') return createHash('sha256').update(data).digest();
  const out = Buffer.allocUnsafe(8);
  out.writeBigUInt64BE(xxh64(data), 0);
  return out;
}

const zeroDigests = new Map<string, Buffer>();

/** The digest of `lengthBytes` zero bytes; what a zero chunk contributes to the proof. */
export function zeroDigest(lengthBytes: number, algorithm: HashAlgorithm = hashAlgorithm): Buffer {
  const key = `${algorithm}:${lengthBytes}`;
  let digest = zeroDigests.get(key);
  if (digest === undefined) {
    digest = chunkDigest(zeroBuffer(lengthBytes), algorithm);
    zeroDigests.set(key, digest);
  }
  return digest;
}

export class Manifest {
  readonly diskSizeBytes: number;
  readonly chunkSizeBytes: number;
  readonly chunkCount: number;
  /** What its chunk digests are; only `hashAlgorithm` manifests are made new, older ones are read. */
  readonly algorithm: HashAlgorithm;
  readonly #digestBytes: number;
  readonly #kinds: Uint8Array;
  readonly #digests: Buffer;

  private constructor(diskSizeBytes: number, chunkSizeBytes: number, algorithm: HashAlgorithm, kinds?: Uint8Array, digests?: Buffer) {
    if (!Number.isSafeInteger(diskSizeBytes) || diskSizeBytes < 0) throw new RangeError(`diskSizeBytes must be a non-negative integer, got ${diskSizeBytes}`);
    if (!Number.isSafeInteger(chunkSizeBytes) || chunkSizeBytes <= 0) throw new RangeError(`chunkSizeBytes must be a positive integer, got ${chunkSizeBytes}`);
    this.diskSizeBytes = diskSizeBytes;
    this.chunkSizeBytes = chunkSizeBytes;
    this.chunkCount = chunkCountOf(diskSizeBytes, chunkSizeBytes);
    this.algorithm = algorithm;
    this.#digestBytes = digestBytesOf[algorithm];
    this.#kinds = kinds ?? new Uint8Array(this.chunkCount);
    this.#digests = digests ?? Buffer.alloc(this.chunkCount * this.#digestBytes);
  }

  /** A manifest in which every chunk is unknown. */
  static unknown(diskSizeBytes: number, chunkSizeBytes: number = defaultChunkSizeBytes, algorithm: HashAlgorithm = hashAlgorithm): Manifest {
    return new Manifest(diskSizeBytes, chunkSizeBytes, algorithm);
  }

  /** A manifest of an all-zero disk, e.g. a freshly truncated image file. */
  static zero(diskSizeBytes: number, chunkSizeBytes: number = defaultChunkSizeBytes, algorithm: HashAlgorithm = hashAlgorithm): Manifest {
    const manifest = new Manifest(diskSizeBytes, chunkSizeBytes, algorithm);
    manifest.#kinds.fill(kindCodes.zero);
    return manifest;
  }

  /** Parse what `encode` wrote (this version's or the SHA-256 format); throws ProtocolError on anything else. */
  static decode(bytes: Uint8Array): Manifest {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    const bad = (why: string): DataPlaneError => new DataPlaneError('ProtocolError', `Malformed manifest: ${why}.`);
    if (buf.length < headerBytes || !buf.subarray(0, 4).equals(magic)) throw bad('no FMF1 header');
    const algorithm = algorithmsByCode.get(buf.readUInt8(4));
    if (algorithm === undefined) throw bad(`unknown hash algorithm ${buf.readUInt8(4)}`);
    const digestBytes = digestBytesOf[algorithm];
    const chunkSizeBytes = buf.readUInt32BE(8);
    const diskSizeBytes = Number(buf.readBigUInt64BE(12));
    const chunkCount = buf.readUInt32BE(20);
    if (chunkSizeBytes === 0 || chunkCount !== chunkCountOf(diskSizeBytes, chunkSizeBytes)) throw bad('chunk count does not match the sizes');
    if (buf.length < headerBytes + chunkCount) throw bad('truncated');
    const kinds = new Uint8Array(buf.subarray(headerBytes, headerBytes + chunkCount));
    const digests = Buffer.alloc(chunkCount * digestBytes);
    let at = headerBytes + chunkCount;
    for (let i = 0; i < chunkCount; i++) {
      const code = kinds[i] ?? 0;
      if (code > kindCodes.data) throw bad(`chunk ${i} has kind ${code}`);
      if (code !== kindCodes.data) continue;
      if (buf.length < at + digestBytes) throw bad('truncated');
      buf.copy(digests, i * digestBytes, at, at + digestBytes);
      at += digestBytes;
    }
    if (at !== buf.length) throw bad('trailing bytes');
    return new Manifest(diskSizeBytes, chunkSizeBytes, algorithm, kinds, digests);
  }

  /** Compact binary form: 24-byte header, one kind byte per chunk, one digest per data chunk. */
  encode(): Buffer {
    let dataChunks = 0;
    for (const code of this.#kinds) if (code === kindCodes.data) dataChunks++;
    const digestBytes = this.#digestBytes;
    const out = Buffer.alloc(headerBytes + this.chunkCount + dataChunks * digestBytes);
    magic.copy(out, 0);
    out.writeUInt8(algorithmCodes[this.algorithm], 4);
    out.writeUInt32BE(this.chunkSizeBytes, 8);
    out.writeBigUInt64BE(BigInt(this.diskSizeBytes), 12);
    out.writeUInt32BE(this.chunkCount, 20);
    out.set(this.#kinds, headerBytes);
    let at = headerBytes + this.chunkCount;
    for (let i = 0; i < this.chunkCount; i++) {
      if (this.#kinds[i] !== kindCodes.data) continue;
      at += this.#digests.copy(out, at, i * digestBytes, (i + 1) * digestBytes);
    }
    return out;
  }

  clone(): Manifest {
    return new Manifest(this.diskSizeBytes, this.chunkSizeBytes, this.algorithm, this.#kinds.slice(), Buffer.from(this.#digests));
  }

  /**
   * The same disk grown or shrunk to `diskSizeBytes`: chunks past the old end are zero (a grown
   * file reads zeros there), and a chunk whose length changed becomes unknown.
   */
  resized(diskSizeBytes: number): Manifest {
    const out = Manifest.zero(diskSizeBytes, this.chunkSizeBytes, this.algorithm);
    const common = Math.min(this.chunkCount, out.chunkCount);
    out.#kinds.set(this.#kinds.subarray(0, common));
    this.#digests.copy(out.#digests, 0, 0, common * this.#digestBytes);
    const last = common - 1;
    if (last >= 0 && this.lengthOf(last) !== out.lengthOf(last)) out.setUnknown(last);
    return out;
  }

  lengthOf(index: number): number {
    return chunkLengthOf(index, this.diskSizeBytes, this.chunkSizeBytes);
  }

  kindAt(index: number): ChunkKind {
    return kindsByCode[this.#kinds[index] ?? 0] ?? 'unknown';
  }

  /** The digest of a data chunk, or null for a zero or unknown chunk. */
  digestAt(index: number): Buffer | null {
    if (this.#kinds[index] !== kindCodes.data) return null;
    return this.#digests.subarray(index * this.#digestBytes, (index + 1) * this.#digestBytes);
  }

  setZero(index: number): void {
    this.#check(index);
    this.#kinds[index] = kindCodes.zero;
  }

  setUnknown(index: number): void {
    this.#check(index);
    this.#kinds[index] = kindCodes.unknown;
  }

  /** Record a chunk's digest; the digest of zero bytes is recorded as a zero chunk. */
  setDigest(index: number, digest: Uint8Array): void {
    this.#check(index);
    if (digest.length !== this.#digestBytes) throw new RangeError(`a ${this.algorithm} digest has ${this.#digestBytes} bytes, got ${digest.length}`);
    if (zeroDigest(this.lengthOf(index), this.algorithm).equals(digest)) {
      this.#kinds[index] = kindCodes.zero;
      return;
    }
    this.#kinds[index] = kindCodes.data;
    this.#digests.set(digest, index * this.#digestBytes);
  }

  /** Record what a chunk holds: null for all zero, else its digest. */
  set(index: number, digest: Uint8Array | null): void {
    if (digest === null) this.setZero(index);
    else this.setDigest(index, digest);
  }

  /** True when chunk `index` is known to hold what `digest` (of this manifest's algorithm; null: all zero) says. */
  holds(index: number, digest: Uint8Array | null): boolean {
    const code = this.#kinds[index];
    if (digest === null) return code === kindCodes.zero;
    const digestBytes = this.#digestBytes;
    return code === kindCodes.data && digest.length === digestBytes && this.#digests.compare(digest, 0, digestBytes, index * digestBytes, (index + 1) * digestBytes) === 0;
  }

  /** True when chunk `index` holds the same known content in both manifests (never across algorithms). */
  sameAt(index: number, other: Manifest): boolean {
    const kind = other.kindAt(index);
    if (kind === 'unknown' || other.algorithm !== this.algorithm || other.lengthOf(index) !== this.lengthOf(index)) return false;
    return this.holds(index, other.digestAt(index));
  }

  /** True when no chunk is unknown. */
  isComplete(): boolean {
    return !this.#kinds.includes(kindCodes.unknown);
  }

  /** Counts of chunks by kind. */
  counts(): Record<ChunkKind, number> {
    const out = { unknown: 0, zero: 0, data: 0 };
    for (const code of this.#kinds) out[kindsByCode[code] ?? 'unknown']++;
    return out;
  }

  #check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.chunkCount) {
      throw new RangeError(`chunk index ${index} is outside 0..${this.chunkCount - 1}`);
    }
  }
}

/** The proof header's label per chunk algorithm; the SHA-256 one is unchanged, so older runs' proofs still check. */
const proofLabels = { sha256: 'ferry-image-proof-v1', xxh64: 'ferry-proof-xxh64' } as const satisfies Record<HashAlgorithm, string>;

/**
 * Whole-image proof (hex SHA-256 over a 32-byte header, the label of the chunk algorithm then the
 * disk and chunk sizes, and every chunk's digest in order); the manifest must be complete.
 */
export function proofOf(manifest: Manifest): string {
  if (!manifest.isComplete()) throw new RangeError('a proof needs a complete manifest; some chunks are unknown');
  const header = Buffer.alloc(32);
  header.write(proofLabels[manifest.algorithm], 0, 'latin1');
  header.writeBigUInt64BE(BigInt(manifest.diskSizeBytes), 20);
  header.writeUInt32BE(manifest.chunkSizeBytes, 28);
  const hash = createHash('sha256').update(header);
  for (let i = 0; i < manifest.chunkCount; i++) {
    hash.update(manifest.digestAt(i) ?? zeroDigest(manifest.lengthOf(i), manifest.algorithm));
  }
  return hash.digest('hex');
}

/**
 * What a target described by `previous` holds for a run of this version: `previous` itself, or
 * nothing (undefined) when its digests are of another algorithm and so cannot be compared with
 * the sender's. A target that holds nothing is emptied and sent in full.
 */
export function usableState(previous: Manifest | undefined): Manifest | undefined {
  return previous?.algorithm === hashAlgorithm ? previous : undefined;
}

/**
 * What a target image described by `previous` holds once sized for a run in `chunkSizeBytes`
 * chunks: with no previous manifest (or one of another algorithm, see `usableState`) it is a
 * fresh, all-zero image; with one of another chunk size its content is unknown; else `previous`
 * resized.
 */
export function targetManifest(previous: Manifest | undefined, diskSizeBytes: number, chunkSizeBytes: number): Manifest {
  const usable = usableState(previous);
  if (usable === undefined) return Manifest.zero(diskSizeBytes, chunkSizeBytes);
  if (usable.chunkSizeBytes !== chunkSizeBytes) return Manifest.unknown(diskSizeBytes, chunkSizeBytes);
  return usable.resized(diskSizeBytes);
}

/**
 * Chunk indexes of `current` whose content a target holding `previous` lacks: changed chunks,
 * chunks that became zero, chunks past the old end (see `targetManifest` for no or another base).
 */
export function diffManifest(previous: Manifest | undefined, current: Manifest): number[] {
  const base = targetManifest(previous, current.diskSizeBytes, current.chunkSizeBytes);
  const out: number[] = [];
  for (let i = 0; i < current.chunkCount; i++) {
    if (!base.sameAt(i, current)) out.push(i);
  }
  return out;
}

/** Read and hash a whole disk or image into a manifest (`algorithm`: this version's unless told). */
export async function buildManifest(
  path: string,
  options: { readonly chunkSizeBytes?: number; readonly signal?: AbortSignal; readonly algorithm?: HashAlgorithm } = {},
): Promise<Manifest> {
  const algorithm = options.algorithm ?? hashAlgorithm;
  const manifest = Manifest.unknown(await sourceSizeBytes(path), options.chunkSizeBytes ?? defaultChunkSizeBytes, algorithm);
  for await (const block of readBlocks(path, options)) {
    manifest.set(block.index, block.data === null ? null : chunkDigest(block.data, algorithm));
  }
  return manifest;
}
