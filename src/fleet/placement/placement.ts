/**
 * The placement service: decide from the in-memory capacity index, verify and reserve in the
 * database. One `Placement` per open Database and process (see `placementFor`); several Ferry
 * processes on one PostgreSQL each keep their own index, and the database settles races.
 */
import { type Clock, systemClock } from '../../core/clock.ts';
import { AppError } from '../../core/errors.ts';
import type { Database, Db } from '../../store/database.ts';
import { CapacityIndex } from './capacity-index.ts';
import {
  ClaimRace,
  type CommittedClaim,
  type PlacementClaim,
  commitClaimInTrx,
  expiredClaimIds,
  insertClaim,
  loadHostSnapshots,
  releaseClaimInTrx,
  type Trx,
} from './claims.ts';
import { type DryRunResult, describeRequest, explainPlacement, summarizeRejections } from './dry-run.ts';
import { type PlacementRequest, type ResolvedRequest, resolveRequest } from './request.ts';

export interface PlacementOptions {
  readonly clock?: Clock;
  /** Reload the whole index when it is older than this; default 60 s. */
  readonly maxIndexAgeMs?: number;
  /** A claim that finds nothing reloads the index first, at most this often; default 1 s. */
  readonly minReloadIntervalMs?: number;
  /** Hosts tried before a claim gives up on races; default 32. */
  readonly maxAttempts?: number;
}

/** Nothing passes the filters. `dryRun` says which filter turned each host away. */
export class NoValidHostError extends AppError {
  readonly dryRun: DryRunResult;

  constructor(req: ResolvedRequest, dryRun: DryRunResult) {
    super(
      'Conflict',
      { reason: `No host can take ${describeRequest(req)}. Rejected by ${summarizeRejections(dryRun.rejected)}. Free capacity, widen the zone or pick another dedicated host.` },
      { alibabaCode: 'OperationDenied.NoStock' },
    );
    this.dryRun = dryRun;
  }
}

/** Counters for operators and tests. */
export interface PlacementStats {
  claims: number;
  /** Claims the database refused because another process got there first. */
  conflicts: number;
  fullReloads: number;
  hostRefreshes: number;
}

export class Placement {
  readonly #database: Database;
  readonly #clock: Clock;
  readonly #maxAgeMs: number;
  readonly #minReloadMs: number;
  readonly #maxAttempts: number;
  #index: CapacityIndex;
  #loadedAtMs: number;
  readonly stats: PlacementStats = { claims: 0, conflicts: 0, fullReloads: 0, hostRefreshes: 0 };

  private constructor(database: Database, index: CapacityIndex, options: PlacementOptions) {
    this.#database = database;
    this.#clock = options.clock ?? systemClock;
    this.#maxAgeMs = options.maxIndexAgeMs ?? 60_000;
    this.#minReloadMs = options.minReloadIntervalMs ?? 1_000;
    this.#maxAttempts = options.maxAttempts ?? 32;
    this.#index = index;
    this.#loadedAtMs = this.#clock.nowMs();
  }

  /** Load the capacity index of every host from the database. */
  static async load(database: Database, options: PlacementOptions = {}): Promise<Placement> {
    return new Placement(database, CapacityIndex.fromSnapshots(await loadHostSnapshots(database.db)), options);
  }

  get index(): CapacityIndex {
    return this.#index;
  }

  /** Reload every host from the database (through `db`, a transaction's reads, when given). */
  async refresh(db: Db | Trx = this.#database.db): Promise<void> {
    const now = this.#clock.nowMs();
    this.#index = CapacityIndex.fromSnapshots(await loadHostSnapshots(db));
    this.#loadedAtMs = now;
    this.stats.fullReloads += 1;
  }

  /** Reload the given hosts (after the database refused a claim on them, or a state change). */
  async refreshHosts(hostIds: readonly string[], db: Db | Trx = this.#database.db): Promise<void> {
    const snapshots = await loadHostSnapshots(db, hostIds);
    const found = new Set(snapshots.map((s) => s.id));
    for (const snapshot of snapshots) this.#index.upsertHost(snapshot);
    for (const id of hostIds) if (!found.has(id)) this.#index.removeHost(id);
    this.stats.hostRefreshes += hostIds.length;
  }

  /** Where `request` would land and why every other host would not take it; reserves nothing. */
  async dryRun(request: PlacementRequest, options: { maxReasons?: number } = {}): Promise<DryRunResult> {
    await this.#reloadIfOld();
    const req = await resolveRequest(this.#database.db, request);
    return explainPlacement(this.#index, req, options.maxReasons);
  }

  /**
   * Reserve capacity for `request` on one NUMA node, atomically in the database. Throws
   * NoValidHostError (with a dry run) when no host qualifies.
   */
  async claim(request: PlacementRequest): Promise<PlacementClaim> {
    await this.#reloadIfOld();
    const { db, dialect } = this.#database;
    const claim = await this.#place(db, await resolveRequest(db, request), (hostId, node, req) =>
      db.transaction().execute((trx) => insertClaim(trx, dialect, hostId, node, req, this.#clock.nowMs())),
    );
    this.noteClaimed(claim);
    return claim;
  }

  /**
   * Reserve capacity for `request` inside the caller's transaction, so that the claim (named
   * `claimId`) commits or rolls back with the caller's own writes; every read goes through `trx`.
   * Once `trx` has committed, tell the index with `noteClaimed`. A request with anti-affinity
   * needs a transaction per attempt: use `claim`. An instance's second held claim is refused by
   * the unique index alone (Conflict), and the caller's transaction must then roll back.
   */
  async claimInTrx(trx: Trx, request: PlacementRequest, claimId?: string): Promise<PlacementClaim> {
    if ((request.antiAffinity?.instanceIds?.length ?? 0) > 0) {
      throw new AppError('InvalidParameter', { name: 'antiAffinity', reason: 'a claim inside a caller\'s transaction cannot take anti-affinity instances; use Placement.claim' });
    }
    await this.#reloadIfOld(trx);
    const { dialect } = this.#database;
    return this.#place(trx, await resolveRequest(trx, request), (hostId, node, req) => insertClaim(trx, dialect, hostId, node, req, this.#clock.nowMs(), { ...(claimId === undefined ? {} : { claimId }), checkHeld: false }));
  }

  /** Tell the index about a claim committed by a caller's own transaction (`claimInTrx`). */
  noteClaimed(claim: PlacementClaim): void {
    this.#index.adjustUsed(claim.hostId, claim.numaNode, claim.vcpus, claim.memoryMib);
    this.stats.claims += 1;
  }

  /**
   * Choose a node from the index and `reserve` it, until the database takes one; a refused host is
   * refreshed (reading through `db`) and another one chosen.
   */
  async #place(db: Db | Trx, resolved: ResolvedRequest, reserve: (hostId: string, node: number, req: ResolvedRequest) => Promise<PlacementClaim | undefined>): Promise<PlacementClaim> {
    let req = resolved;
    const startedAtMs = this.#clock.nowMs();
    for (let attempt = 0; attempt < this.#maxAttempts; attempt += 1) {
      const choice = this.#index.choose(req);
      if (choice === undefined) {
        // The index may be stale the other way (others freed capacity): reload once, rate limited.
        if (this.#loadedAtMs < startedAtMs && this.#clock.nowMs() - this.#loadedAtMs >= this.#minReloadMs) {
          await this.refresh(db);
          continue;
        }
        throw new NoValidHostError(req, explainPlacement(this.#index, req, 50));
      }
      const hostId = choice.host.id;
      let claim: PlacementClaim | undefined;
      try {
        claim = await reserve(hostId, choice.node, req);
      } catch (err) {
        if (!(err instanceof ClaimRace)) throw err;
        // An anti-affine instance was claimed onto that host meanwhile: never try it again.
        req = { ...req, avoidHostIds: new Set([...req.avoidHostIds, hostId]) };
      }
      if (claim !== undefined) return claim;
      this.stats.conflicts += 1;
      await this.refreshHosts([hostId], db);
    }
    throw new AppError('Conflict', { reason: `Placement of ${describeRequest(req)} lost ${this.#maxAttempts} races for capacity in a row; retry.` });
  }

  /** Give a held claim's capacity back (idempotent). */
  async release(claimId: string): Promise<PlacementClaim> {
    const { db, dialect } = this.#database;
    const { claim, freed } = await db.transaction().execute((trx) => releaseClaimInTrx(trx, dialect, claimId, this.#clock.nowMs()));
    if (freed) this.noteReleased(claim);
    return claim;
  }

  /** The claim's instance now lives on the claimed host and NUMA node. */
  async commit(claimId: string): Promise<CommittedClaim> {
    const { db, dialect } = this.#database;
    const committed = await db.transaction().execute((trx) => commitClaimInTrx(trx, dialect, claimId, this.#clock.nowMs()));
    this.noteCommitted(committed);
    return committed;
  }

  /** Tell the index about a commit made elsewhere in this process (a cold move's own transaction). */
  noteCommitted(committed: CommittedClaim): void {
    this.#index.adjustUsed(committed.fromHostId, committed.fromNode, -committed.freedVcpus, -committed.freedMemoryMib);
  }

  /** Tell the index about a release made elsewhere in this process (a cold move's rollback). */
  noteReleased(claim: PlacementClaim): void {
    this.#index.adjustUsed(claim.hostId, claim.numaNode, -claim.vcpus, -claim.memoryMib);
  }

  /** Release every held claim whose TTL ran out; returns them. */
  async releaseExpired(): Promise<PlacementClaim[]> {
    const released: PlacementClaim[] = [];
    for (const id of await expiredClaimIds(this.#database.db, this.#clock.nowMs())) released.push(await this.release(id));
    return released;
  }

  async #reloadIfOld(db: Db | Trx = this.#database.db): Promise<void> {
    if (this.#clock.nowMs() - this.#loadedAtMs > this.#maxAgeMs) await this.refresh(db);
  }
}

const cache = new WeakMap<Database, Promise<Placement>>();

/** This process's Placement for `database`, loaded on first use. */
export function placementFor(database: Database, options: PlacementOptions = {}): Promise<Placement> {
  let placement = cache.get(database);
  if (placement === undefined) {
    placement = Placement.load(database, options);
    cache.set(database, placement);
    void placement.catch(() => cache.delete(database));
  }
  return placement;
}

/** The cached Placement for `database`, if one was loaded; never loads. */
export function cachedPlacement(database: Database): Promise<Placement> | undefined {
  return cache.get(database);
}

/** Drop the cached index (after fleet apply changed hosts); the next use reloads. */
export function forgetPlacement(database: Database): void {
  cache.delete(database);
}

/** Reserve capacity for `request`; see Placement.claim. */
export async function claimPlacement(database: Database, request: PlacementRequest): Promise<PlacementClaim> {
  return (await placementFor(database)).claim(request);
}

/** Give a held claim's capacity back (idempotent). */
export async function releaseClaim(database: Database, claimId: string): Promise<PlacementClaim> {
  return (await placementFor(database)).release(claimId);
}

/** Move the claim's instance onto the claimed host and NUMA node. */
export async function commitClaim(database: Database, claimId: string): Promise<CommittedClaim> {
  return (await placementFor(database)).commit(claimId);
}

/** Where `request` would land, and for every other host the filter that rejected it. */
export async function dryRun(database: Database, request: PlacementRequest, options: { maxReasons?: number } = {}): Promise<DryRunResult> {
  return (await placementFor(database)).dryRun(request, options);
}

/** Release claims whose TTL ran out; run it periodically (a crashed mover's claims come back). */
export async function releaseExpiredClaims(database: Database): Promise<PlacementClaim[]> {
  return (await placementFor(database)).releaseExpired();
}
