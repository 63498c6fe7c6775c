import { agentSettings } from './agent-settings.ts';
import { beginRun, endRun } from './replication-runs.ts';
import { nextState, requireJob, transition } from './replication-job-rows.ts';
import type { ServiceContext } from './service-context.ts';
import { requireSource, requireSourceState } from './source-server-state.ts';

/** Its agent must be reachable for a run: the source may not be Unavailable or Deleting. */
const runnableSourceStates = ['Available', 'InUse'] as const;

/** StartReplicationJob: from Ready, Stopped or InError a new Manual run begins. */
export async function startReplicationJob(ctx: ServiceContext, jobId: string): Promise<void> {
  const now = ctx.clock.nowMs();
  const settings = agentSettings();
  await ctx.database.db.transaction().execute(async (trx) => {
    const row = await requireJob(trx, ctx.accountId, jobId);
    nextState(row, 'start');
    const source = await requireSource(trx, ctx.accountId, row.source_id, now, settings);
    requireSourceState(row.source_id, source.state, runnableSourceStates);
    await beginRun(trx, { jobs: ctx.jobs, settings }, row, 'start', 'Manual', now);
  });
}

/** StopReplicationJob: a run that is preparing or syncing stops; its agent learns it on its next call. */
export async function stopReplicationJob(ctx: ServiceContext, jobId: string): Promise<void> {
  const now = ctx.clock.nowMs();
  await ctx.database.db.transaction().execute(async (trx) => {
    const row = await requireJob(trx, ctx.accountId, jobId);
    await endRun(trx, row, 'stop', now, { outcome: 'stopped' });
  });
}

/**
 * CutOverReplicationJob: an incremental job in Waiting ends. With SyncData a last Manual run
 * brings the image up to date first; without, the job finishes at once on its newest image.
 */
export async function cutOverReplicationJob(ctx: ServiceContext, jobId: string, syncData: boolean): Promise<void> {
  const now = ctx.clock.nowMs();
  const settings = agentSettings();
  await ctx.database.db.transaction().execute(async (trx) => {
    const row = await requireJob(trx, ctx.accountId, jobId);
    if (!syncData) {
      await transition(trx, row, 'cutOverNow', now, { cut_over: 1, next_run_at: null, end_time: now });
      return;
    }
    nextState(row, 'cutOver');
    const source = await requireSource(trx, ctx.accountId, row.source_id, now, settings);
    requireSourceState(row.source_id, source.state, runnableSourceStates);
    const running = await beginRun(trx, { jobs: ctx.jobs, settings }, row, 'cutOver', 'Manual', now);
    await trx.updateTable('replication_jobs').set({ cut_over: 1 }).where('id', '=', running.id).execute();
  });
}
