import type { CommandAnswer, ReplicateCommand, ResultRequest } from '../core/agent-protocol.ts';
import { sleep } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import type { Trx } from '../engine/job-store.ts';
import type { AgentCommandTable, SourceServerTable } from '../store/schema-smc.ts';
import { endRun } from './replication-runs.ts';
import { jobState, transition } from './replication-job-rows.ts';
import { scheduleSmcJob, smcJobKinds } from './replication-schedules.ts';
import type { ServiceContext } from './service-context.ts';

const openStates = ['pending', 'delivered'];
const pollStepMs = 250;

async function touch(ctx: ServiceContext, source: SourceServerTable): Promise<void> {
  const now = ctx.clock.nowMs();
  await ctx.database.db.updateTable('source_servers').set({ last_seen_at: now }).where('id', '=', source.id).execute();
}

/**
 * The source's open commands not in `exclude` (those the agent already works on), waiting up to
 * `waitMs` for one to appear. Handing a command out marks it delivered; an agent that restarts
 * without finishing it gets it again, since delivered commands stay open.
 */
export async function pollCommands(ctx: ServiceContext, source: SourceServerTable, waitMs: number, exclude: readonly string[], signal: AbortSignal): Promise<ReplicateCommand[]> {
  await touch(ctx, source);
  const deadline = Date.now() + waitMs;
  for (;;) {
    let query = ctx.database.db.selectFrom('agent_commands').selectAll().where('source_id', '=', source.id).where('state', 'in', openStates);
    if (exclude.length > 0) query = query.where('id', 'not in', [...exclude]);
    const rows = await query.orderBy('created_at').execute();
    if (rows.length > 0) {
      const now = ctx.clock.nowMs();
      await ctx.database.db.updateTable('agent_commands').set({ state: 'delivered', updated_at: now }).where('id', 'in', rows.map((r) => r.id)).where('state', '=', 'pending').execute();
      return rows.map((r) => JSON.parse(r.payload) as ReplicateCommand);
    }
    if (Date.now() + pollStepMs > deadline || signal.aborted) return [];
    await sleep(pollStepMs, signal).catch(() => undefined);
  }
}

async function requireCommand(trx: Trx | ServiceContext['database']['db'], source: SourceServerTable, commandId: string): Promise<AgentCommandTable> {
  const row = await trx.selectFrom('agent_commands').selectAll().where('id', '=', commandId).where('source_id', '=', source.id).executeTakeFirst();
  if (row === undefined) throw new AppError('AgentCommandNotFound', { commandId });
  return row;
}

/**
 * Note the run's progress (0-100 over its disks) while its command is open: the first report moves
 * the job from Preparing to Syncing. Progress stays below 100 until the image is built.
 */
async function noteProgress(ctx: ServiceContext, source: SourceServerTable, commandId: string, percent: number): Promise<CommandAnswer> {
  const now = ctx.clock.nowMs();
  return ctx.database.db.transaction().execute(async (trx) => {
    const command = await requireCommand(trx, source, commandId);
    if (!openStates.includes(command.state)) return { cancelled: true };
    const job = await trx.selectFrom('replication_jobs').selectAll().where('id', '=', command.job_id).where('current_run_id', '=', command.run_id).executeTakeFirst();
    if (job === undefined) return { cancelled: true };
    const progress = Math.min(99, Math.max(0, percent));
    if (jobState(job) === 'Running/Preparing') await transition(trx, job, 'syncStarted', now, { progress });
    else await trx.updateTable('replication_jobs').set({ progress, updated_at: now }).where('id', '=', job.id).where('state', '=', 'Running/Syncing').execute();
    await trx.updateTable('source_servers').set({ last_seen_at: now }).where('id', '=', source.id).execute();
    return { cancelled: false };
  });
}

/** POST …/progress: the agent started (or is still) sending. */
export function reportProgress(ctx: ServiceContext, source: SourceServerTable, commandId: string, percent: number): Promise<CommandAnswer> {
  return noteProgress(ctx, source, commandId, percent);
}

/**
 * POST …/result: the agent finished its command. Success moves the job to Processing and queues
 * the image's finalisation; failure ends the run in InError with the agent's error code.
 */
export async function reportResult(ctx: ServiceContext, source: SourceServerTable, commandId: string, result: ResultRequest): Promise<CommandAnswer> {
  const now = ctx.clock.nowMs();
  return ctx.database.db.transaction().execute(async (trx) => {
    const command = await requireCommand(trx, source, commandId);
    if (!openStates.includes(command.state)) return { cancelled: true };
    await trx
      .updateTable('agent_commands')
      .set({ state: result.ok ? 'done' : 'failed', result: JSON.stringify(result), updated_at: now })
      .where('id', '=', command.id)
      .execute();
    await trx.updateTable('source_servers').set({ last_seen_at: now }).where('id', '=', source.id).execute();
    const job = await trx.selectFrom('replication_jobs').selectAll().where('id', '=', command.job_id).where('current_run_id', '=', command.run_id).executeTakeFirst();
    if (job === undefined) return { cancelled: true };
    if (result.ok) {
      await transition(trx, job, 'dataSent', now, { progress: 99 });
      await scheduleSmcJob(ctx.jobs, trx, smcJobKinds.finalizeRun, { accountId: job.account_id, jobId: job.id, runId: command.run_id }, now);
    } else {
      await endRun(trx, job, 'fail', now, { outcome: 'failed', errorCode: result.errorCode, statusInfo: result.message });
    }
    return { cancelled: false };
  });
}
