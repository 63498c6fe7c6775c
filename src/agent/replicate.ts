import type { ReplicateCommand } from '../core/agent-protocol.ts';
import { sleep } from '../core/clock.ts';
import { errorCatalogue } from '../core/errors.ts';
import { sourceSizeBytes } from '../dataplane/block-reader.ts';
import { isDataPlaneError } from '../dataplane/dataplane-error.ts';
import { bucketForMbps, type TokenBucket } from '../dataplane/rate-limit.ts';
import { Sender, type SendStats } from '../dataplane/sender.ts';
import type { AgentSession } from './agent-link.ts';

/** Unacknowledged chunks in flight per disk: 16 x 4 MiB keeps a loopback link busy while the receiver fsyncs. */
export const windowChunks = 16;

export interface DiskSendArgs {
  readonly command: ReplicateCommand;
  readonly diskIndex: number;
  readonly path: string;
  readonly session: AgentSession;
  readonly bucket: TokenBucket | undefined;
  readonly signal: AbortSignal;
  /** Apparent bytes of all the command's disks, and of those before this one. */
  readonly runTotalBytes: number;
  readonly runBytesBefore: number;
  /** Wait before a new stream after a broken one, in ms. */
  readonly retryMs: number;
  readonly log: (message: string) => void;
}

/** A disk sent: its size and whole-image proof (equal on both sides), or `cancelled` when the run ended. */
export type DiskSent = { readonly sizeBytes: number; readonly sha256: string; readonly stats: SendStats } | 'cancelled';

/**
 * Send one disk through the data plane: open a stream (a ticket, then the upgraded connection),
 * run the Sender over it, and when the link breaks (server restarting, network trouble) open a new
 * one and run the same Sender again: the receiver's STATE names the chunks it confirmed, which are
 * neither sent nor, by this Sender, read again. Failures that another try cannot mend are thrown.
 */
export async function sendDisk(args: DiskSendArgs): Promise<DiskSent> {
  const { command, diskIndex, session, signal } = args;
  const sender = new Sender({
    sourcePath: args.path,
    chunkSizeBytes: command.chunkSizeBytes,
    windowChunks,
    compressLevel: command.compressLevel,
    bucket: args.bucket,
  });
  for (;;) {
    try {
      const link = await session.openStream(command.commandId, { diskIndex, runTotalBytes: args.runTotalBytes, runBytesBefore: args.runBytesBefore }, signal);
      const stats = await sender.run(link, signal);
      return { sizeBytes: stats.diskSizeBytes, sha256: stats.proof, stats };
    } catch (err) {
      if (signal.aborted) throw err;
      if (isDataPlaneError(err, 'Cancelled')) return 'cancelled';
      if (isDataPlaneError(err) && !err.retryable) throw err;
      // The server may have ended the run meanwhile (its ticket call then fails): ask before trying
      // again; a server that cannot answer (restarting) is asked again on the next turn.
      const answer = await session.progress(command.commandId, { percent: 0 }).catch(() => undefined);
      if (answer?.cancelled === true) return 'cancelled';
      args.log(`disk ${diskIndex}: stream broke (${err instanceof Error ? err.message : String(err)}); resuming`);
      await sleep(args.retryMs, signal);
    }
  }
}

/** The run error code for a failure of the data plane, as the job's ErrorCode shows it. */
function errorCodeOf(err: unknown): string {
  if (isDataPlaneError(err, 'SourceUnreadable')) return 'SourceServer.DiskUnreadable';
  if (isDataPlaneError(err, 'ProofMismatch') || isDataPlaneError(err, 'ChunkDigestMismatch')) return errorCatalogue.ReplicationChecksumMismatch.alibabaCode;
  if (isDataPlaneError(err)) return errorCatalogue.ReplicationTransferFailed.alibabaCode;
  return 'SourceServer.DiskUnreadable';
}

/**
 * Carry out a `replicate` command: report the start, send each disk, report the result with each
 * disk's proof. A disk that cannot be read ends the run with SourceServer.DiskUnreadable; a cancel
 * ends it quietly; trouble reaching the server is thrown, for the caller to retry the command.
 */
export async function runReplicateCommand(
  command: ReplicateCommand,
  diskPaths: readonly string[],
  session: AgentSession,
  signal: AbortSignal,
  options: { readonly retryMs?: number; readonly log?: (message: string) => void } = {},
): Promise<'done' | 'failed' | 'cancelled'> {
  if ((await session.progress(command.commandId, { percent: 0 })).cancelled) return 'cancelled';
  const disks: { index: number; sizeBytes: number; sha256: string }[] = [];
  try {
    const sizes = await Promise.all(command.disks.map((d) => sourceSizeBytes(diskPath(diskPaths, d.index))));
    const runTotalBytes = sizes.reduce((a, b) => a + b, 0);
    const bucket = bucketForMbps(command.bandwidthLimitMbps);
    let runBytesBefore = 0;
    for (const [i, disk] of command.disks.entries()) {
      const sent = await sendDisk({
        command,
        diskIndex: disk.index,
        path: diskPath(diskPaths, disk.index),
        session,
        bucket,
        signal,
        runTotalBytes,
        runBytesBefore,
        retryMs: options.retryMs ?? 1000,
        log: options.log ?? (() => undefined),
      });
      if (sent === 'cancelled') return 'cancelled';
      const { stats } = sent;
      options.log?.(
        `disk ${disk.index}: ${stats.dataChunksSent} data and ${stats.zeroChunksSent} zero chunks sent, ${stats.chunksUnchanged} unchanged, ${stats.wireBytesSent} bytes on the wire`,
      );
      disks.push({ index: disk.index, sizeBytes: sent.sizeBytes, sha256: sent.sha256 });
      runBytesBefore += sizes[i] ?? 0;
    }
  } catch (err) {
    if (signal.aborted) throw err;
    if (!isDataPlaneError(err) && !(err instanceof DiskMissing)) throw err;
    const message = err instanceof Error ? err.message : String(err);
    await session.result(command.commandId, { ok: false, errorCode: errorCodeOf(err), message: message.slice(0, 1000) });
    return 'failed';
  }
  const answer = await session.result(command.commandId, { ok: true, disks });
  return answer.cancelled ? 'cancelled' : 'done';
}

/** The command names a disk the agent was not started with. */
class DiskMissing extends Error {}

function diskPath(paths: readonly string[], index: number): string {
  const path = paths[index];
  if (path === undefined) throw new DiskMissing(`the agent has no disk ${index}; it was started with ${paths.length} --disk options`);
  return path;
}
