import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type { ReplicateCommand } from '../core/agent-protocol.ts';
import { errorCatalogue } from '../core/errors.ts';
import { bucketForMbps } from '../dataplane/rate-limit.ts';
import type { AgentSession } from './agent-link.ts';
import { fileTreeTar, fileTreeTotals, pseudoMountPoints } from './file-tree.ts';

/** Bytes of tar stream per request: below the native API's 1 MiB body limit once base64-encoded. */
export const treePartBytes = 512 * 1024;
/** Pieces sent before the first answer is awaited. */
const treePartsInFlight = 4;

/** The error code of a run whose file tree could not be read. */
export const treeUnreadableCode = errorCatalogue.SourceServerFileTreeUnreadable.alibabaCode;

export interface TreeSource {
  /** The source's root filesystem (--root). */
  readonly root: string;
  /** The agent's state dir: kept out of the image, since it holds the agent's key. */
  readonly stateDir: string;
}

/**
 * Carry out a fileTree command (TargetType ContainerImage): stream the tar of the tree under the
 * source's root to the server in pieces, then report the stream's size and SHA-256 as disk 0.
 * The server writes each piece at its offset, so a restarted agent simply sends the tree again.
 */
export async function runTreeCommand(command: ReplicateCommand, source: TreeSource, session: AgentSession, signal: AbortSignal): Promise<'done' | 'failed' | 'cancelled'> {
  if ((await session.progress(command.commandId, { percent: 0 })).cancelled) return 'cancelled';
  const root = resolve(source.root);
  const options = { skipContentsOf: pseudoMountPoints().filter((p) => p !== root && p.startsWith(`${root === '/' ? '' : root}/`)), exclude: [resolve(source.stateDir)], signal };
  const hash = createHash('sha256');
  let sizeBytes = 0;
  try {
    const totals = await fileTreeTotals(root, options);
    const expectBytes = Math.max(1, totals.contentBytes + totals.entries * 512);
    const bucket = bucketForMbps(command.bandwidthLimitMbps);
    // Several pieces in flight hide the round trips; the server writes each at its own offset.
    const inFlight = new Set<Promise<void>>();
    let cancelled = false;
    let failure: Error | undefined;
    const settle = async (): Promise<void> => {
      await Promise.race(inFlight);
      if (failure !== undefined) throw failure;
    };
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      if (pendingBytes === 0) return;
      const piece = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      hash.update(piece);
      const offsetBytes = sizeBytes;
      sizeBytes += piece.length;
      await bucket?.take(piece.length, signal);
      while (inFlight.size >= treePartsInFlight) await settle();
      const sent: Promise<void> = session
        .treePart(command.commandId, {
          offsetBytes,
          sha256: createHash('sha256').update(piece).digest('hex'),
          dataBase64: piece.toString('base64'),
          percent: Math.min(99, (sizeBytes * 100) / expectBytes),
        })
        .then(
          (answer) => {
            cancelled ||= answer.cancelled;
          },
          (err: unknown) => {
            failure ??= err instanceof Error ? err : new Error(String(err));
          },
        )
        .finally(() => inFlight.delete(sent));
      inFlight.add(sent);
    };
    for await (const bytes of fileTreeTar(root, options)) {
      for (let at = 0; at < bytes.length; ) {
        const take = Math.min(bytes.length - at, treePartBytes - pendingBytes);
        pending.push(bytes.subarray(at, at + take));
        pendingBytes += take;
        at += take;
        if (pendingBytes === treePartBytes) await flush();
        if (cancelled) break;
      }
      if (cancelled) break;
    }
    if (!cancelled) await flush();
    while (inFlight.size > 0) await settle();
    if (cancelled) return 'cancelled';
  } catch (err) {
    if (signal.aborted) throw err;
    // A refusal or network trouble is the transport's to retry; only reading the tree fails the run.
    if ((err as NodeJS.ErrnoException).syscall === undefined) throw err;
    const message = err instanceof Error ? err.message : String(err);
    await session.result(command.commandId, { ok: false, errorCode: treeUnreadableCode, message: `Cannot read the file tree under ${root}: ${message}`.slice(0, 1000) });
    return 'failed';
  }
  const answer = await session.result(command.commandId, { ok: true, disks: [{ index: 0, sizeBytes, sha256: hash.digest('hex') }] });
  return answer.cancelled ? 'cancelled' : 'done';
}
