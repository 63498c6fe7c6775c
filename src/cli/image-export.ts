/**
 * `ferry image export`: fetch an image's disk from the server as its chunk manifest and its data
 * chunks, write it as a sparse raw file (zero chunks stay holes), check every chunk against the
 * manifest's digest (xxh64, or SHA-256 in manifests made before xxh64) and the whole file against
 * the proof the run recorded, and for qcow2 convert it with qemu-img, then `qemu-img check` the
 * result and `qemu-img compare` it with the raw bytes.
 */
import { rename, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { AppError } from '../core/errors.ts';
import { chunkDigest, Manifest, proofOf } from '../dataplane/manifest.ts';
import { checkQcow2, compareImages, convertRawToQcow2 } from '../dataplane/qcow2.ts';
import { RawImageWriter } from '../dataplane/raw-image-writer.ts';
import type { ImageInfo } from '../migration/image-export.ts';
import { type ApiCredentials, callApi, callApiBytes, signedGetStream } from './api-client.ts';

export type ExportFormat = 'raw' | 'qcow2';

export interface ExportResult {
  readonly imageId: string;
  readonly diskIndex: number;
  readonly format: ExportFormat;
  readonly path: string;
  readonly sizeBytes: number;
  /** The image's whole-image proof, recomputed from the bytes written. */
  readonly proof: string;
  readonly dataChunks: number;
  readonly zeroChunks: number;
  /** What was checked: chunk digests and proof always; qemu-img check and compare for qcow2. */
  readonly checks: readonly string[];
}

/** Exactly `lengthBytes` from the stream, across its pieces; null at the end. */
class ExactReader {
  readonly #pieces: AsyncIterator<Buffer>;
  #rest: Buffer = Buffer.alloc(0);

  constructor(stream: Readable) {
    this.#pieces = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async read(lengthBytes: number): Promise<Buffer | null> {
    const out = Buffer.allocUnsafe(lengthBytes);
    let filled = 0;
    while (filled < lengthBytes) {
      if (this.#rest.length === 0) {
        const next = await this.#pieces.next();
        if (next.done === true) return null;
        this.#rest = next.value;
      }
      const n = this.#rest.copy(out, filled, 0, lengthBytes - filled);
      filled += n;
      this.#rest = this.#rest.subarray(n);
    }
    return out;
  }
}

export async function exportImage(creds: ApiCredentials, imageId: string, options: { readonly format: ExportFormat; readonly out: string; readonly diskIndex: number }): Promise<ExportResult> {
  const fail = (reason: string): AppError => new AppError('ImageCheckFailed', { imageId, reason });
  const info = await callApi<ImageInfo>(creds, 'GET', `/api/v1/images/${encodeURIComponent(imageId)}`);
  const disk = info.disks.find((d) => d.index === options.diskIndex);
  if (disk === undefined) throw new AppError('InvalidImageIdNotFound', { imageId: `${imageId} disk ${options.diskIndex}` });
  const diskPath = `/api/v1/images/${encodeURIComponent(imageId)}/disks/${options.diskIndex}`;
  const manifest = Manifest.decode(Buffer.from(await (await callApiBytes(creds, `${diskPath}/manifest`)).arrayBuffer()));
  if (manifest.diskSizeBytes !== disk.sizeBytes) throw fail(`its manifest describes ${manifest.diskSizeBytes} bytes, the disk has ${disk.sizeBytes}`);

  const rawPath = options.format === 'raw' ? `${options.out}.part` : `${options.out}.raw.part`;
  const checks = [`chunk ${manifest.algorithm}`];
  try {
    const reader = new ExactReader(await signedGetStream(creds, `${diskPath}/data`));
    const image = await RawImageWriter.open(rawPath, manifest.diskSizeBytes, { fresh: true });
    let dataChunks = 0;
    try {
      for (let index = 0; index < manifest.chunkCount; index++) {
        const digest = manifest.digestAt(index);
        if (digest === null) continue;
        const data = await reader.read(manifest.lengthOf(index));
        if (data === null) throw fail(`the data ended before chunk ${index}`);
        if (!chunkDigest(data, manifest.algorithm).equals(digest)) throw fail(`chunk ${index} does not match its ${manifest.algorithm} digest in the manifest`);
        await image.writeSparse(index * manifest.chunkSizeBytes, data);
        dataChunks++;
      }
      if ((await reader.read(1)) !== null) throw fail('the server sent more data than the manifest describes');
      await image.sync();
    } finally {
      await image.close();
    }
    const proof = proofOf(manifest);
    if (disk.proof !== '') {
      if (proof !== disk.proof) throw fail(`its proof ${proof} differs from the run's ${disk.proof}`);
      checks.push('proof');
    }
    if (options.format === 'qcow2') {
      await convertRawToQcow2(rawPath, options.out);
      const check = await checkQcow2(options.out);
      if (!check.ok) throw fail(`qemu-img check found ${check.corruptions} corruptions, ${check.leaks} leaks, ${check.checkErrors} errors`);
      if (!(await compareImages({ path: rawPath, format: 'raw' }, { path: options.out, format: 'qcow2' }))) throw fail('qemu-img compare finds the qcow2 image differs from the raw bytes');
      checks.push('qemu-img check', 'qemu-img compare');
      await rm(rawPath, { force: true });
    } else {
      await rename(rawPath, options.out);
    }
    const counts = manifest.counts();
    return { imageId, diskIndex: options.diskIndex, format: options.format, path: options.out, sizeBytes: manifest.diskSizeBytes, proof, dataChunks, zeroChunks: counts.zero, checks };
  } catch (err) {
    await rm(rawPath, { force: true });
    throw err;
  }
}
