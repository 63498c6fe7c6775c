import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The upload path's server end: where a run's disk bytes land and where finished images live.
 * A port, so the data plane's resumable receiver can take the place of this file store.
 */
export interface ImageStore {
  /** Write one uncompressed chunk of a run's disk at `offsetBytes`. */
  writeChunk(runId: string, diskIndex: number, offsetBytes: number, data: Buffer): Promise<void>;
  /** Give the staged disk its final size (an unsent zero tail becomes a hole) and return its SHA-256 hex. */
  sealDisk(runId: string, diskIndex: number, sizeBytes: number): Promise<string>;
  /** Move the run's staged disks into the image's files; a repeat after a crash finds them moved. */
  commit(runId: string, imageId: string, diskIndexes: readonly number[]): Promise<void>;
  /** Drop what a run staged (stopped, failed, expired, deleted). */
  discard(runId: string): Promise<void>;
  /** Whether the image's system disk file exists (a finalisation after a crash finds it committed). */
  hasImage(imageId: string): Promise<boolean>;
  /** Delete an image's files (retention, or a failed finalisation). */
  remove(imageId: string): Promise<void>;
  /** The file of an image's disk: `<id>.raw` for the system disk, `<id>.data<N>.raw` for data disk N. */
  imagePath(imageId: string, diskIndex: number): string;
}

/** Images as raw files under `<dataDir>/images`, staged per run under `.staging/<runId>/`. */
export function fileImageStore(dataDir: string): ImageStore {
  const root = join(dataDir, 'images');
  const stagingDir = (runId: string): string => join(root, '.staging', runId);
  const stagedPath = (runId: string, diskIndex: number): string => join(stagingDir(runId), `disk${diskIndex}.raw`);
  const imagePath = (imageId: string, diskIndex: number): string => join(root, diskIndex === 0 ? `${imageId}.raw` : `${imageId}.data${diskIndex}.raw`);

  async function openStaged(runId: string, diskIndex: number) {
    await mkdir(stagingDir(runId), { recursive: true });
    return open(stagedPath(runId, diskIndex), constants.O_RDWR | constants.O_CREAT, 0o600);
  }

  return {
    imagePath,
    async writeChunk(runId, diskIndex, offsetBytes, data) {
      const handle = await openStaged(runId, diskIndex);
      try {
        let done = 0;
        while (done < data.length) done += (await handle.write(data, done, data.length - done, offsetBytes + done)).bytesWritten;
      } finally {
        await handle.close();
      }
    },
    async sealDisk(runId, diskIndex, sizeBytes) {
      const handle = await openStaged(runId, diskIndex);
      try {
        await handle.truncate(sizeBytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(stagedPath(runId, diskIndex))) hash.update(chunk as Buffer);
      return hash.digest('hex');
    },
    async commit(runId, imageId, diskIndexes) {
      for (const diskIndex of diskIndexes) {
        const from = stagedPath(runId, diskIndex);
        const moved = await stat(from).then(() => false, () => true);
        if (!moved) await rename(from, imagePath(imageId, diskIndex));
      }
      await rm(stagingDir(runId), { recursive: true, force: true });
    },
    async hasImage(imageId) {
      return stat(imagePath(imageId, 0)).then(() => true, () => false);
    },
    async discard(runId) {
      await rm(stagingDir(runId), { recursive: true, force: true });
    },
    async remove(imageId) {
      for (let diskIndex = 0; diskIndex <= 16; diskIndex += 1) await rm(imagePath(imageId, diskIndex), { force: true });
    },
  };
}
