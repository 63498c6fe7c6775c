/**
 * The engine jobs that execute system events. `ens-event` acts on one event, decided by its row, so
 * a job taken over after a crash simply looks again:
 *
 * - Inquiring at its deadline: the system executes it (`expire`); Scheduled at its planned time: `execute`.
 * - Executing, migrate or redeploy: the instance left its host meanwhile ⇒ Avoided; else the
 *   durable instance move (instance-move.ts) starts in the same fenced transaction that records it
 *   on the event and completes this job.
 * - Executing, reboot: stop and start the instance where it is (a stopped instance needs no reboot: Avoided).
 *
 * `ens-event-sweep` ends the events whose moves have finished, many per run, and queues its next run
 * while any move is still under way: one chain of sweeps for the whole cluster instead of a
 * watcher per event, so a backlog of thousands of moves costs one query per sweep, not per move.
 *
 * Every state change is a guarded UPDATE along eventMachine, fenced by the job's lease.
 */
import type { Clock } from '../core/clock.ts';
import { isAppError, toAppError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { JobStore, Trx } from '../engine/job-store.ts';
import { type JobContext, type JobHandler, PermanentJobError } from '../engine/worker.ts';
import type { ComputeDriver } from '../fleet/index.ts';
import type { Database } from '../store/database.ts';
import type { EnsEventTable } from '../store/schema-ens.ts';
import { type DataPolicy, type EventStatus, type EventTransition, eventMachine, eventTypeInfo, openEventStatuses } from './events-model.ts';
import { type EventJobPayload, eventJobKind } from './events.ts';
import { instanceStatus, powerOff, powerOn } from './instance-move-power.ts';
import { startEventMove, toMoveView } from './instance-move.ts';
import type { HandlerDeps } from './job-handlers.ts';
import type { ServiceContext } from './service-context.ts';

export interface EventRunDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly jobs: JobStore;
  readonly dataDir: string;
  readonly driver: ComputeDriver;
  /** How long a sweep waits before looking at the moves again; default 200 ms. */
  readonly sweepMs?: number;
}

/** The system's own choice when nobody answered: keep every data disk it can. */
const systemDataPolicy: DataPolicy = 'try_transfer';

/** The handler every node runs for `ens-event` jobs. */
export function eventJobHandler(deps: EventRunDeps): JobHandler {
  return (ctx) => new EventRun(deps, ctx).run();
}

/** The event job kinds by name, for job-handlers.ts. */
export function eventHandlers(deps: HandlerDeps): Map<string, JobHandler> {
  return new Map([
    [eventJobKind, eventJobHandler(deps)],
    [eventSweepJobKind, eventSweepHandler(deps)],
  ]);
}

export const eventSweepJobKind = 'ens-event-sweep';

/** Retries of a sweep that hits database trouble; the chain must outlive a database restart. */
const sweepMaxAttempts = 100;

/** Events ended per sweep; more wait for the next one. */
const sweepBatch = 500;

/**
 * Make sure a sweep is coming after this transaction commits. A queued sweep will do; on
 * PostgreSQL it is locked until then, so no worker can claim it (SKIP LOCKED) and look before this
 * transaction's event is visible. From an event job (`self` undefined) a running sweep will not do:
 * it may have looked already. A sweep (`self` its job id) also defers to a running one with a
 * smaller id, so chains started at once merge into one.
 */
async function ensureSweep(deps: Pick<EventRunDeps, 'database' | 'clock' | 'jobs' | 'sweepMs'>, trx: Trx, self: string | undefined, delayMs?: number): Promise<void> {
  const queued = await trx
    .selectFrom('jobs')
    .select('id')
    .where('kind', '=', eventSweepJobKind)
    .where('state', '=', 'queued')
    .limit(1)
    .$if(deps.database.dialect === 'postgres', (qb) => qb.forUpdate())
    .executeTakeFirst();
  if (queued !== undefined) return;
  if (self !== undefined) {
    const earlier = await trx.selectFrom('jobs').select('id').where('kind', '=', eventSweepJobKind).where('state', '=', 'running').where('id', '<', self).limit(1).executeTakeFirst();
    if (earlier !== undefined) return;
  }
  await deps.jobs.enqueue(eventSweepJobKind, {}, { runAtMs: deps.clock.nowMs() + (delayMs ?? deps.sweepMs ?? 200), maxAttempts: sweepMaxAttempts }, trx);
}

/** The table's next status; a missing row is a bug of the caller, never of the input. */
function nextStatus(from: string, transition: EventTransition): EventStatus {
  const to = eventMachine.next(from as EventStatus, transition);
  if (to === undefined) throw new PermanentJobError(`an event cannot ${transition} from ${from}`);
  return to;
}

/** End every Executing event whose move has finished: Executed with its outcome, or Failed. */
export function eventSweepHandler(deps: EventRunDeps): JobHandler {
  return async (ctx) => {
    const { db } = deps.database;
    const done = await db
      .selectFrom('ens_events as e')
      .innerJoin('instance_moves as m', 'm.id', 'e.move_id')
      .selectAll('m')
      .select(['e.id as event_id'])
      .where('e.status', '=', 'Executing')
      .where('m.state', 'in', ['succeeded', 'failed'])
      .orderBy('m.finished_at')
      .limit(sweepBatch)
      .execute();
    const now = deps.clock.nowMs();
    return ctx.fenced(
      async (trx) => {
        for (const { event_id, ...moveRow } of done) {
          const move = toMoveView(moveRow);
          if (move.state !== 'succeeded' && move.state !== 'failed') continue;
          await trx
            .updateTable('ens_events')
            .set({
              status: nextStatus('Executing', move.state === 'succeeded' ? 'succeed' : 'fail'),
              result: JSON.stringify({ moveId: move.moveId, fromHostId: move.fromHostId, ...(move.outcome ?? {}) }),
              error: move.state === 'failed' ? (move.errorMessage ?? `instance move ${move.moveId} failed`) : null,
              updated_at: now,
              finished_at: now,
            })
            .where('id', '=', event_id)
            .where('status', '=', 'Executing')
            .where('move_id', '=', move.moveId)
            .execute();
        }
        const moving = await trx.selectFrom('ens_events').select('id').where('status', '=', 'Executing').where('move_id', 'is not', null).limit(1).executeTakeFirst();
        // A full batch leaves more to end at once; else the moves still running get a moment.
        if (moving !== undefined) await ensureSweep(deps, trx, ctx.job.id, done.length === sweepBatch ? 0 : undefined);
        return { ended: done.length };
      },
      { result: { ended: done.length } },
    );
  };
}

function isStopRequest(err: unknown, signal: AbortSignal): boolean {
  return (isAppError(err) && err.code === 'LeaseLost') || signal.aborted;
}

class EventRun {
  readonly #deps: EventRunDeps;
  readonly #ctx: JobContext;
  readonly #payload: EventJobPayload;

  constructor(deps: EventRunDeps, ctx: JobContext) {
    this.#deps = deps;
    this.#ctx = ctx;
    this.#payload = ctx.job.payload as EventJobPayload;
  }

  async run(): Promise<unknown> {
    const row = await this.#load();
    // A job the event no longer names was replaced by an answer (or the event ended): nothing to do.
    if (row === undefined || row.job_id !== this.#ctx.job.id) return { skipped: 'stale' };
    try {
      return await this.#step(row);
    } catch (err) {
      if (isStopRequest(err, this.#ctx.signal)) throw err;
      const retryable = !(err instanceof PermanentJobError) && !(isAppError(err) && err.httpStatus < 500);
      if (retryable && this.#ctx.job.attempts < this.#ctx.job.maxAttempts) throw err;
      // The event must not wait forever: its last attempt fails it.
      const error = toAppError(err, this.#ctx.job.id);
      await this.#end('fail', { error: error.message }, error.message);
      return { failed: error.message };
    }
  }

  async #load(): Promise<EnsEventTable | undefined> {
    return this.#deps.database.db.selectFrom('ens_events').selectAll().where('id', '=', this.#payload.eventId).executeTakeFirst();
  }

  /** How the event starts executing from where it is: `expire` at the deadline, `execute` at the planned time; none when it already runs. */
  #start(row: EnsEventTable): { transition: EventTransition | undefined; change: Partial<EnsEventTable> } {
    const action = eventTypeInfo[row.event_type as keyof typeof eventTypeInfo]?.action;
    if (row.status === 'Executing') return { transition: undefined, change: {} };
    const bySystem = row.status === 'Inquiring';
    const dataPolicy = action === 'migrate' ? (bySystem ? systemDataPolicy : row.data_policy) : action === 'redeploy' ? 'force_transfer' : null;
    return { transition: bySystem ? 'expire' : 'execute', change: { executed_by: bySystem ? 'system' : 'owner', data_policy: dataPolicy } };
  }

  async #step(row: EnsEventTable): Promise<unknown> {
    const status = row.status as EventStatus;
    if (!openEventStatuses.includes(status) || row.move_id !== null) return { skipped: status };
    const action = eventTypeInfo[row.event_type as keyof typeof eventTypeInfo]?.action;
    const instance = await this.#deps.database.db.selectFrom('instances').select('host_id').where('id', '=', row.instance_id).executeTakeFirst();
    if (instance === undefined || instance.host_id !== row.host_id) {
      const where = instance === undefined ? 'no longer exists' : `is on host ${instance.host_id} now`;
      await this.#end('avoid', { reason: `instance ${row.instance_id} ${where}` }, null);
      return { avoided: true };
    }
    if (action === 'reboot') return this.#reboot(await this.#execute(row));
    return this.#startMove(row);
  }

  /** The guarded UPDATE that moves the event on from `row`'s status, only while this job owns it. */
  async #update(trx: Trx, row: EnsEventTable, to: EventStatus, change: Partial<EnsEventTable>): Promise<EnsEventTable> {
    const updated = await trx
      .updateTable('ens_events')
      .set({ ...change, status: to, updated_at: this.#deps.clock.nowMs() })
      .where('id', '=', row.id)
      .where('status', '=', row.status)
      .where('job_id', '=', this.#ctx.job.id)
      .returningAll()
      .executeTakeFirst();
    if (updated === undefined) throw new PermanentJobError(`event ${row.id} changed under its job`);
    return updated;
  }

  /** Inquiring or Scheduled → Executing (a fenced write of its own); an Executing event as it is. */
  async #execute(row: EnsEventTable): Promise<EnsEventTable> {
    const { transition, change } = this.#start(row);
    if (transition === undefined) return row;
    const to = nextStatus(row.status, transition);
    return this.#ctx.fenced((trx) => this.#update(trx, row, to, change));
  }

  /**
   * End the event (Executed, Failed or Avoided) and complete this job in one fenced transaction.
   * An event that had not started yet starts first, per the table: a failure to start is a failed execution.
   */
  async #end(transition: 'succeed' | 'fail' | 'avoid', result: unknown, error: string | null): Promise<void> {
    const row = await this.#load();
    if (row === undefined || row.job_id !== this.#ctx.job.id) return;
    const start = transition === 'avoid' ? { transition: undefined, change: {} } : this.#start(row);
    const from = start.transition === undefined ? row.status : nextStatus(row.status, start.transition);
    const to = nextStatus(from, transition);
    const now = this.#deps.clock.nowMs();
    await this.#ctx.fenced((trx) => this.#update(trx, row, to, { ...start.change, job_id: null, result: JSON.stringify(result), error, finished_at: now }), { result: { status: to } });
  }

  /** The context a move is started in: the event owner's account, this job's id as the request id. */
  #serviceContext(accountId: string): ServiceContext {
    const { database, clock, jobs, dataDir } = this.#deps;
    return { database, clock, jobs, accountId, requestId: this.#ctx.job.id, dataDir };
  }

  /**
   * One fenced transaction: the event starts executing (if it had not), its move is queued and
   * recorded on it, a sweep is made sure of, and this job completes. From then on the sweep, not a
   * job of this event, ends the event when the move ends.
   */
  async #startMove(row: EnsEventTable): Promise<unknown> {
    const { transition, change } = this.#start(row);
    const to = transition === undefined ? 'Executing' : nextStatus(row.status, transition);
    const dataPolicy = (change.data_policy ?? row.data_policy ?? 'abandon') as DataPolicy;
    const ctx = this.#serviceContext(row.account_id);
    const moveId = newId('mv');
    await this.#ctx.fenced(
      async (trx) => {
        await this.#update(trx, row, to, { ...change, move_id: moveId, job_id: null });
        await startEventMove(ctx, { instanceId: row.instance_id, dataPolicy, moveId }, trx);
        await ensureSweep(this.#deps, trx, undefined);
      },
      { result: { moveId } },
    );
    return { moveId };
  }

  /** Stop and start the instance on its host. */
  async #reboot(row: EnsEventTable): Promise<unknown> {
    const { database, driver, clock } = this.#deps;
    // The checkpoint remembers that the instance ran, so after a crash between stop and start it is still started.
    if ((this.#ctx.job.checkpoint as { wasRunning?: boolean } | null)?.wasRunning !== true) {
      const status = await instanceStatus(database.db, row.instance_id);
      if (status !== 'Running') {
        await this.#end('avoid', { reason: `instance ${row.instance_id} is ${status}; there is nothing to reboot` }, null);
        return { avoided: true };
      }
      await this.#ctx.checkpoint({ wasRunning: true });
    }
    await powerOff(database, driver, clock, row.instance_id, this.#ctx.signal);
    await powerOn(database, driver, clock, row.instance_id, this.#ctx.signal);
    await this.#end('succeed', { rebooted: true, hostId: row.host_id }, null);
    return { rebooted: true };
  }
}
