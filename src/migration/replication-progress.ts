import type { Db } from '../store/database.ts';
import type { ReplicationJobRunTable } from '../store/schema-smc.ts';
import { requireJob } from './replication-job-rows.ts';
import type { ServiceContext } from './service-context.ts';

/** How far a run's transfer got, as the server counted it. */
export interface TransferProgress {
  readonly jobId: string;
  readonly runId: string;
  /** running | succeeded | failed | stopped | expired. */
  readonly outcome: string;
  readonly bytesTotal: number;
  readonly bytesDone: number;
  /** Link bytes the server received, resent chunks included. */
  readonly bytesReceived: number;
  readonly chunksReceived: number;
  readonly rateBytesPerSec: number;
  /** Server time (ms) of the last progress record; counters are exact as of then. */
  readonly progressAtMs: number | null;
  /** Seconds left at the current rate; null while nothing is known. */
  readonly etaSeconds: number | null;
  /** Whole-image proof per disk index, once that disk's transfer finished. */
  readonly proofs: Record<string, string>;
  /** From the first disk stream's start to the last disk's proof, in ms (null until it ended). */
  readonly transferMs: number | null;
}

function transferOf(run: ReplicationJobRunTable): TransferProgress {
  const bytesTotal = Number(run.bytes_total);
  const bytesDone = Number(run.bytes_done);
  const rate = Number(run.rate_bytes_per_sec);
  return {
    jobId: run.job_id,
    runId: run.id,
    outcome: run.outcome,
    bytesTotal,
    bytesDone,
    bytesReceived: Number(run.bytes_received),
    chunksReceived: Number(run.chunks_received),
    rateBytesPerSec: rate,
    progressAtMs: run.progress_at === null ? null : Number(run.progress_at),
    etaSeconds: run.outcome !== 'running' ? 0 : rate > 0 && bytesTotal > 0 ? Math.max(0, (bytesTotal - bytesDone) / rate) : null,
    proofs: JSON.parse(run.proofs ?? '{}') as Record<string, string>,
    transferMs: run.transfer_started_at === null || run.transfer_ended_at === null ? null : Number(run.transfer_ended_at) - Number(run.transfer_started_at),
  };
}

/** Transfers of every run under way (for /metrics). */
export async function runningTransfers(db: Db): Promise<TransferProgress[]> {
  const runs = await db.selectFrom('replication_job_runs').selectAll().where('outcome', '=', 'running').execute();
  return runs.map(transferOf);
}

export interface ReplicationProgress {
  readonly jobId: string;
  /** The job's state, e.g. `Running/Syncing`, `Waiting`, `Finished`, `InError`. */
  readonly state: string;
  /** SMC Progress, 0-100. */
  readonly progress: number;
  readonly imageId: string;
  readonly errorCode: string;
  /** The job's runs, oldest first. */
  readonly runs: TransferProgress[];
}

/** A replication job of the caller's account with the transfer of each run (`ferry jobs watch`). */
export async function replicationProgress(ctx: ServiceContext, jobId: string): Promise<ReplicationProgress> {
  const job = await requireJob(ctx.database.db, ctx.accountId, jobId);
  const runs = await ctx.database.db.selectFrom('replication_job_runs').selectAll().where('job_id', '=', job.id).orderBy('seq').execute();
  return { jobId: job.id, state: job.state, progress: Number(job.progress), imageId: job.image_id, errorCode: job.error_code, runs: runs.map(transferOf) };
}
