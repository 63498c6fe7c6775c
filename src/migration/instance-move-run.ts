/**
 * The engine job of an instance move. Every step is re-entrant, so after a crash the engine runs
 * the handler again and it carries on from the job's checkpoint and the fleet's state:
 *
 * 1. claim placement on the target (the claim id is checkpointed; a claim the crash left
 *    unrecorded is adopted, never leaked);
 * 2. stop the instance if it runs;
 * 3. recreate abandoned data disks empty on the target (data policy);
 * 4. cold move (fleet/cold-move.ts): copy the disks, verified, resuming from the copies'
 *    checkpoints; one transaction points the instance at the target and commits the claim;
 * 5. delete the source copies, apply the new type, vSwitch and disk categories;
 * 6. start the instance again when it ran before (or as asked).
 *
 * A failure a retry cannot fix, or the last attempt's failure, rolls back while the claim is held:
 * target copies deleted, claim released, instance Stopped on its untouched source disks and
 * started again if it ran. Until the commit the instance's disks are its source ones; after it,
 * verified target copies: it never lacks a valid disk, and its capacity is counted once.
 */
import type { Clock } from '../core/clock.ts';
import { AppError, isAppError } from '../core/errors.ts';
import type { Trx } from '../engine/job-store.ts';
import { type JobContext, type JobHandler, PermanentJobError } from '../engine/worker.ts';
import {
  type ComputeDriver,
  type DiskLocation,
  type MoveProgress,
  NoValidHostError,
  claimPlacement,
  coldMoveInstance,
  isComputeDriverError,
  rollbackColdMove,
} from '../fleet/index.ts';
import type { Database } from '../store/database.ts';
import type { InstanceMoveTable } from '../store/schema-moves.ts';
import type { MovePlan } from './instance-move-plan.ts';
import { instanceStatus, powerOff, powerOn } from './instance-move-power.ts';
import { type MoveJobPayload, type MoveOutcome, type MovePhase, toMoveView } from './instance-move.ts';

export interface MoveDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly driver: ComputeDriver;
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
    const row = await this.#deps.database.db.selectFrom('instance_moves').selectAll().where('id', '=', this.#moveId).executeTakeFirst();
    if (row === undefined) throw new PermanentJobError(`instance move ${this.#moveId} does not exist`);
    const view = toMoveView(row);
    if (view.state === 'succeeded' && view.outcome !== null) return view.outcome;
    if (view.state === 'failed') throw new PermanentJobError(view.errorMessage ?? `instance move ${this.#moveId} failed`);
    this.#row = row;
    this.#plan = view.plan;
    this.#wasRunning = view.wasRunning;
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
    const wasRunning = await this.#begin();
    const claim = await this.#claim();
    if (claim.state === 'released') {
      throw new AppError('Conflict', { reason: `The placement claim ${claim.id} of this move was released before the move committed (it expired); start the move again.` });
    }
    if (claim.state === 'held') {
      await this.#setPhase('stopping');
      await powerOff(database, driver, clock, this.#plan.instanceId, signal);
      const sources = await this.#recordSources();
      await this.#setPhase('copying');
      await this.#abandonDataDisks(claim.hostId, sources);
      const moved = await coldMoveInstance(database, driver, claim.id, { signal, clock, onProgress: (p) => this.#noteProgress(p, sources) });
      await this.#saveCheckpoint({
        copiedBytes: (this.#checkpoint.copiedBytes ?? 0) + moved.disks.reduce((sum, d) => sum + d.copiedBytes, 0),
        resumed: (this.#checkpoint.resumed ?? false) || moved.disks.some((d) => d.resumedAtChunk > 0),
      });
    }
    await this.#progressWrite;
    await this.#setPhase('switching', copyShareBp);
    const leftoverPaths = await this.#deleteSources();
    await this.#applyChanges();
    if (this.#plan.startAfter ?? wasRunning) {
      await this.#setPhase('starting', 9500);
      await powerOn(database, driver, clock, this.#plan.instanceId, signal);
    }
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
      (trx) => this.#update(trx, { state: 'succeeded', phase: 'done', progress_bp: 10000, result: JSON.stringify(outcome), finished_at: now }),
      { result: outcome },
    );
    return outcome;
  }

  /** queued → running; the instance's power state at the start is recorded once. */
  async #begin(): Promise<boolean> {
    if (this.#wasRunning !== null) return this.#wasRunning;
    const status = await instanceStatus(this.#deps.database.db, this.#plan.instanceId);
    if (status !== 'Running' && status !== 'Stopped') {
      throw new AppError('InstanceStatusInvalid', { instanceId: this.#plan.instanceId, status, action: 'a move', allowed: 'Running or Stopped' });
    }
    const wasRunning = status === 'Running';
    const now = this.#deps.clock.nowMs();
    await this.#ctx.fenced((trx) => this.#update(trx, { state: 'running', started_at: now, was_running: wasRunning ? 1 : 0 }));
    this.#wasRunning = wasRunning;
    return wasRunning;
  }

  /** The move's placement claim: the checkpointed one, one a crash left unrecorded, or a new one. */
  async #claim(): Promise<{ id: string; hostId: string; state: string }> {
    const db = this.#deps.database.db;
    let claimId = this.#checkpoint.claimId;
    if (claimId === undefined) {
      claimId = (await this.#unrecordedClaim()) ?? (await this.#newClaim());
      await this.#saveCheckpoint({ claimId });
    }
    const claim = await db.selectFrom('placement_claims').select(['id', 'host_id', 'state']).where('id', '=', claimId).executeTakeFirstOrThrow();
    if (this.#row.claim_id !== claim.id) {
      await this.#ctx.fenced((trx) => this.#update(trx, { claim_id: claim.id, to_host_id: claim.host_id }));
    }
    return { id: claim.id, hostId: claim.host_id, state: claim.state };
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

  async #newClaim(): Promise<string> {
    const plan = this.#plan;
    try {
      const claim = await claimPlacement(this.#deps.database, {
        instanceId: plan.instanceId,
        accountId: this.#row.account_id,
        zoneId: plan.targetZoneId,
        ...(plan.instanceType === plan.fromInstanceType ? {} : { instanceTypeId: plan.instanceType }),
        ...(plan.dedicatedHostId === null ? {} : { dedicatedHostId: plan.dedicatedHostId }),
        ttlMs: claimTtlMs,
      });
      return claim.id;
    } catch (err) {
      if (err instanceof NoValidHostError) throw new AppError('MoveNoCapacity', { reason: failReason(err) }, { cause: err });
      throw err;
    }
  }

  /** Where every disk is before anything moves; read once, so a retry still knows the sources. */
  async #recordSources(): Promise<readonly SourceDisk[]> {
    if (this.#checkpoint.sourceDisks !== undefined) return this.#checkpoint.sourceDisks;
    const disks = await this.#deps.database.db
      .selectFrom('disks')
      .select(['id', 'host_id', 'path', 'kind', 'size_gib'])
      .where('instance_id', '=', this.#plan.instanceId)
      .orderBy('device_index')
      .execute();
    const sourceDisks = disks.map((d) => ({ diskId: d.id, hostId: d.host_id, path: d.path, kind: d.kind, sizeBytes: Number(d.size_gib) * gib }));
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

  /** After the commit: source copies the cold move did not delete (abandoned disks, a crash before its cleanup). */
  async #deleteSources(): Promise<string[]> {
    const { database, driver } = this.#deps;
    const current = new Map(
      (await database.db.selectFrom('disks').select(['id', 'path']).where('instance_id', '=', this.#plan.instanceId).execute()).map((d) => [d.id, d.path]),
    );
    const leftovers: string[] = [];
    for (const source of this.#checkpoint.sourceDisks ?? []) {
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

  /** The instance type, vSwitch and disk categories the move asked for (the zone follows the host). */
  async #applyChanges(): Promise<void> {
    const plan = this.#plan;
    const now = this.#deps.clock.nowMs();
    await this.#ctx.fenced(async (trx) => {
      await trx.updateTable('instances').set({ instance_type_id: plan.instanceType, vswitch_id: plan.vSwitchId, updated_at: now }).where('id', '=', plan.instanceId).execute();
      for (const change of plan.diskChanges) {
        await trx
          .updateTable('disks')
          .set({ category: change.category, performance_level: change.performanceLevel, updated_at: now })
          .where('id', '=', change.diskId)
          .where('instance_id', '=', plan.instanceId)
          .execute();
      }
    });
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
    await this.#ctx.fenced((trx) =>
      this.#update(trx, { state: 'failed', phase: 'done', error_code: error.code, error_message: message, result: JSON.stringify(outcome), finished_at: now }),
    );
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
