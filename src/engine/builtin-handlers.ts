import { sleep } from '../core/clock.ts';
import type { JobHandler } from './worker.ts';

export interface ProbePayload {
  /** How long the probe works, in ms, split into `steps` checkpointed steps. */
  readonly workMs?: number;
  readonly steps?: number;
}

/**
 * `probe` jobs exercise the engine end to end: they work in checkpointed steps, then add one
 * to their row in probe_counters in the same transaction that completes them. A count above
 * one would mean a job's effect committed twice. Used by self-tests, crash tests and bench/engine.
 */
export const probeHandler: JobHandler = async (ctx) => {
  const payload = (ctx.job.payload ?? {}) as ProbePayload;
  const steps = Math.max(1, payload.steps ?? 1);
  const stepMs = Math.max(0, Math.floor((payload.workMs ?? 0) / steps));
  const start = typeof ctx.job.checkpoint === 'number' ? ctx.job.checkpoint : 0;
  for (let step = start; step < steps; step += 1) {
    if (stepMs > 0) await sleep(stepMs, ctx.signal);
    await ctx.checkpoint(step + 1);
  }
  const result = { steps, resumedFrom: start };
  await ctx.fenced(async (trx) => {
    const row = await trx.selectFrom('probe_counters').select('completions').where('job_id', '=', ctx.job.id).executeTakeFirst();
    if (row === undefined) await trx.insertInto('probe_counters').values({ job_id: ctx.job.id, completions: 1 }).execute();
    else await trx.updateTable('probe_counters').set({ completions: Number(row.completions) + 1 }).where('job_id', '=', ctx.job.id).execute();
  }, { result });
  return result;
};

/** `noop` jobs do nothing; bench/engine measures the engine's own cost with them. */
export const noopHandler: JobHandler = () => Promise.resolve(null);

export const builtinHandlers: ReadonlyMap<string, JobHandler> = new Map([
  ['probe', probeHandler],
  ['noop', noopHandler],
]);
