/**
 * The engine jobs that execute system events. `ens-event` acts on one event, decided by its row, so
 * a job taken over after a crash simply looks again:
 *
 * - Inquiring at its deadline: the system executes it (`expire`); Scheduled at its planned time: `execute`.
 * - Executing, migrate or redeploy: the instance left its host meanwhile ⇒ Avoided; else the
 *   durable instance move (instance-move.ts) starts in the same fenced transaction that records it
 *   on the event and completes this job. The move ends the event (`endEventOfMove`) in the
 *   transaction that ends the move: no job watches it, and the event never lags behind its move.
 *   An answer to run now starts the move itself (events.ts); this job runs then only when it could not.
 * - Executing, reboot: stop and start the instance where it is (a stopped instance needs no reboot: Avoided).
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
import { eventMoveOrigin, startEventMove } from './instance-move.ts';
import type { MoveEnd } from './instance-move-run.ts';
import type { HandlerDeps } from './job-handlers.ts';
import type { ServiceContext } from './service-context.ts';

export interface EventRunDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly jobs: JobStore;
  readonly dataDir: string;
  readonly driver: ComputeDriver;
}

/** The system's own choice when nobody answered: keep every data disk it can. */
const systemDataPolicy: DataPolicy = 'try_transfer';

/** The handler every node runs for `ens-event` jobs. */
export function eventJobHandler(deps: EventRunDeps): JobHandler {
  return (ctx) => new EventRun(deps, ctx).run();
}

/** The event job kinds by name, for job-handlers.ts. */
export function eventHandlers(deps: HandlerDeps): Map<string, JobHandler> {
  return new Map([[eventJobKind, eventJobHandler(deps)]]);
}

/** The table's next status; a missing row is a bug of the caller, never of the input. */
function nextStatus(from: string, transition: EventTransition): EventStatus {
  const to = eventMachine.next(from as EventStatus, transition);
  if (to === undefined) throw new PermanentJobError(`an event cannot ${transition} from ${from}`);
  return to;
}

/**
 * MoveDeps.onEnd for event moves: in the transaction that ends the move, its event becomes
 * Executed with the move's outcome, or Failed with its error.
 */
export async function endEventOfMove(trx: Trx, end: MoveEnd): Promise<void> {
  if (end.origin !== eventMoveOrigin) return;
  const eventId = end.plan.attributes['eventId'];
  await trx
    .updateTable('ens_events')
    .set({
      status: nextStatus('Executing', end.state === 'succeeded' ? 'succeed' : 'fail'),
      result: JSON.stringify({ moveId: end.moveId, fromHostId: end.fromHostId, ...end.outcome }),
      error: end.state === 'failed' ? (end.errorMessage ?? `instance move ${end.moveId} failed`) : null,
      updated_at: end.nowMs,
      finished_at: end.nowMs,
    })
    // A move started before moves named their event is found by its id alone (no index: rare).
    .$if(typeof eventId === 'string', (q) => q.where('id', '=', String(eventId)))
    .where('move_id', '=', end.moveId)
    .where('status', '=', 'Executing')
    .execute();
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
    // The event with its instance's host now (null: the instance is gone), in one read.
    const loaded = await this.#deps.database.db
      .selectFrom('ens_events as e')
      .leftJoin('instances as i', 'i.id', 'e.instance_id')
      .selectAll('e')
      .select('i.host_id as instance_host_id')
      .where('e.id', '=', this.#payload.eventId)
      .executeTakeFirst();
    // A job the event no longer names was replaced by an answer (or the event ended): nothing to do.
    if (loaded === undefined || loaded.job_id !== this.#ctx.job.id) return { skipped: 'stale' };
    const { instance_host_id: instanceHostId, ...row } = loaded;
    try {
      return await this.#step(row, instanceHostId);
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

  async #step(row: EnsEventTable, instanceHostId: string | null): Promise<unknown> {
    const status = row.status as EventStatus;
    if (!openEventStatuses.includes(status) || row.move_id !== null) return { skipped: status };
    const action = eventTypeInfo[row.event_type as keyof typeof eventTypeInfo]?.action;
    if (instanceHostId !== row.host_id) {
      const where = instanceHostId === null ? 'no longer exists' : `is on host ${instanceHostId} now`;
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
   * recorded on it, and this job completes. From then on the move ends the event when it ends.
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
        await startEventMove(ctx, { instanceId: row.instance_id, dataPolicy, moveId, eventId: row.id }, trx);
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
