import { newId } from '../core/ids.ts';
import type { ReplicateCommand } from '../core/agent-protocol.ts';
import type { JobStore, Trx } from '../engine/job-store.ts';
import type { ReplicationJobTable } from '../store/schema-smc.ts';
import type { AgentSettings } from './agent-settings.ts';
import { parseReplicationParameters } from './replication-job-params.ts';
import { settingsOf, transition } from './replication-job-rows.ts';
import type { ReplicationJobEvent } from './replication-job-states.ts';
import { scheduleSmcJob, smcJobKinds } from './replication-schedules.ts';

/** Bytes per chunk of the data plane (DESIGN.md): large enough that per-chunk costs vanish, small enough to resend. */
export const commandChunkSizeBytes = 4 * 1024 * 1024;

/** A new run's transfer columns: nothing sent yet. */
const emptyTransfer = { bytes_total: 0, bytes_done: 0, bytes_received: 0, chunks_received: 0, rate_bytes_per_sec: 0, progress_at: null, proofs: null, transfer_started_at: null, transfer_ended_at: null };

export type RunType = 'Manual' | 'Schedule';

export interface RunDeps {
  readonly jobs: JobStore;
  readonly settings: AgentSettings;
}

/** The command that tells the agent to send the job's disks: the system disk and each chosen data disk. */
function replicateCommand(row: ReplicationJobTable, runId: string): ReplicateCommand {
  const settings = settingsOf(row);
  const params = parseReplicationParameters(settings.replicationParameters);
  return {
    commandId: newId('cmd'),
    kind: 'replicate',
    jobId: row.id,
    runId,
    disks: [{ index: 0 }, ...settings.dataDisks.map((d) => ({ index: d.index }))],
    chunkSizeBytes: commandChunkSizeBytes,
    bandwidthLimitMbps: params.bandwidthLimitMbps,
    compressLevel: params.compressLevel,
    checksum: params.checksum,
    // A container image is made of the source's files, not its disks: the agent sends its tree.
    ...(settings.targetType === 'ContainerImage' ? { target: 'fileTree' as const, disks: [{ index: 0 }] } : {}),
  };
}

/**
 * Begin a run in `trx`: move the job along `event` into Running (Preparing), record the run,
 * queue the agent's command and the run's watchdog. All or nothing, with the caller's checks.
 */
export async function beginRun(trx: Trx, deps: RunDeps, row: ReplicationJobTable, event: ReplicationJobEvent, type: RunType, nowMs: number): Promise<ReplicationJobTable> {
  const runId = newId('r');
  const last = await trx.selectFrom('replication_job_runs').select((eb) => eb.fn.max<number>('seq').as('seq')).where('job_id', '=', row.id).executeTakeFirst();
  const updated = await transition(trx, row, event, nowMs, {
    progress: 0,
    error_code: '',
    status_info: '',
    current_run_id: runId,
    start_time: row.start_time ?? nowMs,
    end_time: null,
    next_run_at: null,
  });
  await trx
    .insertInto('replication_job_runs')
    .values({ id: runId, job_id: row.id, account_id: row.account_id, type, seq: Number(last?.seq ?? 0) + 1, start_time: nowMs, end_time: null, image_id: '', outcome: 'running', ...emptyTransfer })
    .execute();
  const command = replicateCommand(updated, runId);
  await trx
    .insertInto('agent_commands')
    .values({
      id: command.commandId,
      account_id: row.account_id,
      source_id: row.source_id,
      job_id: row.id,
      run_id: runId,
      kind: command.kind,
      payload: JSON.stringify(command),
      state: 'pending',
      result: null,
      created_at: nowMs,
      updated_at: nowMs,
    })
    .execute();
  await scheduleSmcJob(deps.jobs, trx, smcJobKinds.watchRun, { accountId: row.account_id, jobId: row.id, runId }, nowMs + deps.settings.heartbeatSeconds * 1000);
  return updated;
}

export type RunOutcome = 'succeeded' | 'failed' | 'stopped' | 'expired';

export interface RunEnd {
  readonly outcome: RunOutcome;
  readonly errorCode?: string;
  readonly statusInfo?: string;
  readonly changes?: Partial<ReplicationJobTable>;
}

/**
 * End the job's current run in `trx` along `event` (stop, fail, expire): the run gets its end and
 * outcome, the agent's open command is cancelled (its next call learns it), the job forgets the run.
 * Staged bytes are dropped later by the run's watchdog, outside any transaction.
 */
export async function endRun(trx: Trx, row: ReplicationJobTable, event: ReplicationJobEvent, nowMs: number, end: RunEnd): Promise<ReplicationJobTable> {
  const updated = await transition(trx, row, event, nowMs, {
    current_run_id: null,
    ...(end.errorCode === undefined ? {} : { error_code: end.errorCode }),
    ...(end.statusInfo === undefined ? {} : { status_info: end.statusInfo }),
    ...end.changes,
  });
  if (row.current_run_id !== null) {
    await trx.updateTable('replication_job_runs').set({ end_time: nowMs, outcome: end.outcome }).where('id', '=', row.current_run_id).where('end_time', 'is', null).execute();
    await cancelOpenCommands(trx, row.current_run_id, nowMs);
  }
  return updated;
}

/** Cancel the run's commands the agent has not finished. */
export async function cancelOpenCommands(trx: Trx, runId: string, nowMs: number): Promise<void> {
  await trx.updateTable('agent_commands').set({ state: 'cancelled', updated_at: nowMs }).where('run_id', '=', runId).where('state', 'in', ['pending', 'delivered']).execute();
}
