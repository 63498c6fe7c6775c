import type { ResultRequest } from '../core/agent-protocol.ts';
import type { Clock } from '../core/clock.ts';
import type { JobStore, Trx } from '../engine/job-store.ts';
import type { JobContext, JobHandler } from '../engine/worker.ts';
import type { Database } from '../store/database.ts';
import type { ReplicationJobTable } from '../store/schema-smc.ts';
import { type AgentSettings, offlineAfterMs } from './agent-settings.ts';
import type { ImageStore } from './image-store.ts';
import { offlineErrorCode } from './source-server-state.ts';
import { beginRun, endRun } from './replication-runs.ts';
import { jobState, transition } from './replication-job-rows.ts';
import { replicationJobMachine } from './replication-job-states.ts';
import { type SmcJobPayload, scheduleSmcJob, smcJobKinds } from './replication-schedules.ts';

const hourMs = 3_600_000;
/** SMC keeps an expired job this long before deleting it. */
export const expiredRetentionMs = 7 * 24 * hourMs;

export interface ReplicationHandlerDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly jobs: JobStore;
  readonly images: ImageStore;
  readonly settings: AgentSettings;
}

function payloadOf(ctx: JobContext): SmcJobPayload {
  return ctx.job.payload as SmcJobPayload;
}

/**
 * The job row the handler decides on. On PostgreSQL it is locked until the handler's transaction
 * ends: two handlers due at once (an expiry and the agent watchdog after a clock jump, say) then
 * decide one after the other on what the first wrote, instead of the second failing its guarded
 * transition and waiting out a retry. SQLite runs one transaction at a time anyway.
 */
async function loadJob(trx: Trx, deps: ReplicationHandlerDeps, payload: SmcJobPayload): Promise<ReplicationJobTable | undefined> {
  if (payload.jobId === undefined) return undefined;
  return trx
    .selectFrom('replication_jobs')
    .selectAll()
    .where('id', '=', payload.jobId)
    .where('account_id', '=', payload.accountId)
    .$if(deps.database.dialect === 'postgres', (qb) => qb.forUpdate())
    .executeTakeFirst();
}

/** A scheduled start (Ready, never ran, ScheduledStartTime reached) or an incremental job's next run (Waiting, next_run_at reached). */
function runDue(deps: ReplicationHandlerDeps): JobHandler {
  return (ctx) =>
    ctx.fenced(async (trx) => {
      const row = await loadJob(trx, deps, payloadOf(ctx));
      if (row === undefined) return 'gone';
      const now = deps.clock.nowMs();
      const state = jobState(row);
      const scheduledStart = state === 'Ready' && row.start_time === null && row.scheduled_start_time !== null && Number(row.scheduled_start_time) <= now;
      const nextRun = state === 'Waiting' && row.next_run_at !== null && Number(row.next_run_at) <= now;
      if (!scheduledStart && !nextRun) return 'not due';
      const source = await trx.selectFrom('source_servers').select('deleting').where('id', '=', row.source_id).executeTakeFirst();
      if (source === undefined || Number(source.deleting) === 1) return 'source deleting';
      await beginRun(trx, { jobs: deps.jobs, settings: deps.settings }, row, 'runDue', 'Schedule', now);
      return 'started';
    });
}

/** ValidTime reached: the job expires (a run under way ends); 7 days after that it is deleted. */
function expire(deps: ReplicationHandlerDeps): JobHandler {
  return (ctx) =>
    ctx.fenced(async (trx) => {
      const payload = payloadOf(ctx);
      const row = await loadJob(trx, deps, payload);
      if (row === undefined) return 'gone';
      const now = deps.clock.nowMs();
      const state = jobState(row);
      if (state === 'Expired') {
        if (now < Number(row.expired_at ?? 0) + expiredRetentionMs) return 'not due';
        await transition(trx, row, 'delete', now);
        await scheduleSmcJob(deps.jobs, trx, smcJobKinds.deleteJob, payload, now);
        return 'deleting';
      }
      if (Number(row.valid_time) > now || !replicationJobMachine.can(state, 'expire')) return 'not due';
      const changes = { expired_at: now, next_run_at: null };
      if (row.current_run_id !== null) await endRun(trx, row, 'expire', now, { outcome: 'expired', changes });
      else await transition(trx, row, 'expire', now, changes);
      await scheduleSmcJob(deps.jobs, trx, smcJobKinds.expire, payload, now + expiredRetentionMs);
      return 'expired';
    });
}

/**
 * While a run prepares or syncs, check its agent every heartbeat: silent for longer than the
 * missed heartbeats since the later of its last word and the run's start, the run fails with
 * SourceServer.Offline. A run that ended without an image has its staged bytes dropped.
 */
function watchRun(deps: ReplicationHandlerDeps): JobHandler {
  return async (ctx) => {
    const payload = payloadOf(ctx);
    const runId = payload.runId ?? '';
    const verdict = await ctx.fenced(async (trx) => {
      const run = await trx.selectFrom('replication_job_runs').selectAll().where('id', '=', runId).executeTakeFirst();
      const row = await loadJob(trx, deps, payload);
      if (run === undefined || row === undefined) return 'discard';
      if (run.end_time !== null) return run.outcome === 'succeeded' ? 'done' : 'discard';
      const state = jobState(row);
      if (row.current_run_id !== runId || (state !== 'Running/Preparing' && state !== 'Running/Syncing')) return 'done';
      const source = await trx.selectFrom('source_servers').select('last_seen_at').where('id', '=', row.source_id).executeTakeFirst();
      const now = deps.clock.nowMs();
      const heardMs = Math.max(Number(source?.last_seen_at ?? 0), Number(run.start_time));
      if (now - heardMs > offlineAfterMs(deps.settings)) {
        await endRun(trx, row, 'fail', now, { outcome: 'failed', errorCode: offlineErrorCode, statusInfo: `The agent was not heard from for ${Math.round((now - heardMs) / 1000)} s.` });
        return 'discard';
      }
      await scheduleSmcJob(deps.jobs, trx, smcJobKinds.watchRun, payload, now + deps.settings.heartbeatSeconds * 1000);
      return 'watching';
    });
    if (verdict === 'discard') await deps.images.discard(runId);
    return verdict;
  };
}

/** The image a run builds takes its job's ImageName; taken in the region, `<name>_<jobId>`, then `<name>_<jobId>_<run>`. */
async function freeImageName(trx: Trx, row: ReplicationJobTable, seq: number, runId: string): Promise<string> {
  const base = row.image_name === '' ? row.id : row.image_name;
  for (const name of [base, `${base}_${row.id}`, `${base}_${row.id}_${seq}`]) {
    const taken = await trx.selectFrom('smc_images').select('id').where('account_id', '=', row.account_id).where('region_id', '=', row.region_id).where('name', '=', name).where('deleted_at', 'is', null).executeTakeFirst();
    if (taken === undefined) return name;
  }
  return `${base}_${runId}`;
}

/** Image ids follow run ids, so a finalisation repeated after a crash builds the same image, not a second one. */
export function imageIdOf(runId: string): string {
  return `m-${runId.replace(/^r-/, '')}`;
}

/**
 * The agent sent every disk: size and check each staged disk, move them into the image, record it,
 * keep only the newest MaxNumberOfImageToKeep images of an incremental job, and end the run:
 * Finished (run once, or cut over) or Waiting with the next run queued Frequency hours after this one began.
 */
function finalizeRun(deps: ReplicationHandlerDeps): JobHandler {
  return async (ctx) => {
    const payload = payloadOf(ctx);
    const runId = payload.runId ?? '';
    const command = await deps.database.db.selectFrom('agent_commands').selectAll().where('run_id', '=', runId).where('state', '=', 'done').executeTakeFirst();
    const result = command === undefined || command.result === null ? undefined : (JSON.parse(command.result) as ResultRequest);
    const checksum = command === undefined ? false : (JSON.parse(command.payload) as { checksum: boolean }).checksum;
    if (result === undefined || !result.ok) return 'no result';
    const imageId = imageIdOf(runId);
    const mismatched: number[] = [];
    if (!(await deps.images.hasImage(imageId))) {
      for (const disk of result.disks) {
        const sha256 = await deps.images.sealDisk(runId, disk.index, disk.sizeBytes);
        if (checksum && sha256 !== disk.sha256) mismatched.push(disk.index);
      }
      if (mismatched.length === 0) await deps.images.commit(runId, imageId, result.disks.map((d) => d.index));
    }
    // A job that will run again gets its next run's base now, so that run sends changed chunks at once.
    const job = await deps.database.db.selectFrom('replication_jobs').select(['run_once', 'cut_over']).where('id', '=', payload.jobId ?? '').executeTakeFirst();
    const runsAgain = job !== undefined && Number(job.run_once) === 0 && Number(job.cut_over) === 0;
    if (mismatched.length === 0 && runsAgain) await deps.images.prepareBase(payload.jobId ?? '', imageId, result.disks.map((d) => d.index));
    const sizeBytes = result.disks.reduce((sum, d) => sum + d.sizeBytes, 0);
    // Completing the engine job in the same transaction: once the image is recorded, no retry repeats it.
    const outcome = await ctx.fenced(async (trx) => {
      const run = await trx.selectFrom('replication_job_runs').selectAll().where('id', '=', runId).executeTakeFirst();
      if (run?.outcome === 'succeeded') return { verdict: 'done', retired: [] as string[] };
      const row = await loadJob(trx, deps, payload);
      if (run === undefined || row === undefined || row.current_run_id !== runId || jobState(row) !== 'Running/Processing') return { verdict: 'stale', retired: [] };
      const now = deps.clock.nowMs();
      if (mismatched.length > 0) {
        await endRun(trx, row, 'fail', now, { outcome: 'failed', errorCode: 'ReplicationJob.ChecksumMismatch', statusInfo: `Disks ${mismatched.join(', ')} do not match the checksums the agent sent.` });
        return { verdict: 'checksum', retired: [] };
      }
      const name = await freeImageName(trx, row, Number(run.seq), runId);
      await trx
        .insertInto('smc_images')
        .values({ id: imageId, account_id: row.account_id, job_id: row.id, run_id: runId, region_id: row.region_id, name, size_bytes: sizeBytes, created_at: now, deleted_at: null })
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
      await trx.updateTable('replication_job_runs').set({ end_time: now, image_id: imageId, outcome: 'succeeded' }).where('id', '=', runId).execute();
      const incremental = Number(row.run_once) === 0;
      const retired = incremental ? await retireOldImages(trx, row, now) : [];
      const last = !incremental || Number(row.cut_over) === 1;
      const nextRunAt = last ? null : Math.max(now, Number(run.start_time) + Number(row.frequency_hours ?? 1) * hourMs);
      await transition(trx, row, last ? 'finish' : 'await', now, { progress: 100, image_id: imageId, current_run_id: null, end_time: last ? now : null, next_run_at: nextRunAt });
      if (nextRunAt !== null) await scheduleSmcJob(deps.jobs, trx, smcJobKinds.runDue, payload, nextRunAt);
      return { verdict: last ? 'finished' : 'waiting', retired };
    }, { result: null });
    if (outcome.verdict === 'stale' || outcome.verdict === 'checksum') {
      // The run ended (expired, say) while its image was being built: nothing may keep it.
      await deps.images.discard(runId);
      if (mismatched.length === 0) await deps.images.remove(imageId);
    }
    for (const retiredId of outcome.retired) await deps.images.remove(retiredId);
    if (outcome.verdict === 'finished') await deps.images.discardBase(payload.jobId ?? '');
    return outcome.verdict;
  };
}

/** Mark all but the newest MaxNumberOfImageToKeep images of the job deleted; returns their ids for file removal. */
async function retireOldImages(trx: Trx, row: ReplicationJobTable, nowMs: number): Promise<string[]> {
  const keep = Number(row.max_images ?? 1);
  const live = await trx.selectFrom('smc_images').select('id').where('job_id', '=', row.id).where('deleted_at', 'is', null).orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
  const retired = live.slice(keep).map((r) => r.id);
  if (retired.length > 0) await trx.updateTable('smc_images').set({ deleted_at: nowMs }).where('id', 'in', retired).execute();
  return retired;
}

/** Remove a Deleting job with its runs, commands and tags; its images stay (they outlive the job, as ECS images do). */
function deleteJob(deps: ReplicationHandlerDeps): JobHandler {
  return async (ctx) => {
    const runIds = await ctx.fenced(async (trx) => {
      const row = await loadJob(trx, deps, payloadOf(ctx));
      if (row === undefined || jobState(row) !== 'Deleting/Cleaning') return [];
      return removeJobs(trx, [row.id]);
    });
    for (const runId of runIds) await deps.images.discard(runId);
    await deps.images.discardBase(payloadOf(ctx).jobId ?? '');
    return { removedRuns: runIds.length };
  };
}

/** Delete jobs and what hangs off them; returns their run ids so staged bytes can be dropped. */
export async function removeJobs(trx: Trx, jobIds: readonly string[]): Promise<string[]> {
  if (jobIds.length === 0) return [];
  const runs = await trx.selectFrom('replication_job_runs').select('id').where('job_id', 'in', [...jobIds]).execute();
  await trx.deleteFrom('agent_commands').where('job_id', 'in', [...jobIds]).execute();
  await trx.deleteFrom('replication_job_runs').where('job_id', 'in', [...jobIds]).execute();
  await trx.deleteFrom('smc_tags').where('resource_type', '=', 'replicationjob').where('resource_id', 'in', [...jobIds]).execute();
  await trx.deleteFrom('replication_jobs').where('id', 'in', [...jobIds]).execute();
  return runs.map((r) => r.id);
}

/** Remove a Deleting source with every job still left on it (DeleteSourceServer with Force). */
function deleteSource(deps: ReplicationHandlerDeps): JobHandler {
  return async (ctx) => {
    const payload = payloadOf(ctx);
    const { runIds, jobIds } = await ctx.fenced(async (trx) => {
      const source = await trx.selectFrom('source_servers').select(['id', 'deleting']).where('id', '=', payload.sourceId ?? '').where('account_id', '=', payload.accountId).executeTakeFirst();
      if (source === undefined || Number(source.deleting) !== 1) return { runIds: [], jobIds: [] };
      const jobs = await trx.selectFrom('replication_jobs').select('id').where('source_id', '=', source.id).execute();
      const removed = await removeJobs(trx, jobs.map((j) => j.id));
      await trx.deleteFrom('agent_commands').where('source_id', '=', source.id).execute();
      await trx.deleteFrom('smc_tags').where('resource_type', '=', 'sourceserver').where('resource_id', '=', source.id).execute();
      await trx.deleteFrom('source_servers').where('id', '=', source.id).execute();
      return { runIds: removed, jobIds: jobs.map((j) => j.id) };
    });
    for (const runId of runIds) await deps.images.discard(runId);
    for (const jobId of jobIds) await deps.images.discardBase(jobId);
    return { removedRuns: runIds.length };
  };
}

/** The SMC workflows by job kind. */
export function replicationHandlers(deps: ReplicationHandlerDeps): Map<string, JobHandler> {
  return new Map<string, JobHandler>([
    [smcJobKinds.runDue, runDue(deps)],
    [smcJobKinds.expire, expire(deps)],
    [smcJobKinds.watchRun, watchRun(deps)],
    [smcJobKinds.finalizeRun, finalizeRun(deps)],
    [smcJobKinds.deleteJob, deleteJob(deps)],
    [smcJobKinds.deleteSource, deleteSource(deps)],
  ]);
}
