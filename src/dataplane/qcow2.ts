/**
 * qcow2 images through qemu-img child processes: convert a raw image, check a qcow2 image,
 * compare two images by guest-visible content. qemu-img comes from the qemu-utils package.
 */
import { execFile } from 'node:child_process';
import { access, constants, rename, rm } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { abortReason } from './abortable.ts';
import { DataPlaneError } from './dataplane-error.ts';

export type ImageFormat = 'raw' | 'qcow2';

export interface ImageRef {
  readonly path: string;
  readonly format: ImageFormat;
}

/** What `qemu-img check --output=json` found. */
export interface Qcow2Check {
  /** No corruption, no leak, no check error. */
  readonly ok: boolean;
  readonly corruptions: number;
  readonly leaks: number;
  readonly checkErrors: number;
}

/** What `qemu-img info --output=json` reports. */
export interface ImageInfo {
  readonly format: string;
  /** Guest-visible disk size. */
  readonly virtualSizeBytes: number;
  /** Bytes the file occupies on the host. */
  readonly actualSizeBytes: number;
}

/** Absolute path of qemu-img on PATH; throws QemuImgMissing saying how to install it. */
export async function findQemuImg(): Promise<string> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'qemu-img');
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new DataPlaneError(
    'QemuImgMissing',
    'qemu-img was not found on PATH; install qemu-utils (apt-get install -y qemu-utils, or run scripts/install-test-deps.sh for the test suite).',
  );
}

interface QemuImgRun {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function runQemuImg(args: readonly string[], signal: AbortSignal | undefined): Promise<QemuImgRun> {
  const qemuImg = await findQemuImg();
  return new Promise((resolve, reject) => {
    execFile(qemuImg, args, { signal, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (signal?.aborted === true) {
        reject(abortReason(signal));
        return;
      }
      const exitCode = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      if (exitCode < 0) reject(new DataPlaneError('QemuImgFailed', `qemu-img ${args[0]} could not run: ${err?.message ?? 'unknown error'}`, { cause: err }));
      else resolve({ exitCode, stdout, stderr });
    });
  });
}

function failed(args: readonly string[], run: QemuImgRun): DataPlaneError {
  return new DataPlaneError('QemuImgFailed', `qemu-img ${args[0]} exited with ${run.exitCode}: ${run.stderr.trim() || run.stdout.trim()}`);
}

/**
 * Convert a raw image into a qcow2 image at `qcow2Path` (holes and zero clusters stay
 * unallocated). Writes `<qcow2Path>.part` and renames it, so a half-written file never appears.
 */
export async function convertRawToQcow2(
  rawPath: string,
  qcow2Path: string,
  options: { readonly signal?: AbortSignal; readonly compressed?: boolean } = {},
): Promise<void> {
  const partPath = `${qcow2Path}.part`;
  const args = ['convert', '-f', 'raw', '-O', 'qcow2', ...(options.compressed === true ? ['-c'] : []), rawPath, partPath];
  try {
    const run = await runQemuImg(args, options.signal);
    if (run.exitCode !== 0) throw failed(args, run);
    await rename(partPath, qcow2Path);
  } catch (err) {
    await rm(partPath, { force: true });
    throw err;
  }
}

/** Run `qemu-img check` on a qcow2 image. */
export async function checkQcow2(path: string, options: { readonly signal?: AbortSignal } = {}): Promise<Qcow2Check> {
  const args = ['check', '-f', 'qcow2', '--output=json', path];
  const run = await runQemuImg(args, options.signal);
  // 0: clean, 2: corruptions, 3: leaks; each still prints its JSON report. 1 is a failed check.
  if (![0, 2, 3].includes(run.exitCode)) throw failed(args, run);
  const report = parseReport(args, run);
  const count = (key: string): number => numberField(report, key) ?? 0;
  const corruptions = count('corruptions');
  const leaks = count('leaks');
  const checkErrors = count('check-errors');
  return {
    ok: run.exitCode === 0 && corruptions === 0 && leaks === 0 && checkErrors === 0,
    corruptions,
    leaks,
    checkErrors,
  };
}

/** Run `qemu-img info` on an image of the given format. */
export async function imageInfo(image: ImageRef, options: { readonly signal?: AbortSignal } = {}): Promise<ImageInfo> {
  const args = ['info', '-f', image.format, '--output=json', image.path];
  const run = await runQemuImg(args, options.signal);
  if (run.exitCode !== 0) throw failed(args, run);
  const info = parseReport(args, run);
  return {
    format: String(info['format']),
    virtualSizeBytes: numberField(info, 'virtual-size') ?? 0,
    actualSizeBytes: numberField(info, 'actual-size') ?? 0,
  };
}

function parseReport(args: readonly string[], run: QemuImgRun): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(run.stdout);
    if (typeof value === 'object' && value !== null) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new DataPlaneError('QemuImgFailed', `qemu-img ${args[0]} printed no JSON report: ${run.stdout.slice(0, 200)}`);
}

function numberField(report: Record<string, unknown>, key: string): number | undefined {
  const value = report[key];
  return typeof value === 'number' ? value : undefined;
}

/**
 * True when two images have the same virtual size and guest-visible bytes. (`qemu-img compare`
 * alone calls a larger image equal when its extra part reads as zeros, and `-s` would also
 * compare allocation, which differs between a raw file and its qcow2 copy.)
 */
export async function compareImages(a: ImageRef, b: ImageRef, options: { readonly signal?: AbortSignal } = {}): Promise<boolean> {
  const [infoA, infoB] = await Promise.all([imageInfo(a, options), imageInfo(b, options)]);
  if (infoA.virtualSizeBytes !== infoB.virtualSizeBytes) return false;
  const args = ['compare', '-f', a.format, '-F', b.format, a.path, b.path];
  const run = await runQemuImg(args, options.signal);
  if (run.exitCode === 0) return true;
  if (run.exitCode === 1) return false;
  throw failed(args, run);
}
