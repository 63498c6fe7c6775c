import { createHash } from 'node:crypto';
import type { ReplicateCommand, ResultRequest } from '../core/agent-protocol.ts';
import { readBlocks, sourceSizeBytes } from '../dataplane/block-reader.ts';
import { compressChunk } from '../dataplane/compression.ts';
import { bucketForMbps, type TokenBucket } from '../dataplane/rate-limit.ts';
import type { AgentSession } from './agent-link.ts';

/** Sends one disk of a run: returns its size and SHA-256, or `cancelled` when the server said so. */
export type DiskSender = (args: {
  readonly command: ReplicateCommand;
  readonly diskIndex: number;
  readonly path: string;
  readonly session: AgentSession;
  readonly bucket: TokenBucket | undefined;
  readonly signal: AbortSignal;
  /** The run's percent done once this disk's first `bytes` are covered. */
  readonly percentAt: (bytes: number) => number;
  /** Called with the bytes of this disk covered so far (sent or skipped as zero); false when cancelled. */
  readonly onBytes: (bytes: number) => Promise<boolean>;
}) => Promise<{ sizeBytes: number; sha256: string } | 'cancelled'>;

/**
 * The interim byte transport: each non-zero chunk goes as one signed JSON request (compressed by
 * compress_level, paced by bandwidth_limit); all-zero chunks are only hashed. The data plane's
 * resumable, incremental sender will take this function's place.
 */
export const sendDiskInChunks: DiskSender = async ({ command, diskIndex, path, session, bucket, signal, percentAt, onBytes }) => {
  const sizeBytes = await sourceSizeBytes(path);
  const hash = createHash('sha256');
  const zeros = Buffer.alloc(command.chunkSizeBytes);
  let done = 0;
  for await (const block of readBlocks(path, { chunkSizeBytes: command.chunkSizeBytes, signal })) {
    if (block.data === null) hash.update(zeros.subarray(0, block.lengthBytes));
    else {
      hash.update(block.data);
      const { codec, payload } = await compressChunk(block.data, command.compressLevel);
      await bucket?.take(payload.length, signal);
      const answer = await session.chunk(command.commandId, {
        diskIndex,
        offsetBytes: block.offsetBytes,
        lengthBytes: block.lengthBytes,
        codec,
        sha256: createHash('sha256').update(block.data).digest('hex'),
        dataBase64: payload.toString('base64'),
        percent: percentAt(block.offsetBytes + block.lengthBytes),
      });
      if (answer.cancelled) return 'cancelled';
    }
    done += block.lengthBytes;
    if (!(await onBytes(done))) return 'cancelled';
  }
  return { sizeBytes, sha256: hash.digest('hex') };
};

/**
 * Carry out a `replicate` command: report the start, send each disk, report the result. A disk
 * that cannot be read ends the run with SourceServer.DiskUnreadable; a cancel ends it quietly.
 */
export async function runReplicateCommand(
  command: ReplicateCommand,
  diskPaths: readonly string[],
  session: AgentSession,
  signal: AbortSignal,
  sender: DiskSender = sendDiskInChunks,
): Promise<'done' | 'failed' | 'cancelled'> {
  if ((await session.progress(command.commandId, { percent: 0 })).cancelled) return 'cancelled';
  const disks: { index: number; sizeBytes: number; sha256: string }[] = [];
  try {
    const sizes = await Promise.all(command.disks.map((d) => sourceSizeBytes(diskPath(diskPaths, d.index))));
    const totalBytes = Math.max(1, sizes.reduce((a, b) => a + b, 0));
    const bucket = bucketForMbps(command.bandwidthLimitMbps);
    let before = 0;
    let lastReportMs = 0;
    for (const [i, disk] of command.disks.entries()) {
      const percentAt = (bytes: number): number => Math.min(100, ((before + bytes) * 100) / totalBytes);
      const onBytes = async (bytes: number): Promise<boolean> => {
        // Progress rides on each chunk; disks of zeros report it at most every second.
        if (Date.now() - lastReportMs < 1000) return true;
        lastReportMs = Date.now();
        return !(await session.progress(command.commandId, { percent: percentAt(bytes) })).cancelled;
      };
      const sent = await sender({ command, diskIndex: disk.index, path: diskPath(diskPaths, disk.index), session, bucket, signal, percentAt, onBytes });
      if (sent === 'cancelled') return 'cancelled';
      disks.push({ index: disk.index, ...sent });
      before += sizes[i] ?? 0;
    }
  } catch (err) {
    if (signal.aborted) throw err;
    const message = err instanceof Error ? err.message : String(err);
    await session.result(command.commandId, { ok: false, errorCode: 'SourceServer.DiskUnreadable', message: message.slice(0, 1000) });
    return 'failed';
  }
  const answer = await session.result(command.commandId, { ok: true, disks } satisfies ResultRequest);
  return answer.cancelled ? 'cancelled' : 'done';
}

function diskPath(paths: readonly string[], index: number): string {
  const path = paths[index];
  if (path === undefined) throw new Error(`the agent has no disk ${index}; it was started with ${paths.length} --disk options`);
  return path;
}
