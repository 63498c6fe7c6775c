import type { JobStore, Trx } from '../engine/job-store.ts';

/**
 * The durable engine jobs behind SMC's timed behaviour. Each carries the account in its payload
 * (so the native jobs route shows it to its owner only) and re-reads the rows when it runs, so a
 * job that became stale (the schedule moved, the job was stopped or deleted) ends as a no-op.
 */
export const smcJobKinds = {
  /** A scheduled start (ScheduledStartTime) or an incremental job's next run (next_run_at). */
  runDue: 'smc.run-due',
  /** ValidTime passed: the job expires; 7 days later it is deleted. */
  expire: 'smc.expire',
  /** While a run is under way: fail it when its agent went silent. */
  watchRun: 'smc.watch-run',
  /** The agent sent every disk: build the image, keep the newest images, end the run. */
  finalizeRun: 'smc.finalize-run',
  deleteJob: 'smc.delete-job',
  deleteSource: 'smc.delete-source',
} as const;
export type SmcJobKind = (typeof smcJobKinds)[keyof typeof smcJobKinds];

export interface SmcJobPayload {
  readonly accountId: string;
  readonly jobId?: string;
  readonly runId?: string;
  readonly sourceId?: string;
}

/** Queue `kind` at `runAtMs` (ms since epoch) in the caller's transaction, so it commits with the change that needs it. */
export async function scheduleSmcJob(jobs: JobStore, trx: Trx, kind: SmcJobKind, payload: SmcJobPayload, runAtMs: number): Promise<void> {
  await jobs.enqueue(kind, payload, { runAtMs }, trx);
}
