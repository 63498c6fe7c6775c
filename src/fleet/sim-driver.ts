/**
 * The simulated compute driver: instances are records in memory, disks are real sparse files in
 * per-host storage pools under `<dataDir>/pools/<hostId>/`. Copies between pools go chunk by
 * chunk, keep holes, verify every chunk after writing it and checkpoint, so an interrupted copy
 * resumes. Faults (a failed host, a full pool, a copy cut off at chunk N) are injected through
 * a `SimFaults` object the tests hold.
 */
import type { Stats } from 'node:fs';
import { type FileHandle, mkdir, open, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Clock, systemClock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import {
  type ComputeDriver,
  ComputeDriverError,
  type CopyDiskInput,
  type CopyDiskResult,
  type CreateDiskInput,
  type CreateDiskResult,
  type DiskLocation,
  type InstanceRuntime,
  type WriteDiskInput,
  type WriteDiskResult,
} from './compute-driver.ts';
import { type ChunkHash, chunksWithData, contentDigest, dataExtents, isAllZero, manifestDigest, mib, readChunk, sha256Hex, writeSeededFill } from './sparse-file.ts';

export interface SimFaults {
  /** Hosts whose hypervisor and storage pool cannot be reached: every operation on them fails. */
  readonly failedHosts: Set<string>;
  /** Hosts whose storage pool is full: writing data there fails like ENOSPC. */
  readonly fullPools: Set<string>;
  /** The next copy stops dead after writing this many chunks, as if Ferry crashed; then cleared. */
  interruptCopyAfterChunks: number | undefined;
}

export function createSimFaults(): SimFaults {
  return { failedHosts: new Set(), fullPools: new Set(), interruptCopyAfterChunks: undefined };
}

export interface SimDriverOptions {
  readonly dataDir: string;
  readonly faults?: SimFaults;
  /** Copy and verify unit; default 4 MiB. */
  readonly chunkBytes?: number;
  /** Written chunks between durable checkpoints of a copy; default 8. */
  readonly checkpointEveryChunks?: number;
  readonly clock?: Clock;
}

export interface SimInstanceRecord {
  readonly instanceId: string;
  readonly hostId: string;
  readonly power: 'running' | 'stopped';
  readonly changedAtMs: number;
}

interface CopyCheckpoint {
  readonly sourcePath: string;
  readonly sourceMtimeMs: number;
  readonly sizeBytes: number;
  readonly chunkBytes: number;
  /** Every data chunk below this index is written, verified and synced. */
  readonly nextChunk: number;
  /** The non-zero chunks below nextChunk: the copy's manifest so far. */
  readonly manifest: readonly ChunkHash[];
}

/** Within a chunk, runs of all-zero segments of this size are left as holes in the target. */
const segmentBytes = 64 * 1024;

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** Delete a file if it is there: one unlink, where rm(force) looks first and then unlinks. */
async function removeFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

export class SimComputeDriver implements ComputeDriver {
  readonly kind = 'sim';
  readonly dataDir: string;
  readonly faults: SimFaults;
  readonly #chunkBytes: number;
  readonly #checkpointEvery: number;
  readonly #clock: Clock;
  readonly #instances = new Map<string, SimInstanceRecord>();

  constructor(options: SimDriverOptions) {
    this.dataDir = options.dataDir;
    this.faults = options.faults ?? createSimFaults();
    this.#chunkBytes = options.chunkBytes ?? 4 * mib;
    this.#checkpointEvery = options.checkpointEveryChunks ?? 8;
    this.#clock = options.clock ?? systemClock;
  }

  poolDir(hostId: string): string {
    return join(this.dataDir, 'pools', hostId);
  }

  diskPath(hostId: string, diskId: string): string {
    return join(this.poolDir(hostId), `${diskId}.img`);
  }

  /** The power record of an instance this driver has started or stopped. */
  instance(instanceId: string): SimInstanceRecord | undefined {
    return this.#instances.get(instanceId);
  }

  async start(instance: InstanceRuntime, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    this.#reachable(instance.hostId, `start instance ${instance.instanceId}`);
    for (const path of instance.diskPaths) {
      if (!(await exists(path))) {
        throw new ComputeDriverError('disk-missing', `Instance ${instance.instanceId} cannot start: its disk ${path} is missing on ${instance.hostId}.`, { retryable: false });
      }
    }
    this.#record(instance, 'running');
  }

  stop(instance: InstanceRuntime, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    this.#reachable(instance.hostId, `stop instance ${instance.instanceId}`);
    this.#record(instance, 'stopped');
    return Promise.resolve();
  }

  async createDisk(input: CreateDiskInput, signal: AbortSignal): Promise<CreateDiskResult> {
    const path = this.diskPath(input.hostId, input.diskId);
    this.#reachable(input.hostId, `create disk ${input.diskId}`);
    if (await exists(path)) return { path, created: false };
    this.#poolHasRoom(input.hostId, `create disk ${input.diskId}`);
    await mkdir(this.poolDir(input.hostId), { recursive: true });
    // Written aside and renamed, so a file at `path` is always complete and never rewritten.
    const creating = `${path}.creating`;
    const file = await open(creating, 'w');
    try {
      await file.truncate(input.sizeBytes);
      await writeSeededFill(file, input.diskId, input.sizeBytes, input.fillBytes, signal);
      await file.datasync();
    } catch (err) {
      await file.close();
      await rm(creating, { force: true });
      throw err;
    }
    await file.close();
    await rename(creating, path);
    return { path, created: true };
  }

  async deleteDisk(disk: DiskLocation, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    this.#reachable(disk.hostId, `delete disk ${disk.diskId}`);
    for (const suffix of ['', '.partial', '.partial.json', '.creating', '.writing']) await removeFile(`${disk.path}${suffix}`);
  }

  async writeDisk(input: WriteDiskInput, signal: AbortSignal): Promise<WriteDiskResult> {
    const { disk, sourcePath } = input;
    const what = `write ${sourcePath} onto disk ${disk.diskId}`;
    this.#reachable(disk.hostId, what);
    let sizeBytes: number;
    try {
      sizeBytes = (await stat(disk.path)).size;
    } catch (err) {
      if (!isMissing(err)) throw err;
      throw new ComputeDriverError('disk-missing', `Cannot ${what}: its backing file ${disk.path} is missing on ${disk.hostId}.`, { retryable: false, cause: err });
    }
    const sourceBytes = (await stat(sourcePath)).size;
    if (sourceBytes > sizeBytes) {
      throw new AppError('InvalidParameter', { name: 'sourcePath', reason: `the image holds ${sourceBytes} bytes, disk ${disk.diskId} only ${sizeBytes}` });
    }
    // Written aside and renamed over the disk, so the disk is never half old, half new.
    const writingPath = `${disk.path}.writing`;
    const out = await open(writingPath, 'w+');
    const src = await open(sourcePath, 'r');
    const manifest: ChunkHash[] = [];
    let copiedBytes = 0;
    try {
      await out.truncate(sizeBytes);
      const extents = await dataExtents(sourcePath, sourceBytes, signal);
      const readBuf = Buffer.alloc(this.#chunkBytes);
      const verifyBuf = Buffer.alloc(this.#chunkBytes);
      for (const index of chunksWithData(extents, this.#chunkBytes)) {
        signal.throwIfAborted();
        this.#reachable(disk.hostId, what);
        const chunk = await readChunk(src, extents, index, this.#chunkBytes, sourceBytes, readBuf);
        if (isAllZero(chunk)) continue;
        this.#poolHasRoom(disk.hostId, what);
        const offset = index * this.#chunkBytes;
        const written = await writeVerified(out, chunk, offset, verifyBuf, `Cannot ${what}: chunk ${index} read back different from what was written.`);
        copiedBytes += written.bytes;
        manifest.push([index, written.sha256]);
        input.onProgress?.({ diskId: disk.diskId, doneBytes: Math.min(sourceBytes, offset + chunk.length), totalBytes: sourceBytes, copiedBytes });
      }
      await out.datasync();
    } catch (err) {
      await out.close();
      await rm(writingPath, { force: true });
      throw err;
    } finally {
      await src.close();
    }
    await out.close();
    await rename(writingPath, disk.path);
    return { sizeBytes, copiedBytes, digest: manifestDigest(sizeBytes, this.#chunkBytes, manifest) };
  }

  async copyDiskToHost(input: CopyDiskInput, signal: AbortSignal): Promise<CopyDiskResult> {
    const { source, targetHostId } = input;
    const what = `copy disk ${source.diskId} from ${source.hostId} to ${targetHostId}`;
    this.#reachable(source.hostId, what);
    this.#reachable(targetHostId, what);
    const target: DiskLocation = { diskId: source.diskId, hostId: targetHostId, path: this.diskPath(targetHostId, source.diskId) };
    if (target.path === source.path) {
      throw new AppError('InvalidParameter', { name: 'targetHostId', reason: `disk ${source.diskId} already lives in ${targetHostId}'s pool` });
    }
    let sourceInfo: Stats;
    try {
      sourceInfo = await stat(source.path);
    } catch (err) {
      if (!isMissing(err)) throw err;
      throw new ComputeDriverError('disk-missing', `Cannot ${what}: the source file ${source.path} is missing.`, { retryable: false, cause: err });
    }
    const sizeBytes = sourceInfo.size;

    if (await exists(target.path)) {
      // A finished copy whose database switch never happened: keep it when it is the same disk.
      const sourceDigest = await contentDigest(source.path, this.#chunkBytes, signal);
      if ((await contentDigest(target.path, this.#chunkBytes, signal)) === sourceDigest) {
        return { target, sizeBytes, copiedBytes: 0, chunksWritten: 0, resumedAtChunk: Math.ceil(sizeBytes / this.#chunkBytes), digest: sourceDigest };
      }
      await rm(target.path);
    }
    await mkdir(this.poolDir(targetHostId), { recursive: true });

    const partialPath = `${target.path}.partial`;
    const checkpointPath = `${partialPath}.json`;
    const fresh: Omit<CopyCheckpoint, 'nextChunk' | 'manifest'> = {
      sourcePath: source.path,
      sourceMtimeMs: sourceInfo.mtimeMs,
      sizeBytes,
      chunkBytes: this.#chunkBytes,
    };
    const resumed = await this.#resumePoint(checkpointPath, partialPath, fresh);
    const resumeAt = resumed.nextChunk;
    const manifest = [...resumed.manifest];
    const out = await open(partialPath, resumeAt > 0 ? 'r+' : 'w+');
    const src = await open(source.path, 'r');
    let nextChunk = resumeAt;
    let copiedBytes = 0;
    let chunksWritten = 0;
    const saveCheckpoint = async (): Promise<void> => {
      await out.datasync();
      const checkpoint: CopyCheckpoint = { ...fresh, nextChunk, manifest };
      await writeFile(`${checkpointPath}.tmp`, JSON.stringify(checkpoint));
      await rename(`${checkpointPath}.tmp`, checkpointPath);
    };
    try {
      if (resumeAt === 0) await out.truncate(sizeBytes);
      const extents = await dataExtents(source.path, sizeBytes, signal);
      // Made at the first data chunk: an empty disk needs none. Every byte used is read or filled first.
      let readBuf: Buffer | undefined;
      let verifyBuf: Buffer | undefined;
      for (const index of chunksWithData(extents, this.#chunkBytes)) {
        if (index < resumeAt) continue;
        signal.throwIfAborted();
        this.#reachable(source.hostId, what);
        this.#reachable(targetHostId, what);
        readBuf ??= Buffer.allocUnsafe(this.#chunkBytes);
        verifyBuf ??= Buffer.allocUnsafe(this.#chunkBytes);
        const chunk = await readChunk(src, extents, index, this.#chunkBytes, sizeBytes, readBuf);
        const hasData = !isAllZero(chunk);
        if (hasData) {
          this.#poolHasRoom(targetHostId, what);
          const offset = index * this.#chunkBytes;
          const written = await writeVerified(out, chunk, offset, verifyBuf, `Cannot ${what}: chunk ${index} read back different from what was written.`);
          copiedBytes += written.bytes;
          manifest.push([index, written.sha256]);
          chunksWritten += 1;
          if (this.faults.interruptCopyAfterChunks !== undefined && chunksWritten >= this.faults.interruptCopyAfterChunks) {
            this.faults.interruptCopyAfterChunks = undefined;
            throw new ComputeDriverError('interrupted', `Copy of disk ${source.diskId} was interrupted after ${chunksWritten} chunks (simulated crash).`, { retryable: true });
          }
        }
        nextChunk = index + 1;
        if (hasData && chunksWritten % this.#checkpointEvery === 0) await saveCheckpoint();
        input.onProgress?.({ diskId: source.diskId, doneBytes: Math.min(sizeBytes, nextChunk * this.#chunkBytes), totalBytes: sizeBytes, copiedBytes });
      }
      await out.datasync();
    } catch (err) {
      // A graceful stop keeps its place; a crash (the simulated one included) keeps the last checkpoint.
      if (signal.aborted) await saveCheckpoint();
      throw err;
    } finally {
      await src.close();
      await out.close();
    }
    // Every chunk was verified as it was written, so the manifest is the target's as much as the source's.
    await rename(partialPath, target.path);
    await removeFile(checkpointPath);
    input.onProgress?.({ diskId: source.diskId, doneBytes: sizeBytes, totalBytes: sizeBytes, copiedBytes });
    const digest = manifestDigest(sizeBytes, this.#chunkBytes, manifest);
    return { target, sizeBytes, copiedBytes, chunksWritten, resumedAtChunk: resumeAt, digest };
  }

  /** Where to resume: the checkpoint, when it belongs to this very copy; else the start. */
  async #resumePoint(checkpointPath: string, partialPath: string, expect: Omit<CopyCheckpoint, 'nextChunk' | 'manifest'>): Promise<Pick<CopyCheckpoint, 'nextChunk' | 'manifest'>> {
    let saved: CopyCheckpoint;
    try {
      saved = JSON.parse(await readFile(checkpointPath, 'utf8')) as CopyCheckpoint;
      const partial = await stat(partialPath);
      const same =
        saved.sourcePath === expect.sourcePath &&
        saved.sourceMtimeMs === expect.sourceMtimeMs &&
        saved.sizeBytes === expect.sizeBytes &&
        saved.chunkBytes === expect.chunkBytes &&
        partial.size === expect.sizeBytes &&
        Number.isInteger(saved.nextChunk) &&
        Array.isArray(saved.manifest);
      if (same) return saved;
    } catch (err) {
      if (!isMissing(err) && !(err instanceof SyntaxError)) throw err;
    }
    await removeFile(checkpointPath);
    return { nextChunk: 0, manifest: [] };
  }

  #reachable(hostId: string, what: string): void {
    if (this.faults.failedHosts.has(hostId)) {
      throw new ComputeDriverError('host-unreachable', `Cannot ${what}: host ${hostId} does not answer (simulated host failure).`, { retryable: true });
    }
  }

  #poolHasRoom(hostId: string, what: string): void {
    if (this.faults.fullPools.has(hostId)) {
      const cause = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      throw new ComputeDriverError('pool-full', `Cannot ${what}: the storage pool of ${hostId} is full (ENOSPC); free space there or place the disk on another host.`, { retryable: false, cause });
    }
  }

  #record(instance: InstanceRuntime, power: SimInstanceRecord['power']): void {
    this.#instances.set(instance.instanceId, { instanceId: instance.instanceId, hostId: instance.hostId, power, changedAtMs: this.#clock.nowMs() });
  }
}

/** Write a chunk (zero runs as holes) and read it back; a difference is `verify-failed` with `failure` as message. */
async function writeVerified(file: FileHandle, chunk: Buffer, offset: number, verifyBuf: Buffer, failure: string): Promise<{ bytes: number; sha256: string }> {
  const sha256 = sha256Hex(chunk);
  const bytes = await writeNonZeroSegments(file, chunk, offset);
  const readBack = await file.read(verifyBuf, 0, chunk.length, offset);
  if (readBack.bytesRead !== chunk.length || sha256Hex(verifyBuf.subarray(0, chunk.length)) !== sha256) {
    throw new ComputeDriverError('verify-failed', failure, { retryable: true });
  }
  return { bytes, sha256 };
}

/** Write the chunk's non-zero 64 KiB segments at `offset`, leaving zero runs as holes; returns bytes written. */
async function writeNonZeroSegments(file: FileHandle, chunk: Buffer, offset: number): Promise<number> {
  let written = 0;
  let runStart = -1;
  const flush = async (end: number): Promise<void> => {
    if (runStart < 0) return;
    const run = chunk.subarray(runStart, end);
    let done = 0;
    while (done < run.length) done += (await file.write(run, done, run.length - done, offset + runStart + done)).bytesWritten;
    written += run.length;
    runStart = -1;
  };
  for (let at = 0; at < chunk.length; at += segmentBytes) {
    const end = Math.min(at + segmentBytes, chunk.length);
    if (isAllZero(chunk.subarray(at, end))) await flush(at);
    else if (runStart < 0) runStart = at;
  }
  await flush(chunk.length);
  return written;
}
