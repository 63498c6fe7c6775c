/**
 * The server end of a run's disk transfer (DESIGN.md, "Data plane"): the agent asks for a ticket
 * per disk (a signed native call), opens the data-plane stream with it, and a Receiver writes the
 * disk in place into the run's staged file. Each checkpoint is persisted beside the file before
 * its chunks are acknowledged, so a stream that breaks (agent or server killed) resumes on the next
 * one without the confirmed chunks being sent again. An incremental run starts from the previous
 * image and its manifest, so only changed chunks travel.
 *
 * Once a second the transfer writes its progress (bytes done and total, received bytes, rate) to
 * the run and the job, in one transaction that also checks that the run is still the job's current
 * one and its command open; when it is not (Stop, Delete, expiry), the stream ends with Cancelled.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import type { ReplicateCommand, StreamRequest, StreamTicket } from '../core/agent-protocol.ts';
import type { Clock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import { DataPlaneError } from '../dataplane/dataplane-error.ts';
import type { Manifest } from '../dataplane/manifest.ts';
import { Receiver } from '../dataplane/receiver.ts';
import type { Database } from '../store/database.ts';
import type { SourceServerTable } from '../store/schema-smc.ts';
import type { ImageStore } from './image-store.ts';
import { jobState, transition } from './replication-job-rows.ts';

const ticketTtlSeconds = 60;

/** What the database keeps of a ticket: enough to recognise it, not enough to use it. */
function ticketHash(ticket: string): string {
  return createHash('sha256').update(ticket).digest('hex');
}
const progressIntervalMs = 1000;
const openStates = ['pending', 'delivered'];

/** What a redeemed ticket lets its stream do: write one disk of one run. */
export interface StreamGrant {
  readonly sourceId: string;
  readonly commandId: string;
  readonly jobId: string;
  readonly runId: string;
  readonly diskIndex: number;
  readonly checksum: boolean;
  /** The job's last image, the base of an incremental run ('' for none). */
  readonly baseImageId: string;
  readonly runTotalBytes: number;
  readonly runBytesBefore: number;
  readonly expiresAtMs: number;
}

export interface DiskStreamsDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly images: ImageStore;
  readonly log?: (message: string) => void;
}

interface Transfer {
  readonly grant: StreamGrant;
  readonly stop: AbortController;
  done: Promise<void>;
  /** Apparent bytes of this disk up to its last confirmed chunk. */
  positionBytes: number;
  diskSizeBytes: number;
  /** Link bytes the receiver has read (see `receivedBytes`), and of those the ones added to the run's counters. */
  receivedBytes: () => number;
  countedBytes: number;
  /** Chunks confirmed and not yet added to the run's counters. */
  pendingChunks: number;
  lastTickMs: number;
  rateBytesPerSec: number;
  /** Server clock when this stream began. */
  readonly startedAtMs: number;
  /** The last progress record under way; the next one waits for it. */
  ticking: Promise<unknown>;
}

export class DiskStreams {
  readonly #deps: DiskStreamsDeps;
  readonly #active = new Map<string, Transfer>();

  constructor(deps: DiskStreamsDeps) {
    this.#deps = deps;
  }

  /** A one-time ticket for one disk of an open replicate command of `source`. */
  async issueTicket(source: SourceServerTable, commandId: string, request: StreamRequest): Promise<StreamTicket> {
    const db = this.#deps.database.db;
    const command = await db.selectFrom('agent_commands').selectAll().where('id', '=', commandId).where('source_id', '=', source.id).executeTakeFirst();
    if (command === undefined) throw new AppError('AgentCommandNotFound', { commandId });
    if (!openStates.includes(command.state)) throw new AppError('AgentCommandNotFound', { commandId });
    const payload = JSON.parse(command.payload) as ReplicateCommand;
    if (payload.target === 'fileTree') throw new AppError('InvalidParameter', { name: 'commandId', reason: `command ${commandId} sends a file tree; send its tree parts instead` });
    if (!payload.disks.some((d) => d.index === request.diskIndex)) throw new AppError('InvalidParameter', { name: 'diskIndex', reason: `disk ${request.diskIndex} is not part of this command` });
    const job = await db.selectFrom('replication_jobs').select(['image_id']).where('id', '=', command.job_id).executeTakeFirst();
    const nowMs = Date.now();
    const ticket = randomBytes(24).toString('base64url');
    const grant: StreamGrant = {
      sourceId: source.id,
      commandId,
      jobId: command.job_id,
      runId: command.run_id,
      diskIndex: request.diskIndex,
      checksum: payload.checksum,
      baseImageId: job?.image_id ?? '',
      runTotalBytes: request.runTotalBytes,
      runBytesBefore: request.runBytesBefore,
      expiresAtMs: nowMs + ticketTtlSeconds * 1000,
    };
    await db.deleteFrom('stream_tickets').where('expires_at', '<', nowMs).execute();
    await db.insertInto('stream_tickets').values({ ticket_hash: ticketHash(ticket), grant_json: JSON.stringify(grant), expires_at: grant.expiresAtMs }).execute();
    return { ticket, expiresInSeconds: ticketTtlSeconds };
  }

  /**
   * The grant of a valid ticket, used up; undefined for an unknown, used or expired one. Tickets
   * live in the database, so any node may redeem one another node issued, and only once.
   */
  async redeem(ticket: string): Promise<StreamGrant | undefined> {
    if (ticket === '') return undefined;
    const row = await this.#deps.database.db.deleteFrom('stream_tickets').where('ticket_hash', '=', ticketHash(ticket)).returning(['grant_json', 'expires_at']).executeTakeFirst();
    return row === undefined || Number(row.expires_at) < Date.now() ? undefined : (JSON.parse(row.grant_json) as StreamGrant);
  }

  /** Serve one stream to its end; failures are told to the agent over the stream and logged, never thrown. */
  async serve(grant: StreamGrant, link: Duplex): Promise<void> {
    const key = `${grant.runId}/${grant.diskIndex}`;
    // A newer stream for the same disk wins: the older one (a link the agent gave up on) stops first.
    const older = this.#active.get(key);
    if (older !== undefined) {
      older.stop.abort(new DataPlaneError('ConnectionLost', 'A newer stream for this disk replaced this one.'));
      await older.done;
    }
    const transfer: Transfer = {
      grant,
      stop: new AbortController(),
      done: Promise.resolve(),
      positionBytes: 0,
      diskSizeBytes: 0,
      receivedBytes: () => 0,
      countedBytes: 0,
      pendingChunks: 0,
      lastTickMs: Date.now(),
      rateBytesPerSec: 0,
      startedAtMs: this.#deps.clock.nowMs(),
      ticking: Promise.resolve(),
    };
    this.#active.set(key, transfer);
    transfer.done = this.#serve(transfer, link).finally(() => {
      if (this.#active.get(key) === transfer) this.#active.delete(key);
    });
    await transfer.done;
  }

  /** Stop every stream (the node shuts down); each checkpoints what it wrote first. */
  async stopAll(): Promise<void> {
    const all = [...this.#active.values()];
    for (const transfer of all) transfer.stop.abort(new DataPlaneError('ConnectionLost', 'The server is shutting down; send again to resume.'));
    await Promise.allSettled(all.map((t) => t.done));
  }

  async #serve(transfer: Transfer, link: Duplex): Promise<void> {
    const { grant } = transfer;
    const images = this.#deps.images;
    const ticker = setInterval(() => {
      void this.#tick(transfer).then(
        (open) => {
          if (!open) transfer.stop.abort(new DataPlaneError('Cancelled', 'The run was stopped or has ended; the agent drops it.'));
        },
        (err: unknown) => this.#deps.log?.(`progress of run ${grant.runId} not recorded: ${String(err)}`),
      );
    }, progressIntervalMs);
    try {
      if (!(await this.#tick(transfer))) throw new DataPlaneError('Cancelled', 'The run was stopped or has ended; the agent drops it.');
      let state: Manifest | undefined = await images.loadCheckpoint(grant.runId, grant.diskIndex);
      // An incremental run starts from the job's last image: the copy prepared when that run ended, else a copy made now.
      if (state === undefined && grant.baseImageId !== '') {
        state = (await images.takeBase(grant.jobId, grant.baseImageId, grant.runId, grant.diskIndex)) ?? (await images.stageFromImage(grant.runId, grant.diskIndex, grant.baseImageId));
      }
      const imagePath = images.stagedPath(grant.runId, grant.diskIndex);
      await mkdir(dirname(imagePath), { recursive: true });
      const receiver = new Receiver({
        imagePath,
        ...(state === undefined ? {} : { state }),
        verifyChunks: grant.checksum,
        onCheckpoint: async ({ manifest, confirmed }) => {
          await images.saveCheckpoint(grant.runId, grant.diskIndex, manifest);
          const last = Math.max(...confirmed);
          transfer.diskSizeBytes = manifest.diskSizeBytes;
          transfer.positionBytes = Math.max(transfer.positionBytes, Math.min(manifest.diskSizeBytes, (last + 1) * manifest.chunkSizeBytes));
          transfer.pendingChunks += confirmed.length;
        },
        // Recorded before the agent hears DONE: its result may start the image's finalisation at once.
        onProof: async (proof, manifest) => {
          transfer.diskSizeBytes = manifest.diskSizeBytes;
          transfer.positionBytes = manifest.diskSizeBytes;
          await images.saveProof(grant.runId, grant.diskIndex, proof);
          if (!(await this.#tick(transfer, proof))) throw new DataPlaneError('Cancelled', 'The run was stopped or has ended; the agent drops it.');
        },
      });
      transfer.receivedBytes = () => receiver.bytesRead;
      const stats = await receiver.run(link, transfer.stop.signal);
      this.#deps.log?.(`run ${grant.runId} disk ${grant.diskIndex}: ${stats.dataChunksWritten} data and ${stats.zeroChunksWritten} zero chunks written, proof ${stats.proof}`);
    } catch (err) {
      link.destroy();
      const what = err instanceof DataPlaneError ? `${err.code}: ${err.message}` : String(err);
      this.#deps.log?.(`run ${grant.runId} disk ${grant.diskIndex}: stream ended early (${what})`);
      await this.#tick(transfer).catch(() => undefined);
    } finally {
      clearInterval(ticker);
    }
  }

  /**
   * Add what the stream received to the run's counters and note its progress; false when the
   * run is no longer the job's current one or its command is no longer open. A stream's ticks run
   * one after another (the timer's and the final one may meet).
   */
  #tick(transfer: Transfer, proof?: string): Promise<boolean> {
    const turn = transfer.ticking.then(() => this.#record(transfer, proof));
    transfer.ticking = turn.catch(() => undefined);
    return turn;
  }

  async #record(transfer: Transfer, proof: string | undefined): Promise<boolean> {
    const { grant } = transfer;
    const nowMs = Date.now();
    const received = transfer.receivedBytes();
    const bytes = received - transfer.countedBytes;
    const chunks = transfer.pendingChunks;
    transfer.countedBytes = received;
    transfer.pendingChunks = 0;
    const elapsedMs = Math.max(1, nowMs - transfer.lastTickMs);
    transfer.lastTickMs = nowMs;
    transfer.rateBytesPerSec = transfer.rateBytesPerSec === 0 ? (bytes * 1000) / elapsedMs : 0.5 * transfer.rateBytesPerSec + (0.5 * bytes * 1000) / elapsedMs;
    const totalBytes = Math.max(grant.runTotalBytes, grant.runBytesBefore + transfer.diskSizeBytes);
    const doneBytes = grant.runBytesBefore + transfer.positionBytes;
    const clockMs = this.#deps.clock.nowMs();
    try {
      return await this.#deps.database.db.transaction().execute(async (trx) => {
        const command = await trx.selectFrom('agent_commands').select(['state']).where('id', '=', grant.commandId).executeTakeFirst();
        const run = await trx.selectFrom('replication_job_runs').select(['proofs', 'transfer_started_at']).where('id', '=', grant.runId).executeTakeFirst();
        const job = await trx.selectFrom('replication_jobs').selectAll().where('id', '=', grant.jobId).where('current_run_id', '=', grant.runId).executeTakeFirst();
        if (command === undefined || run === undefined || job === undefined || !openStates.includes(command.state)) return false;
        // Counters grow in SQL, so a stream that replaced another (same run and disk) adds to them safely.
        await trx
          .updateTable('replication_job_runs')
          .set((eb) => ({
            bytes_total: totalBytes,
            bytes_done: doneBytes,
            bytes_received: eb('bytes_received', '+', bytes),
            chunks_received: eb('chunks_received', '+', chunks),
            rate_bytes_per_sec: Math.round(transfer.rateBytesPerSec),
            progress_at: clockMs,
            transfer_started_at: run.transfer_started_at ?? transfer.startedAtMs,
            ...(proof === undefined ? {} : { proofs: JSON.stringify({ ...(JSON.parse(run.proofs ?? '{}') as Record<string, string>), [grant.diskIndex]: proof }), transfer_ended_at: clockMs }),
          }))
          .where('id', '=', grant.runId)
          .execute();
        const progress = Math.min(99, totalBytes === 0 ? 0 : Math.floor((doneBytes * 10000) / totalBytes) / 100);
        const state = jobState(job);
        if (state === 'Running/Preparing') await transition(trx, job, 'syncStarted', clockMs, { progress });
        else if (state === 'Running/Syncing') await trx.updateTable('replication_jobs').set({ progress, updated_at: clockMs }).where('id', '=', job.id).where('state', '=', 'Running/Syncing').execute();
        await trx.updateTable('source_servers').set({ last_seen_at: clockMs }).where('id', '=', grant.sourceId).execute();
        return true;
      });
    } catch (err) {
      // Not counted this time: keep the bytes for the next tick.
      transfer.countedBytes -= bytes;
      transfer.pendingChunks += chunks;
      throw err;
    }
  }
}
