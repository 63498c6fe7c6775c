import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Manifest, usableState } from '../dataplane/manifest.ts';
import { RawImageWriter } from '../dataplane/raw-image-writer.ts';

/**
 * The upload path's server end: where a run's disk bytes land and where finished images live.
 * A run's disks are staged as raw files the data-plane receiver writes in place; beside each, its
 * checkpoint (the chunk manifest of what the file durably holds) and, once the transfer proved
 * the image, its proof. A committed image keeps its manifest: the base of the next incremental run.
 */
export interface ImageStore {
  /** Write one uncompressed piece of a run's disk at `offsetBytes` (file trees of ContainerImage runs). */
  writeChunk(runId: string, diskIndex: number, offsetBytes: number, data: Buffer): Promise<void>;
  /** The staged raw file of a run's disk (the receiver writes it in place). */
  stagedPath(runId: string, diskIndex: number): string;
  /**
   * The last checkpoint of a run's disk, or undefined when its transfer has not confirmed anything
   * (or confirmed it under another chunk algorithm: the transfer then starts over on an emptied file).
   */
  loadCheckpoint(runId: string, diskIndex: number): Promise<Manifest | undefined>;
  /** Persist a checkpoint (written aside and renamed: a crash leaves the old one or the new). */
  saveCheckpoint(runId: string, diskIndex: number, manifest: Manifest): Promise<void>;
  /** Record the proof of a disk whose transfer finished (both sides computed it). */
  saveProof(runId: string, diskIndex: number, proof: string): Promise<void>;
  /**
   * Start a run's disk from a committed image (incremental runs): copy the image's data chunks into
   * the staged file, leaving holes elsewhere, and checkpoint the image's manifest. Undefined, and
   * nothing staged, when the image or its manifest is gone, or the manifest's chunk digests are of
   * another algorithm (the run then sends everything).
   */
  stageFromImage(runId: string, diskIndex: number, imageId: string): Promise<Manifest | undefined>;
  /**
   * Copy a committed image's disks (those with a manifest of this version's chunk algorithm) aside
   * as the base of the job's next incremental run, so that run starts at once instead of copying
   * the image first.
   */
  prepareBase(jobId: string, imageId: string, diskIndexes: readonly number[]): Promise<void>;
  /**
   * Move the job's prepared base of `imageId` into a run's staged disk, checkpointing its manifest;
   * undefined (nothing staged) when no base of that image is ready, or its manifest is of another
   * chunk algorithm.
   */
  takeBase(jobId: string, imageId: string, runId: string, diskIndex: number): Promise<Manifest | undefined>;
  /** Drop a job's prepared bases (the job was deleted or ended). */
  discardBase(jobId: string): Promise<void>;
  /** The manifest of a committed image's disk, when it has one (of whichever chunk algorithm it was made with). */
  imageManifest(imageId: string, diskIndex: number): Promise<Manifest | undefined>;
  /**
   * Give the staged disk its final size (an unsent zero tail becomes a hole) and return its checksum:
   * the proof the transfer recorded, else (file trees) the SHA-256 of the file.
   */
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

/** Bytes copied per read when an incremental run starts from the previous image. */
const copyPieceBytes = 4 * 1024 * 1024;

/** Write `bytes` to `path` durably and atomically: aside, fsync, rename. */
async function writeDurably(path: string, bytes: Buffer | string): Promise<void> {
  const part = `${path}.part`;
  const handle = await open(part, 'w', 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(part, path);
}

async function readManifest(path: string): Promise<Manifest | undefined> {
  const bytes = await readFile(path).catch(() => undefined);
  return bytes === undefined ? undefined : Manifest.decode(bytes);
}

/**
 * A manifest a new run can start from: none when its chunk digests are of another algorithm
 * (an image made before chunks were hashed with xxh64), so no copy is made that would hold nothing.
 */
async function readUsableManifest(path: string): Promise<Manifest | undefined> {
  return usableState(await readManifest(path));
}

/** Images as raw files under `<dataDir>/images`, staged per run under `.staging/<runId>/`. */
export function fileImageStore(dataDir: string): ImageStore {
  const root = join(dataDir, 'images');
  const stagingDir = (runId: string): string => join(root, '.staging', runId);
  const stagedPath = (runId: string, diskIndex: number): string => join(stagingDir(runId), `disk${diskIndex}.raw`);
  const checkpointPath = (runId: string, diskIndex: number): string => join(stagingDir(runId), `disk${diskIndex}.manifest`);
  const proofPath = (runId: string, diskIndex: number): string => join(stagingDir(runId), `disk${diskIndex}.proof`);
  const imagePath = (imageId: string, diskIndex: number): string => join(root, diskIndex === 0 ? `${imageId}.raw` : `${imageId}.data${diskIndex}.raw`);
  const imageManifestPath = (imageId: string, diskIndex: number): string => imagePath(imageId, diskIndex).replace(/\.raw$/, '.manifest');

  const baseDir = (jobId: string): string => join(root, '.base', jobId);
  const basePath = (jobId: string, diskIndex: number): string => join(baseDir(jobId), `disk${diskIndex}.raw`);
  // Written last, naming the image the copy holds: a base without it is incomplete.
  const baseManifestPath = (jobId: string, imageId: string, diskIndex: number): string => join(baseDir(jobId), `disk${diskIndex}.${imageId}.manifest`);

  /** Copy the data chunks of `manifest` from the image file `from` into a fresh sparse file `to`, fsynced. */
  async function copyDataChunks(from: string, to: string, manifest: Manifest): Promise<boolean> {
    const source = await open(from, 'r').catch(() => undefined);
    if (source === undefined) return false;
    try {
      const target = await RawImageWriter.open(to, manifest.diskSizeBytes, { fresh: true });
      try {
        const buffer = Buffer.allocUnsafe(Math.min(copyPieceBytes, manifest.chunkSizeBytes));
        for (let index = 0; index < manifest.chunkCount; index++) {
          if (manifest.kindAt(index) !== 'data') continue;
          const start = index * manifest.chunkSizeBytes;
          const end = start + manifest.lengthOf(index);
          for (let at = start; at < end; at += buffer.length) {
            const { bytesRead } = await source.read(buffer, 0, Math.min(buffer.length, end - at), at);
            await target.writeSparse(at, buffer.subarray(0, bytesRead));
          }
        }
        await target.sync();
      } finally {
        await target.close();
      }
    } finally {
      await source.close();
    }
    return true;
  }

  async function openStaged(runId: string, diskIndex: number) {
    await mkdir(stagingDir(runId), { recursive: true });
    return open(stagedPath(runId, diskIndex), constants.O_RDWR | constants.O_CREAT, 0o600);
  }

  return {
    imagePath,
    stagedPath,
    async writeChunk(runId, diskIndex, offsetBytes, data) {
      const handle = await openStaged(runId, diskIndex);
      try {
        let done = 0;
        while (done < data.length) done += (await handle.write(data, done, data.length - done, offsetBytes + done)).bytesWritten;
      } finally {
        await handle.close();
      }
    },
    loadCheckpoint: (runId, diskIndex) => readUsableManifest(checkpointPath(runId, diskIndex)),
    async saveCheckpoint(runId, diskIndex, manifest) {
      // Written aside and renamed, not fsynced: the receiver fdatasyncs the image before each
      // checkpoint, so whatever version survives a crash names only durable chunks; one lost to a
      // power failure costs a resend of its chunks, never a wrong image. (A killed process loses nothing.)
      const path = checkpointPath(runId, diskIndex);
      await writeFile(`${path}.part`, manifest.encode(), { mode: 0o600 });
      await rename(`${path}.part`, path);
    },
    async saveProof(runId, diskIndex, proof) {
      await writeDurably(proofPath(runId, diskIndex), proof);
    },
    imageManifest: (imageId, diskIndex) => readManifest(imageManifestPath(imageId, diskIndex)),
    async stageFromImage(runId, diskIndex, imageId) {
      const manifest = await readUsableManifest(imageManifestPath(imageId, diskIndex));
      if (manifest === undefined) return undefined;
      await mkdir(stagingDir(runId), { recursive: true });
      if (!(await copyDataChunks(imagePath(imageId, diskIndex), stagedPath(runId, diskIndex), manifest))) return undefined;
      await writeDurably(checkpointPath(runId, diskIndex), manifest.encode());
      return manifest;
    },
    async prepareBase(jobId, imageId, diskIndexes) {
      await rm(baseDir(jobId), { recursive: true, force: true });
      await mkdir(baseDir(jobId), { recursive: true });
      for (const diskIndex of diskIndexes) {
        const manifest = await readUsableManifest(imageManifestPath(imageId, diskIndex));
        if (manifest === undefined) continue;
        if (await copyDataChunks(imagePath(imageId, diskIndex), basePath(jobId, diskIndex), manifest)) await writeDurably(baseManifestPath(jobId, imageId, diskIndex), manifest.encode());
      }
    },
    async takeBase(jobId, imageId, runId, diskIndex) {
      const manifestPath = baseManifestPath(jobId, imageId, diskIndex);
      const manifest = await readUsableManifest(manifestPath);
      if (manifest === undefined) return undefined;
      await mkdir(stagingDir(runId), { recursive: true });
      const moved = await rename(basePath(jobId, diskIndex), stagedPath(runId, diskIndex)).then(() => true, () => false);
      if (!moved) return undefined;
      await writeDurably(checkpointPath(runId, diskIndex), manifest.encode());
      await rm(manifestPath, { force: true });
      return manifest;
    },
    async discardBase(jobId) {
      await rm(baseDir(jobId), { recursive: true, force: true });
    },
    async sealDisk(runId, diskIndex, sizeBytes) {
      const handle = await openStaged(runId, diskIndex);
      try {
        await handle.truncate(sizeBytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      const proof = await readFile(proofPath(runId, diskIndex), 'utf8').catch(() => undefined);
      if (proof !== undefined) return proof;
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(stagedPath(runId, diskIndex))) hash.update(chunk as Buffer);
      return hash.digest('hex');
    },
    async commit(runId, imageId, diskIndexes) {
      for (const diskIndex of diskIndexes) {
        const from = stagedPath(runId, diskIndex);
        const moved = await stat(from).then(() => false, () => true);
        if (moved) continue;
        // The manifest first: an image file with no manifest would only cost the next run a full transfer.
        const manifest = await readFile(checkpointPath(runId, diskIndex)).catch(() => undefined);
        if (manifest !== undefined) await writeFile(imageManifestPath(imageId, diskIndex), manifest, { mode: 0o600 });
        await rename(from, imagePath(imageId, diskIndex));
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
      for (let diskIndex = 0; diskIndex <= 16; diskIndex += 1) {
        await rm(imagePath(imageId, diskIndex), { force: true });
        await rm(imageManifestPath(imageId, diskIndex), { force: true });
      }
    },
  };
}
