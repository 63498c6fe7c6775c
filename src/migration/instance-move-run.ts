/**
 * The engine job of an instance move. Every step is re-entrant, so after a crash the engine runs
 * the handler again and it carries on from the job's checkpoint and the fleet's state:
 *
 * 1. one fenced write claims placement on the target and records the claim, the instance's disks
 *    and power state, and marks it Stopping: a claim is never made without its record;
 * 2. stop the instance; one fenced write marks it Stopped and Migrating;
 * 3. recreate abandoned data disks empty on the target (data policy);
 * 4. cold move (fleet/cold-move.ts): copy the disks, verified, resuming from the copies'
 *    checkpoints; one fenced transaction points the instance at the target, commits the claim,
 *    applies the new type, vSwitch and disk categories and marks it Starting;
 * 5. delete the source copies, start the instance again when it ran before (or as asked), and
 *    end the move (Running, and the door's own record through `onEnd`) in the job's completion.
 *
 * Each step writes once, in the transaction that also moves the job's checkpoint on: a move
 * costs a handful of round trips to the database, which is most of its control-plane CPU.
 *
 * A failure a retry cannot fix, or the last attempt's failure, rolls back while the claim is held:
 * target copies deleted, claim released, instance Stopped on its untouched source disks and
 * started again if it ran. Until the commit the instance's disks are its source ones; after it,
 * verified target copies: it never lacks a valid disk, and its capacity is counted once.
 */
import type { Clock } from '../core/clock.ts';
import { AppError, isAppError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Trx } from '../engine/job-store.ts';
import { type JobContext, type JobHandler, PermanentJobError } from '../engine/worker.ts';
import {
  type ComputeDriver,
  type CopyDiskResult,
  type DiskLocation,
  type InstanceStatus,
  type MoveProgress,
  NoValidHostError,
  type CommittedClaim,
  type Placement,
  type PlacementClaim,
  coldMoveInstance,
  isComputeDriverError,
  placementFor,
  rollbackColdMove,
  transitionInstance,
  transitionInstanceThrough,
} from '../fleet/index.ts';
import type { Database } from '../store/database.ts';
import type { InstanceMoveTable } from '../store/schema-moves.ts';
import type { MovePlan } from './instance-move-plan.ts';
import { instanceStatus, powerOn } from './instance-move-power.ts';
import { type MoveJobPayload, type MoveOutcome, type MovePhase, toMoveView } from './instance-move.ts';

/** How a move ended, told to the door that started it in the transaction that ends the move. */
export interface MoveEnd {
  readonly moveId: string;
  readonly origin: string;
  readonly plan: MovePlan;
  readonly state: 'succeeded' | 'failed';
  readonly fromHostId: string;
  readonly outcome: MoveOutcome;
  readonly errorMessage: string | null;
  readonly nowMs: number;
}

export interface MoveDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly driver: ComputeDriver;
  /** Runs in the transaction that ends a move, succeeded or failed: a door's own record (an ENS event) ends with it. */
  readonly onEnd?: (trx: Trx, end: MoveEnd) => Promise<void>;
}

interface SourceDisk extends DiskLocation {
  readonly kind: string;
  readonly sizeBytes: number;
}

/** What the job remembers across attempts. */
interface MoveCheckpoint {
  readonly claimId?: string;
  /** Every disk as it was before the move: the copies to delete once it commits, or to restore on rollback. */
  readonly sourceDisks?: readonly SourceDisk[];
  /** Data disks recreated empty on the target instead of copied. */
  readonly abandoned?: readonly string[];
  readonly copiedBytes?: number;
  readonly resumed?: boolean;
}

/** A held claim lives this long before anything may reclaim its capacity: longer than any copy. */
const claimTtlMs = 24 * 60 * 60_000;
const progressEveryMs = 500;
const gib = 1024 ** 3;

/** Share of the progress bar the copy takes; switching and starting take the rest. */
const copyShareBp = 9000;

/** The move's placement claim as the run needs it. */
interface MoveClaim {
  readonly id: string;
  readonly hostId: string;
  readonly state: string;
  /** Known when this run made the claim; read back claims leave it out. */
  readonly numaNode?: number;
}

/** The handler every node runs for `instance-move` jobs. */
export function instanceMoveHandler(deps: MoveDeps): JobHandler {
  return (ctx) => new MoveRun(deps, ctx).run();
}

function isLeaseLost(err: unknown): boolean {
  return isAppError(err) && err.code === 'LeaseLost';
}

/** The worker aborts with a reason whose `reason` field says why; only a cancel ends the move. */
function isCancel(signal: AbortSignal): boolean {
  return signal.aborted && (signal.reason as { reason?: unknown } | undefined)?.reason === 'cancelled';
}

/** Whether trying again cannot help. */
function isPermanent(err: unknown): boolean {
  if (err instanceof PermanentJobError) return true;
  if (isComputeDriverError(err)) return !err.retryable;
  return isAppError(err) && err.httpStatus < 500;
}

/** Hands a failure the engine would take for permanent (a 4xx AppError) back to it for a retry with backoff. */
class RetryableMoveError extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'RetryableMoveError';
  }
}

function failReason(err: NoValidHostError): string {
  const hosts = err.dryRun.reasons.slice(0, 5).map((r) => `${r.hostId}: ${r.reason}`);
  const more = err.dryRun.reasons.length - hosts.length + err.dryRun.reasonsOmitted;
  return `${err.message}${hosts.length > 0 ? ` Hosts: ${hosts.join('; ')}${more > 0 ? `; and ${more} more` : ''}.` : ''}`;
}

class MoveRun {
  readonly #deps: MoveDeps;
  readonly #ctx: JobContext;
  readonly #payload: MoveJobPayload;
  readonly #moveId: string;
  #checkpoint: MoveCheckpoint;
  #wasRunning: boolean | null = null;
  /** The instance's status as this run last wrote it; undefined: read it from the database. */
  #status: InstanceStatus | undefined;
  #row!: InstanceMoveTable;
  #plan!: MovePlan;
  #lastProgressAtMs = 0;
  #progressWrite: Promise<void> = Promise.resolve();

  constructor(deps: MoveDeps, ctx: JobContext) {
    this.#deps = deps;
    this.#ctx = ctx;
    this.#payload = ctx.job.payload as MoveJobPayload;
    this.#moveId = this.#payload.moveId;
    this.#checkpoint = (ctx.job.checkpoint as MoveCheckpoint | null) ?? {};
  }

  async run(): Promise<MoveOutcome> {
    const loaded = await this.#deps.database.db
      .selectFrom('instance_moves as m')
      .leftJoin('instances as i', 'i.id', 'm.instance_id')
      .selectAll('m')
      .select('i.status as instance_status')
      .where('m.id', '=', this.#moveId)
      .executeTakeFirst();
    if (loaded === undefined) throw new PermanentJobError(`instance move ${this.#moveId} does not exist`);
    const { instance_status: instanceStatusNow, ...row } = loaded;
    const view = toMoveView(row);
    if (view.state === 'succeeded' && view.outcome !== null) return view.outcome;
    if (view.state === 'failed') throw new PermanentJobError(view.errorMessage ?? `instance move ${this.#moveId} failed`);
    this.#row = row;
    this.#plan = view.plan;
    this.#wasRunning = view.wasRunning;
    this.#status = instanceStatusNow === null ? undefined : (instanceStatusNow as InstanceStatus);
    if (this.#payload.rollbackOf !== undefined) return this.#rollBackStalled(this.#payload.rollbackOf);
    try {
      return await this.#move();
    } catch (err) {
      await this.#progressWrite;
      const signal = this.#ctx.signal;
      // Shutdown or a lost lease: the job is handed back and this move resumes where it stopped.
      if (isLeaseLost(err) || (signal.aborted && !isCancel(signal))) throw err;
      if (!isCancel(signal) && !isPermanent(err) && this.#ctx.job.attempts < this.#ctx.job.maxAttempts) throw new RetryableMoveError(err);
      const failed = await this.#fail(err);
      throw new PermanentJobError(failed);
    }
  }

  async #move(): Promise<MoveOutcome> {
    const { database, driver, clock } = this.#deps;
    const signal = this.#ctx.signal;
    const wasRunning = this.#wasRunning ?? (await this.#startable());
    const claim = await this.#claimAndRecord(wasRunning);
    let leftoverPaths: string[];
    /** The disks' paths on the target, in device order, when this run knows them all. */
    let startPaths: string[] | undefined;
    if (claim.state === 'held') {
      const sources = await this.#recordSources();
      await this.#stopForCopy(sources);
      await this.#abandonDataDisks(claim.hostId, sources);
      // The first progress write comes half a second into the copy: a small disk needs none.
      this.#lastProgressAtMs = clock.nowMs();
      // With nothing abandoned, the disks are where the checkpoint says and the instance is Migrating (just written).
      const known =
        claim.numaNode !== undefined && this.#status === 'Migrating' && (this.#checkpoint.abandoned ?? []).length === 0
          ? { claim: { id: claim.id, hostId: claim.hostId, numaNode: claim.numaNode, instanceId: this.#plan.instanceId }, disks: sources }
          : undefined;
      const moved = await coldMoveInstance(database, driver, claim.id, {
        signal,
        clock,
        onProgress: (p) => this.#noteProgress(p, sources),
        transaction: (work, copies) => this.#switchOver(work, copies, this.#plan.startAfter ?? wasRunning),
        // The new type and vSwitch, and Starting when it is to run again, in the UPDATE that moves the instance.
        instanceChanges: { instanceTypeId: this.#plan.instanceType, vSwitchId: this.#plan.vSwitchId, then: (this.#plan.startAfter ?? wasRunning) ? ['start'] : [] },
        ...(known === undefined ? {} : { known }),
      });
      const deleted = new Set(moved.disks.map((d) => d.fromPath).filter((path) => !moved.leftoverPaths.includes(path)));
      leftoverPaths = await this.#deleteSources(deleted);
      if (known !== undefined && moved.disks.length === sources.length) startPaths = moved.disks.map((d) => d.toPath);
    } else {
      // Committed by an earlier attempt that stopped short of the end: finish its cleanup and changes.
      leftoverPaths = await this.#deleteSources(new Set());
      await this.#ctx.fenced(async (trx) => {
        await this.#applyChanges(trx);
        await this.#update(trx, { phase: 'switching', progress_bp: copyShareBp });
      });
    }
    if (this.#plan.startAfter ?? wasRunning) await this.#start(claim.hostId, startPaths);
    const outcome: MoveOutcome = {
      hostId: claim.hostId,
      rolledBack: false,
      copiedBytes: this.#checkpoint.copiedBytes ?? 0,
      resumed: this.#checkpoint.resumed ?? false,
      abandonedDiskIds: this.#checkpoint.abandoned ?? [],
      leftoverPaths,
    };
    const now = clock.nowMs();
    await this.#ctx.fenced(
      async (trx) => {
        if (this.#status === 'Starting') await transitionInstance(trx, this.#plan.instanceId, 'started', now);
        await this.#update(trx, { state: 'succeeded', phase: 'done', progress_bp: 10000, result: JSON.stringify(outcome), finished_at: now });
        await this.#ended(trx, 'succeeded', outcome, null, now);
      },
      { result: outcome },
    );
    return outcome;
  }

  /** The door's own record ends with the move (MoveDeps.onEnd). */
  async #ended(trx: Trx, state: MoveEnd['state'], outcome: MoveOutcome, errorMessage: string | null, nowMs: number): Promise<void> {
    await this.#deps.onEnd?.(trx, { moveId: this.#moveId, origin: this.#row.origin, plan: this.#plan, state, fromHostId: this.#row.from_host_id, outcome, errorMessage, nowMs });
  }

  /** Whether the instance ran when the move began; a move takes a Running or Stopped instance only. */
  async #startable(): Promise<boolean> {
    const status = this.#status ?? (await instanceStatus(this.#deps.database.db, this.#plan.instanceId));
    if (status !== 'Running' && status !== 'Stopped') {
      throw new AppError('InstanceStatusInvalid', { instanceId: this.#plan.instanceId, status, action: 'a move', allowed: 'Running or Stopped' });
    }
    this.#status = status;
    return status === 'Running';
  }

  /**
   * The move's placement claim, recorded: the checkpointed or recorded one, one a crash of an older
   * version left unrecorded, or a new one claimed in the fenced write that records it (`#recordStart`).
   */
  async #claimAndRecord(wasRunning: boolean): Promise<MoveClaim> {
    // Claims are made in the write that records them; only an older version's run could leave one unrecorded.
    const claimId = this.#checkpoint.claimId ?? this.#row.claim_id ?? (this.#ctx.job.attempts > 1 ? await this.#unrecordedClaim() : undefined);
    if (claimId === undefined) return this.#recordStart(undefined, wasRunning);
    const row = await this.#deps.database.db.selectFrom('placement_claims').select(['id', 'host_id', 'state']).where('id', '=', claimId).executeTakeFirstOrThrow();
    const claim: MoveClaim = { id: row.id, hostId: row.host_id, state: row.state };
    if (claim.state === 'released') {
      throw new AppError('Conflict', { reason: `The placement claim ${claim.id} of this move was released before the move committed (it expired); start the move again.` });
    }
    if (this.#wasRunning === null || this.#row.claim_id !== claim.id) await this.#recordStart(claim, wasRunning);
    return claim;
  }

  /**
   * One fenced write: the move runs, on `claim` (or on a claim made in this same transaction), with
   * the instance's power state and disks as they were (checkpointed with the claim id, so a retry
   * still knows them); a running instance becomes Stopping.
   */
  async #recordStart(claim: MoveClaim | undefined, wasRunning: boolean): Promise<MoveClaim> {
    const sourceDisks = this.#checkpoint.sourceDisks ?? (await this.#readSources());
    // A new claim's id is chosen first, so the checkpoint written by the fencing UPDATE can name it.
    const claimId = claim?.id ?? newId('pc');
    const checkpoint: MoveCheckpoint = { ...this.#checkpoint, claimId, sourceDisks };
    const now = this.#deps.clock.nowMs();
    const claimIn = claim === undefined ? await this.#claimer(claimId) : () => Promise.resolve({ held: claim, noteCommitted: () => undefined });
    const { held, noteCommitted, stopped } = await this.#ctx.fenced(
      async (trx) => {
        const { held, noteCommitted } = await claimIn(trx);
        await this.#update(trx, {
          state: 'running',
          started_at: this.#row.started_at ?? now,
          was_running: wasRunning ? 1 : 0,
          claim_id: held.id,
          to_host_id: held.hostId,
          ...(held.state === 'held' ? { phase: 'stopping' as const } : {}),
        });
        const stop = held.state === 'held' && this.#status === 'Running';
        return { held, noteCommitted, stopped: stop && (await transitionInstance(trx, this.#plan.instanceId, 'stop', now)) };
      },
      { checkpoint },
    );
    noteCommitted();
    const stop = held.state === 'held' && this.#status === 'Running';
    this.#checkpoint = checkpoint;
    this.#wasRunning = wasRunning;
    this.#row = { ...this.#row, claim_id: held.id, to_host_id: held.hostId };
    this.#status = stopped ? 'Stopping' : stop ? undefined : this.#status;
    return held;
  }

  /** Stop the instance where it is, then one fenced write: Stopped, then Migrating, the move copying. */
  async #stopForCopy(sources: readonly SourceDisk[]): Promise<void> {
    const { database, driver, clock } = this.#deps;
    const instanceId = this.#plan.instanceId;
    let status = this.#status ?? (await instanceStatus(database.db, instanceId));
    if (status === 'Migrating') return;
    if (status === 'Running') status = (await transitionInstance(database.db, instanceId, 'stop', clock.nowMs())) ? 'Stopping' : await instanceStatus(database.db, instanceId);
    if (status === 'Stopping') {
      await driver.stop({ instanceId, hostId: this.#row.from_host_id, diskPaths: sources.map((d) => d.path) }, this.#ctx.signal);
    } else if (status !== 'Stopped' && status !== 'Migrating') {
      throw new AppError('InstanceStatusInvalid', { instanceId, status, action: 'stopping it for a move', allowed: 'Running or Stopped' });
    }
    const now = clock.nowMs();
    await this.#ctx.fenced(async (trx) => {
      if (!(await transitionInstanceThrough(trx, instanceId, ['stopped', 'migrate'], now)) && (await instanceStatus(trx, instanceId)) !== 'Migrating') {
        throw new AppError('Conflict', { reason: `Instance ${instanceId} changed status while it was stopped for a move; the move is rolled back, start it again.` });
      }
      await this.#update(trx, { phase: 'copying' });
    });
    this.#status = 'Migrating';
  }

  /**
   * The cold move's switch-over, in this job's fenced transaction: the new type, vSwitch and disk
   * categories apply with it, the instance becomes Starting when it is to run again (both asked
   * of the cold move's own UPDATE, `instanceChanges`), and the copies' byte counts are
   * checkpointed, all or nothing.
   */
  async #switchOver(work: (trx: Trx) => Promise<CommittedClaim>, copies: readonly CopyDiskResult[], start: boolean): Promise<CommittedClaim> {
    await this.#progressWrite;
    const checkpoint: MoveCheckpoint = {
      ...this.#checkpoint,
      copiedBytes: (this.#checkpoint.copiedBytes ?? 0) + copies.reduce((sum, c) => sum + c.copiedBytes, 0),
      resumed: (this.#checkpoint.resumed ?? false) || copies.some((c) => c.resumedAtChunk > 0),
    };
    const now = this.#deps.clock.nowMs();
    const { switched, starting } = await this.#ctx.fenced(
      async (trx) => {
        const result = await work(trx);
        await this.#applyDiskChanges(trx, now);
        const toStarting = start && result.instanceStatus === 'Starting';
        await this.#update(trx, toStarting ? { phase: 'starting', progress_bp: 9500 } : { phase: 'switching', progress_bp: copyShareBp });
        return { switched: result, starting: toStarting };
      },
      { checkpoint },
    );
    this.#checkpoint = checkpoint;
    this.#status = starting ? 'Starting' : start ? undefined : 'Stopped';
    return switched;
  }

  /**
   * Power the instance on at `hostId` from its disks (`diskPaths` in device order, or read them):
   * Starting, the driver's start; Running is written with the move's end.
   */
  async #start(hostId: string, diskPaths?: readonly string[]): Promise<void> {
    const { database, driver, clock } = this.#deps;
    const instanceId = this.#plan.instanceId;
    let status = this.#status ?? (await instanceStatus(database.db, instanceId));
    if (status === 'Running') return;
    if (status === 'Stopped') {
      status = (await transitionInstance(database.db, instanceId, 'start', clock.nowMs())) ? 'Starting' : await instanceStatus(database.db, instanceId);
      if (status === 'Starting') await this.#setPhase('starting', 9500);
    }
    if (status !== 'Starting') throw new AppError('InstanceStatusInvalid', { instanceId, status, action: 'starting it after a move', allowed: 'Stopped' });
    const paths = diskPaths ?? (await database.db.selectFrom('disks').select('path').where('instance_id', '=', instanceId).orderBy('device_index').execute()).map((d) => d.path);
    try {
      await driver.start({ instanceId, hostId, diskPaths: [...paths] }, this.#ctx.signal);
    } catch (err) {
      await transitionInstance(database.db, instanceId, 'startFailed', clock.nowMs());
      this.#status = undefined;
      throw err;
    }
    this.#status = 'Starting';
  }

  /** Only one move of an instance runs at a time, so a held claim for it made since this move began is this move's. */
  async #unrecordedClaim(): Promise<string | undefined> {
    const orphan = await this.#deps.database.db
      .selectFrom('placement_claims')
      .select('id')
      .where('instance_id', '=', this.#plan.instanceId)
      .where('state', '=', 'held')
      .where('created_at', '>=', Number(this.#row.created_at))
      .executeTakeFirst();
    return orphan?.id;
  }

  /**
   * How to claim placement on the target, named `claimId`, in a transaction; `noteCommitted` tells
   * this process's capacity index once that transaction has committed. The index is loaded first:
   * on SQLite a read outside the transaction would wait for it forever.
   */
  async #claimer(claimId: string): Promise<(trx: Trx) => Promise<{ held: MoveClaim; noteCommitted: () => void }>> {
    const placement = await placementFor(this.#deps.database);
    return async (trx) => {
      const made = await this.#newClaim(trx, placement, claimId);
      return { held: { id: made.id, hostId: made.hostId, state: made.state, numaNode: made.numaNode }, noteCommitted: () => placement.noteClaimed(made) };
    };
  }

  async #newClaim(trx: Trx, placement: Placement, claimId: string): Promise<PlacementClaim> {
    const plan = this.#plan;
    try {
      return await placement.claimInTrx(
        trx,
        {
          instanceId: plan.instanceId,
          accountId: this.#row.account_id,
          zoneId: plan.targetZoneId,
          ...(plan.instanceType === plan.fromInstanceType ? {} : { instanceTypeId: plan.instanceType }),
          ...(plan.dedicatedHostId === null ? {} : { dedicatedHostId: plan.dedicatedHostId }),
          ttlMs: claimTtlMs,
        },
        claimId,
      );
    } catch (err) {
      if (err instanceof NoValidHostError) throw new AppError('MoveNoCapacity', { reason: failReason(err) }, { cause: err });
      throw err;
    }
  }

  /** Where every disk is before anything moves: read once, checkpointed with the claim. */
  async #readSources(): Promise<SourceDisk[]> {
    const disks = await this.#deps.database.db
      .selectFrom('disks')
      .select(['id', 'host_id', 'path', 'kind', 'size_gib'])
      .where('instance_id', '=', this.#plan.instanceId)
      .orderBy('device_index')
      .execute();
    return disks.map((d) => ({ diskId: d.id, hostId: d.host_id, path: d.path, kind: d.kind, sizeBytes: Number(d.size_gib) * gib }));
  }

  /** The disks as they were before the move; a checkpoint of an older attempt may lack them. */
  async #recordSources(): Promise<readonly SourceDisk[]> {
    if (this.#checkpoint.sourceDisks !== undefined) return this.#checkpoint.sourceDisks;
    const sourceDisks = await this.#readSources();
    await this.#saveCheckpoint({ sourceDisks });
    return sourceDisks;
  }

  /**
   * The data policy, before the copy: an abandoned data disk gets an empty disk of its size on the
   * target and the database points at it, so the cold move leaves it alone; its source stays
   * until the commit (a rollback points the disk back at it).
   */
  async #abandonDataDisks(targetHostId: string, sources: readonly SourceDisk[]): Promise<void> {
    const policy = this.#plan.dataDiskPolicy;
    if (policy === 'force_transfer') return;
    const { database, driver, clock } = this.#deps;
    const signal = this.#ctx.signal;
    const onSource = new Set(
      (await database.db.selectFrom('disks').select('id').where('instance_id', '=', this.#plan.instanceId).where('kind', '=', 'data').where('host_id', '!=', targetHostId).execute()).map((d) => d.id),
    );
    for (const disk of sources.filter((d) => onSource.has(d.diskId))) {
      if (policy === 'try_transfer') {
        try {
          await driver.copyDiskToHost({ source: disk, targetHostId }, signal);
          continue;
        } catch (err) {
          // An interrupted copy resumes on retry; anything else a retry cannot fix abandons the disk.
          if (signal.aborted || !isComputeDriverError(err) || err.failure === 'interrupted') throw err;
        }
      }
      await this.#saveCheckpoint({ abandoned: [...new Set([...(this.#checkpoint.abandoned ?? []), disk.diskId])] });
      const target: DiskLocation = { diskId: disk.diskId, hostId: targetHostId, path: driver.diskPath(targetHostId, disk.diskId) };
      await driver.deleteDisk(target, signal);
      const created = await driver.createDisk({ diskId: disk.diskId, hostId: targetHostId, sizeBytes: disk.sizeBytes, fillBytes: 0 }, signal);
      const now = clock.nowMs();
      await this.#ctx.fenced(async (trx) => {
        await trx.updateTable('disks').set({ host_id: targetHostId, path: created.path, updated_at: now }).where('id', '=', disk.diskId).execute();
      });
    }
  }

  /** After the commit: source copies not yet deleted (abandoned disks, a crash before the cold move's cleanup). */
  async #deleteSources(deleted: ReadonlySet<string>): Promise<string[]> {
    const { database, driver } = this.#deps;
    const sources = (this.#checkpoint.sourceDisks ?? []).filter((s) => !deleted.has(s.path));
    if (sources.length === 0) return [];
    const current = new Map(
      (await database.db.selectFrom('disks').select(['id', 'path']).where('instance_id', '=', this.#plan.instanceId).execute()).map((d) => [d.id, d.path]),
    );
    const leftovers: string[] = [];
    for (const source of sources) {
      if (current.get(source.diskId) === source.path) continue;
      try {
        await driver.deleteDisk(source, this.#ctx.signal);
      } catch (err) {
        if (this.#ctx.signal.aborted) throw err;
        leftovers.push(source.path);
      }
    }
    return leftovers;
  }

  /** The instance type, vSwitch and disk categories the move asked for (the zone follows the host), in `trx`. */
  async #applyChanges(trx: Trx): Promise<void> {
    const plan = this.#plan;
    const now = this.#deps.clock.nowMs();
    await trx.updateTable('instances').set({ instance_type_id: plan.instanceType, vswitch_id: plan.vSwitchId, updated_at: now }).where('id', '=', plan.instanceId).execute();
    await this.#applyDiskChanges(trx, now);
  }

  /** The disk categories and performance levels the move asked for, in `trx`. */
  async #applyDiskChanges(trx: Trx, now: number): Promise<void> {
    const plan = this.#plan;
    for (const change of plan.diskChanges) {
      await trx
        .updateTable('disks')
        .set({ category: change.category, performance_level: change.performanceLevel, updated_at: now })
        .where('id', '=', change.diskId)
        .where('instance_id', '=', plan.instanceId)
        .execute();
    }
  }

  /**
   * Undo what the move did while its claim is held, start the instance again if it ran, and record
   * the failure. Returns the message the job fails with.
   */
  async #fail(err: unknown): Promise<string> {
    const { database, driver, clock } = this.#deps;
    // The job's signal may be aborted (a cancel): the rollback must run to its end anyway.
    const signal = new AbortController().signal;
    const error = isAppError(err) ? err : new AppError('InternalError', { requestId: this.#moveId }, { cause: err });
    const notes: string[] = [error.message];
    await this.#ctx.fenced((trx) => this.#update(trx, { phase: 'rolling-back' }));
    let hostId = this.#row.from_host_id;
    let rolledBack = false;
    const leftoverPaths: string[] = [];
    const claimId = this.#checkpoint.claimId ?? (await this.#unrecordedClaim());
    const claim = claimId === undefined ? undefined : await database.db.selectFrom('placement_claims').select(['id', 'state', 'host_id']).where('id', '=', claimId).executeTakeFirst();
    if (claim?.state === 'held') {
      await this.#restoreAbandoned(claim.host_id);
      const undone = await rollbackColdMove(database, driver, claim.id, { signal, clock });
      leftoverPaths.push(...undone.leftoverPaths);
      rolledBack = true;
    } else if (claim?.state === 'committed') {
      hostId = claim.host_id;
      notes.push(`The instance was already moved to ${claim.host_id} and stays there.`);
    }
    if (this.#wasRunning === true) {
      try {
        await powerOn(database, driver, clock, this.#plan.instanceId, signal);
      } catch (startErr) {
        notes.push(`Starting the instance again failed: ${startErr instanceof Error ? startErr.message : String(startErr)}`);
      }
    }
    const outcome: MoveOutcome = {
      hostId,
      rolledBack,
      copiedBytes: this.#checkpoint.copiedBytes ?? 0,
      resumed: this.#checkpoint.resumed ?? false,
      abandonedDiskIds: rolledBack ? [] : (this.#checkpoint.abandoned ?? []),
      leftoverPaths,
    };
    const message = notes.join(' ');
    const now = clock.nowMs();
    await this.#ctx.fenced(async (trx) => {
      await this.#update(trx, { state: 'failed', phase: 'done', error_code: error.code, error_message: message, result: JSON.stringify(outcome), finished_at: now });
      await this.#ended(trx, 'failed', outcome, message, now);
    });
    return message;
  }

  /**
   * The move's own job ended without finishing it (cancelled while queued, or given up after its
   * workers kept dying): roll back from that job's checkpoint.
   */
  async #rollBackStalled(stalledJobId: string): Promise<MoveOutcome> {
    if (this.#ctx.job.checkpoint === null) {
      const stalled = await this.#deps.database.db.selectFrom('jobs').select('checkpoint').where('id', '=', stalledJobId).executeTakeFirst();
      this.#checkpoint = (stalled?.checkpoint == null ? {} : JSON.parse(stalled.checkpoint)) as MoveCheckpoint;
      await this.#ctx.checkpoint(this.#checkpoint);
    }
    const error = new AppError('Conflict', { reason: `The job ${stalledJobId} of this move ended without finishing it (cancelled, or given up after repeated crashes); the move was rolled back.` });
    await this.#fail(error);
    const row = await this.#deps.database.db.selectFrom('instance_moves').select('result').where('id', '=', this.#moveId).executeTakeFirstOrThrow();
    return JSON.parse(row.result ?? '{}') as MoveOutcome;
  }

  /** Point abandoned data disks back at their untouched sources, so the rollback deletes the empty target copies. */
  async #restoreAbandoned(targetHostId: string): Promise<void> {
    const sources = new Map((this.#checkpoint.sourceDisks ?? []).map((s) => [s.diskId, s]));
    const now = this.#deps.clock.nowMs();
    await this.#ctx.fenced(async (trx) => {
      const onTarget = await trx.selectFrom('disks').select('id').where('instance_id', '=', this.#plan.instanceId).where('host_id', '=', targetHostId).execute();
      for (const { id } of onTarget) {
        const source = sources.get(id);
        if (source === undefined || source.hostId === targetHostId) continue;
        await trx.updateTable('disks').set({ host_id: source.hostId, path: source.path, updated_at: now }).where('id', '=', id).execute();
      }
    });
  }

  async #saveCheckpoint(change: Partial<MoveCheckpoint>): Promise<void> {
    this.#checkpoint = { ...this.#checkpoint, ...change };
    await this.#ctx.checkpoint(this.#checkpoint);
  }

  async #setPhase(phase: MovePhase, progressBp?: number): Promise<void> {
    await this.#ctx.fenced((trx) => this.#update(trx, { phase, ...(progressBp === undefined ? {} : { progress_bp: progressBp }) }));
  }

  /** Copy progress, written at most every half second, one write at a time. */
  #noteProgress(progress: MoveProgress, sources: readonly SourceDisk[]): void {
    const now = this.#deps.clock.nowMs();
    if (now - this.#lastProgressAtMs < progressEveryMs) return;
    this.#lastProgressAtMs = now;
    const totalBytes = sources.reduce((sum, d) => sum + d.sizeBytes, 0);
    const before = sources.slice(0, progress.diskIndex).reduce((sum, d) => sum + d.sizeBytes, 0);
    const bp = totalBytes === 0 ? 0 : Math.min(copyShareBp, Math.floor(((before + progress.doneBytes) / totalBytes) * copyShareBp));
    this.#progressWrite = this.#progressWrite
      .then(() => this.#ctx.fenced((trx) => this.#update(trx, { progress_bp: bp })))
      .catch(() => undefined);
  }

  async #update(trx: Trx, change: Partial<Omit<InstanceMoveTable, 'id'>>): Promise<void> {
    await trx
      .updateTable('instance_moves')
      .set({ ...change, updated_at: this.#deps.clock.nowMs() })
      .where('id', '=', this.#moveId)
      .execute();
  }
}
