/**
 * A cold move: a stopped instance's disks are copied to the claimed host's pool (verified chunk
 * by chunk), then one transaction points the instance and its disks at the target and commits
 * the claim, and only then are the source copies deleted. Until that transaction the instance
 * runs from its source disks; after it, from verified target copies: it never lacks a valid disk.
 * A failed move keeps its copy checkpoints: call coldMoveInstance again to resume, or
 * rollbackColdMove to give the target back.
 */
import { type Clock, systemClock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import type { Database } from '../store/database.ts';
import type { DiskTable } from '../store/schema-fleet.ts';
import type { ComputeDriver, CopyDiskResult, DiskLocation } from './compute-driver.ts';
import type { InstanceEvent } from './instance-states.ts';
import { statusThrough, transitionInstance } from './instance-transition.ts';
import { type CommittedClaim, type PlacementClaim, type Trx, commitClaimInTrx, findClaim, releaseClaimInTrx } from './placement/claims.ts';
import { cachedPlacement } from './placement/placement.ts';

export interface MoveProgress {
  readonly diskId: string;
  /** Position of this disk in the instance's list, from 0. */
  readonly diskIndex: number;
  readonly diskCount: number;
  readonly doneBytes: number;
  readonly totalBytes: number;
  readonly copiedBytes: number;
}

export interface ColdMoveOptions {
  readonly signal: AbortSignal;
  readonly onProgress?: (progress: MoveProgress) => void;
  readonly clock?: Clock;
  /**
   * Runs the switch-over transaction (default: a plain one). A job passes its fenced transaction,
   * so that a worker that lost its lease cannot switch, and adds its own writes to it; `copies`
   * are the verified target copies the switch points the instance at.
   */
  readonly transaction?: (work: (trx: Trx) => Promise<CommittedClaim>, copies: readonly CopyDiskResult[]) => Promise<CommittedClaim>;
  /**
   * Changes the switch-over makes to the instance in the UPDATE that moves it: a new type or
   * vSwitch, and instance events applied after `migrated` (Migrating to Stopped), e.g. `start`.
   * CommittedClaim.instanceStatus tells where they left it.
   */
  readonly instanceChanges?: { readonly instanceTypeId?: string; readonly vSwitchId?: string; readonly then?: readonly InstanceEvent[] };
  /**
   * What the caller knows already, so the move does not read it again: the claim is held (for its
   * instance, on its host and NUMA node), the instance is Migrating, and `disks` are where its disks
   * are, in device order. A claim released meanwhile still fails the switch-over, which re-checks it.
   */
  readonly known?: {
    readonly claim: Pick<PlacementClaim, 'id' | 'hostId' | 'numaNode'> & { readonly instanceId: string };
    readonly disks: readonly DiskLocation[];
  };
}

export interface MovedDisk {
  readonly id: string;
  readonly fromPath: string;
  readonly toPath: string;
  readonly digest: string;
  readonly copiedBytes: number;
  readonly resumedAtChunk: number;
}

export interface ColdMoveResult {
  readonly instanceId: string;
  readonly claimId: string;
  readonly fromHostId: string;
  readonly toHostId: string;
  readonly numaNode: number;
  readonly disks: readonly MovedDisk[];
  /** Source copies that could not be deleted (their host is down): garbage, not the instance's disks. */
  readonly leftoverPaths: readonly string[];
}

async function heldClaim(database: Database, claimId: string): Promise<PlacementClaim & { instanceId: string }> {
  const claim = await findClaim(database.db, claimId);
  if (claim === undefined) throw new AppError('NotFound', { resource: 'placement claim', id: claimId });
  if (claim.state !== 'held') throw new AppError('Conflict', { reason: `Placement claim ${claimId} is ${claim.state}; a move needs a held claim.` });
  const { instanceId } = claim;
  if (instanceId === null) throw new AppError('InvalidParameter', { name: 'claimId', reason: `claim ${claimId} reserves capacity for no instance` });
  return { ...claim, instanceId };
}

async function instanceDisks(database: Database, instanceId: string): Promise<DiskTable[]> {
  return database.db.selectFrom('disks').selectAll().where('instance_id', '=', instanceId).orderBy('device_index').execute();
}

/**
 * Move the claim's (stopped) instance to the claimed host: copy, switch, commit, clean up.
 * Re-running after a failure resumes the copies from their checkpoints.
 */
export async function coldMoveInstance(database: Database, driver: ComputeDriver, claimId: string, options: ColdMoveOptions): Promise<ColdMoveResult> {
  const clock = options.clock ?? systemClock;
  const known = options.known?.claim.id === claimId ? options.known : undefined;
  const claim = known?.claim ?? (await heldClaim(database, claimId));
  if (known === undefined) {
    const instance = await database.db.selectFrom('instances').select(['host_id', 'status']).where('id', '=', claim.instanceId).executeTakeFirstOrThrow();
    if (instance.status !== 'Migrating' && !(await transitionInstance(database.db, claim.instanceId, 'migrate', clock.nowMs()))) {
      throw new AppError('Conflict', { reason: `Instance ${claim.instanceId} is ${instance.status}; a cold move needs it Stopped. Stop it first.` });
    }
  }

  const disks: readonly DiskLocation[] = known?.disks ?? (await instanceDisks(database, claim.instanceId)).map((d) => ({ diskId: d.id, hostId: d.host_id, path: d.path }));
  const copies = new Map<string, CopyDiskResult>();
  for (const [diskIndex, disk] of disks.entries()) {
    if (disk.hostId === claim.hostId) continue;
    const copy = await driver.copyDiskToHost(
      {
        source: { diskId: disk.diskId, hostId: disk.hostId, path: disk.path },
        targetHostId: claim.hostId,
        onProgress: (p) => options.onProgress?.({ ...p, diskIndex, diskCount: disks.length }),
      },
      options.signal,
    );
    copies.set(disk.diskId, copy);
  }

  const nowMs = clock.nowMs();
  const switchOver = async (trx: Trx): Promise<CommittedClaim> => {
    for (const [diskId, copy] of copies) {
      await trx.updateTable('disks').set({ host_id: copy.target.hostId, path: copy.target.path, updated_at: nowMs }).where('id', '=', diskId).execute();
    }
    const changes = options.instanceChanges;
    return commitClaimInTrx(trx, database.dialect, claimId, nowMs, {
      status: statusThrough(['migrated', ...(changes?.then ?? [])]),
      ...(changes?.instanceTypeId === undefined ? {} : { instance_type_id: changes.instanceTypeId }),
      ...(changes?.vSwitchId === undefined ? {} : { vswitch_id: changes.vSwitchId }),
    });
  };
  const committed = options.transaction === undefined ? await database.db.transaction().execute(switchOver) : await options.transaction(switchOver, [...copies.values()]);
  await cachedPlacement(database)?.then((p) => p.noteCommitted(committed), () => undefined);

  const leftoverPaths: string[] = [];
  const moved: MovedDisk[] = [];
  for (const disk of disks) {
    const copy = copies.get(disk.diskId);
    if (copy === undefined) continue;
    moved.push({ id: disk.diskId, fromPath: disk.path, toPath: copy.target.path, digest: copy.digest, copiedBytes: copy.copiedBytes, resumedAtChunk: copy.resumedAtChunk });
    try {
      await driver.deleteDisk({ diskId: disk.diskId, hostId: disk.hostId, path: disk.path }, options.signal);
    } catch {
      leftoverPaths.push(disk.path);
    }
  }
  return { instanceId: claim.instanceId, claimId, fromHostId: committed.fromHostId, toHostId: claim.hostId, numaNode: claim.numaNode, disks: moved, leftoverPaths };
}

/**
 * Undo an unfinished move: delete whatever reached the target pool, release the claim, and put
 * the instance back to Stopped on its source host, whose disks were never touched.
 */
export async function rollbackColdMove(database: Database, driver: ComputeDriver, claimId: string, options: { signal: AbortSignal; clock?: Clock }): Promise<{ leftoverPaths: string[] }> {
  const clock = options.clock ?? systemClock;
  const claim = await heldClaim(database, claimId);
  const leftoverPaths: string[] = [];
  for (const disk of await instanceDisks(database, claim.instanceId)) {
    if (disk.host_id === claim.hostId) continue;
    const path = driver.diskPath(claim.hostId, disk.id);
    try {
      await driver.deleteDisk({ diskId: disk.id, hostId: claim.hostId, path }, options.signal);
    } catch {
      leftoverPaths.push(path);
    }
  }
  const nowMs = clock.nowMs();
  const { claim: released, freed } = await database.db.transaction().execute(async (trx) => {
    const outcome = await releaseClaimInTrx(trx, database.dialect, claimId, nowMs);
    await transitionInstance(trx, claim.instanceId, 'migrationRolledBack', nowMs);
    return outcome;
  });
  if (freed) await cachedPlacement(database)?.then((p) => p.noteReleased(released), () => undefined);
  return { leftoverPaths };
}
