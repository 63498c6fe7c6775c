/**
 * The port between Ferry and the machines it manages: power, and disks as backing files in
 * per-host storage pools. Workflows take a ComputeDriver; `sim-driver.ts` is the one that runs
 * everywhere (instances are records, disks are real sparse files). Every operation that can
 * take long takes an AbortSignal.
 */
import { AppError } from '../core/errors.ts';

/** Where one disk's backing file lives. */
export interface DiskLocation {
  readonly diskId: string;
  readonly hostId: string;
  /** Absolute path of the backing file. */
  readonly path: string;
}

export interface CreateDiskInput {
  readonly diskId: string;
  readonly hostId: string;
  /** Apparent size of the sparse file. */
  readonly sizeBytes: number;
  /** Bytes of pseudo-random data seeded from diskId, spread over the disk; the rest are holes. */
  readonly fillBytes: number;
}

export interface CreateDiskResult {
  readonly path: string;
  /** False when the backing file already existed: it is never rewritten. */
  readonly created: boolean;
}

export interface CopyProgress {
  readonly diskId: string;
  /** Bytes of the disk (holes included) behind the copy's position. */
  readonly doneBytes: number;
  /** The disk's apparent size. */
  readonly totalBytes: number;
  /** Bytes of data actually written to the target. */
  readonly copiedBytes: number;
}

export interface CopyDiskInput {
  readonly source: DiskLocation;
  readonly targetHostId: string;
  readonly onProgress?: (progress: CopyProgress) => void;
}

export interface CopyDiskResult {
  readonly target: DiskLocation;
  readonly sizeBytes: number;
  /** Data bytes written by this call (a resumed copy does not write the checkpointed chunks again). */
  readonly copiedBytes: number;
  readonly chunksWritten: number;
  /** The chunk this call started from: 0 for a fresh copy, the checkpoint for a resumed one. */
  readonly resumedAtChunk: number;
  /** Content digest of source and target, equal by the time this returns (see sparse-file.ts). */
  readonly digest: string;
}

export interface WriteDiskInput {
  /** The instance disk whose bytes are replaced; its size stays. */
  readonly disk: DiskLocation;
  /** A raw image file, no larger than the disk: its bytes become the disk's first bytes, zeros the rest. */
  readonly sourcePath: string;
  readonly onProgress?: (progress: CopyProgress) => void;
}

export interface WriteDiskResult {
  /** The disk's size, unchanged. */
  readonly sizeBytes: number;
  /** Data bytes written (zero runs stay holes). */
  readonly copiedBytes: number;
  /** Content digest of the disk as written (see sparse-file.ts). */
  readonly digest: string;
}

/** What a driver needs to know to power an instance. */
export interface InstanceRuntime {
  readonly instanceId: string;
  readonly hostId: string;
  readonly diskPaths: readonly string[];
}

export interface ComputeDriver {
  readonly kind: string;
  /** Where `diskId` lives in `hostId`'s storage pool. */
  diskPath(hostId: string, diskId: string): string;
  start(instance: InstanceRuntime, signal: AbortSignal): Promise<void>;
  stop(instance: InstanceRuntime, signal: AbortSignal): Promise<void>;
  /** Create a sparse backing file; an existing one is left exactly as it is. */
  createDisk(input: CreateDiskInput, signal: AbortSignal): Promise<CreateDiskResult>;
  /**
   * Copy a disk into `targetHostId`'s pool, chunk by chunk, every chunk verified after write.
   * Resumes from the copy's checkpoint when an earlier attempt was interrupted. The source is
   * never touched; the target only appears at its final path once complete and verified.
   */
  copyDiskToHost(input: CopyDiskInput, signal: AbortSignal): Promise<CopyDiskResult>;
  /**
   * Replace an existing disk's contents with a raw image (SMC TargetInstance), every chunk verified
   * after write; the disk's file is swapped in whole, so a crash leaves the old or the new bytes.
   */
  writeDisk(input: WriteDiskInput, signal: AbortSignal): Promise<WriteDiskResult>;
  /** Remove a backing file and any unfinished copy of it at that location. */
  deleteDisk(disk: DiskLocation, signal: AbortSignal): Promise<void>;
}

export const driverFailures = ['host-unreachable', 'pool-full', 'interrupted', 'verify-failed', 'disk-missing'] as const;
export type DriverFailure = (typeof driverFailures)[number];

/** A failure of the machines, not of the request; `retryable` says whether trying again may help. */
export class ComputeDriverError extends AppError {
  readonly failure: DriverFailure;
  readonly retryable: boolean;

  constructor(failure: DriverFailure, reason: string, options: { retryable: boolean; cause?: unknown }) {
    super('Conflict', { reason }, options.cause === undefined ? {} : { cause: options.cause });
    this.failure = failure;
    this.retryable = options.retryable;
  }
}

export function isComputeDriverError(err: unknown): err is ComputeDriverError {
  return err instanceof ComputeDriverError;
}
