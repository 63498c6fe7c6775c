/**
 * Reading a finished image back out (`ferry image export`): its disks with their chunk manifests
 * and proofs, and each disk's data as the concatenation of its data chunks in index order (zero
 * chunks are left out: the manifest tells the reader where the holes go).
 */
import { stat } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { AppError } from '../core/errors.ts';
import { buildManifest, type Manifest } from '../dataplane/manifest.ts';
import type { ImageStore } from './image-store.ts';
import type { ServiceContext } from './service-context.ts';

export interface ImageDiskInfo {
  readonly index: number;
  readonly sizeBytes: number;
  /** The whole-image proof the run recorded for this disk ('' when it recorded none). */
  readonly proof: string;
}

export interface ImageInfo {
  readonly imageId: string;
  readonly name: string;
  readonly jobId: string;
  readonly runId: string;
  readonly disks: ImageDiskInfo[];
}

/** An image of the caller's account that still exists, with its disks. */
export async function describeImage(ctx: ServiceContext, store: ImageStore, imageId: string): Promise<ImageInfo> {
  const row = await ctx.database.db.selectFrom('smc_images').selectAll().where('id', '=', imageId).where('account_id', '=', ctx.accountId).where('deleted_at', 'is', null).executeTakeFirst();
  if (row === undefined) throw new AppError('InvalidImageIdNotFound', { imageId });
  const run = await ctx.database.db.selectFrom('replication_job_runs').select('proofs').where('id', '=', row.run_id).executeTakeFirst();
  const proofs = JSON.parse(run?.proofs ?? '{}') as Record<string, string>;
  const disks: ImageDiskInfo[] = [];
  for (let index = 0; index <= 16; index++) {
    const info = await stat(store.imagePath(imageId, index)).catch(() => undefined);
    if (info !== undefined) disks.push({ index, sizeBytes: info.size, proof: proofs[index] ?? '' });
  }
  if (disks.length === 0) throw new AppError('InvalidImageIdNotFound', { imageId });
  return { imageId, name: row.name, jobId: row.job_id, runId: row.run_id, disks };
}

/** The chunk manifest of an image's disk: the one its run kept, or (older images) hashed now. */
export async function imageDiskManifest(ctx: ServiceContext, store: ImageStore, imageId: string, diskIndex: number, signal?: AbortSignal): Promise<Manifest> {
  const info = await describeImage(ctx, store, imageId);
  if (!info.disks.some((d) => d.index === diskIndex)) throw new AppError('InvalidImageIdNotFound', { imageId: `${imageId} disk ${diskIndex}` });
  return (await store.imageManifest(imageId, diskIndex)) ?? buildManifest(store.imagePath(imageId, diskIndex), signal === undefined ? {} : { signal });
}

/** The data chunks of an image's disk, in index order, as one byte stream. */
export async function imageDiskData(store: ImageStore, imageId: string, diskIndex: number, manifest: Manifest): Promise<Readable> {
  const file = await open(store.imagePath(imageId, diskIndex), 'r');
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      for (let index = 0; index < manifest.chunkCount; index++) {
        if (manifest.kindAt(index) !== 'data') continue;
        const buffer = Buffer.allocUnsafe(manifest.lengthOf(index));
        let done = 0;
        while (done < buffer.length) {
          const { bytesRead } = await file.read(buffer, done, buffer.length - done, index * manifest.chunkSizeBytes + done);
          if (bytesRead === 0) throw new Error(`image ${imageId} disk ${diskIndex} is shorter than its manifest`);
          done += bytesRead;
        }
        yield buffer;
      }
    } finally {
      await file.close();
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}
