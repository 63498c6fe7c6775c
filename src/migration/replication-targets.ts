/**
 * The end of a run whose job targets something other than an ECS image: TargetType ContainerImage
 * (the agent's tar stream becomes an OCI image pushed to the configured registry as
 * ContainerNamespace/ContainerRepository:ContainerTag) and TargetInstance (the disks the agent sent
 * replace the destination instance's disks, through the compute driver). The bytes arrive and are
 * staged exactly as for an image; only what is built from them differs, and no image is recorded.
 */
import { rm } from 'node:fs/promises';
import type { ResultRequest } from '../core/agent-protocol.ts';
import type { Clock } from '../core/clock.ts';
import { AppError, isAppError } from '../core/errors.ts';
import { buildGzipLayer, imageConfig, imageManifest } from '../dataplane/oci-image.ts';
import { RegistryError, pushImage } from '../dataplane/registry-client.ts';
import { TarFormatError, scanTar } from '../dataplane/tar-reader.ts';
import type { JobStore } from '../engine/job-store.ts';
import type { JobContext, JobHandler } from '../engine/worker.ts';
import { type ComputeDriver, transitionInstance } from '../fleet/index.ts';
import type { Database } from '../store/database.ts';
import type { ReplicationJobTable } from '../store/schema-smc.ts';
import type { ImageStore } from './image-store.ts';
import { imageIdOf } from './replication-handlers.ts';
import { targetDisksFor } from './replication-job-fleet.ts';
import { jobState, transition } from './replication-job-rows.ts';
import { endRun } from './replication-runs.ts';
import { type SmcJobPayload, scheduleSmcJob, smcJobKinds } from './replication-schedules.ts';

const hourMs = 3_600_000;

export interface TargetRunDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly jobs: JobStore;
  readonly images: ImageStore;
  readonly driver: ComputeDriver;
  /** The registry ContainerImage jobs push to (`ferry serve --registry`, FERRY_REGISTRY_URL); none configured: undefined. */
  readonly registryUrl: string | undefined;
}

/** Where a run's bytes went, for the job's StatusInfo. */
type Delivered = string;

/**
 * Wrap the image finalisation: runs of ContainerImage and TargetInstance jobs end here, the rest
 * (TargetType Image) go on to `imageFinalize` unchanged.
 */
export function withTargetDelivery(deps: TargetRunDeps, imageFinalize: JobHandler): JobHandler {
  return async (ctx) => {
    const payload = ctx.job.payload as SmcJobPayload;
    const row = await deps.database.db.selectFrom('replication_jobs').selectAll().where('id', '=', payload.jobId ?? '').where('account_id', '=', payload.accountId).executeTakeFirst();
    if (row === undefined || row.target_type === 'Image') return imageFinalize(ctx);
    return finalizeTargetRun(deps, ctx, row, payload.runId ?? '');
  };
}

async function finalizeTargetRun(deps: TargetRunDeps, ctx: JobContext, row: ReplicationJobTable, runId: string): Promise<string> {
  const command = await deps.database.db.selectFrom('agent_commands').selectAll().where('run_id', '=', runId).where('state', '=', 'done').executeTakeFirst();
  const result = command?.result === null || command === undefined ? undefined : (JSON.parse(command.result) as ResultRequest);
  if (result === undefined || !result.ok) return 'no result';
  const checksum = (JSON.parse(command?.payload ?? '{}') as { checksum?: boolean }).checksum === true;
  // The staged bytes are committed as a transient image, so a finalisation repeated after a crash finds them.
  const imageId = imageIdOf(runId);
  let failure: AppError | undefined;
  let delivered: Delivered = '';
  if (row.current_run_id === runId && jobState(row) === 'Running/Processing') {
    if (!(await deps.images.hasImage(imageId))) {
      const mismatched: number[] = [];
      for (const disk of result.disks) {
        const sha256 = await deps.images.sealDisk(runId, disk.index, disk.sizeBytes);
        if (checksum && sha256 !== disk.sha256) mismatched.push(disk.index);
      }
      if (mismatched.length > 0) failure = new AppError('Conflict', { reason: `Disks ${mismatched.join(', ')} do not match the checksums the agent sent.` }, { alibabaCode: 'ReplicationJob.ChecksumMismatch' });
      else await deps.images.commit(runId, imageId, result.disks.map((d) => d.index));
    }
    if (failure === undefined) {
      try {
        delivered = row.target_type === 'ContainerImage' ? await pushContainerImage(deps, row, runId, imageId, ctx.signal) : await writeTargetInstance(deps, ctx, row, result.disks, imageId);
      } catch (err) {
        // Our own refusals end the run with their code; anything else (a database hiccup) is the engine's to retry.
        if (!isAppError(err) || ctx.signal.aborted) throw err;
        failure = err;
      }
    }
  }
  const verdict = await ctx.fenced(async (trx) => {
    const run = await trx.selectFrom('replication_job_runs').selectAll().where('id', '=', runId).executeTakeFirst();
    if (run?.outcome === 'succeeded') return 'done';
    const current = await trx.selectFrom('replication_jobs').selectAll().where('id', '=', row.id).executeTakeFirst();
    if (run === undefined || current === undefined || current.current_run_id !== runId || jobState(current) !== 'Running/Processing') return 'stale';
    const now = deps.clock.nowMs();
    if (failure !== undefined) {
      await endRun(trx, current, 'fail', now, { outcome: 'failed', errorCode: failure.alibabaCode, statusInfo: failure.message.slice(0, 1000) });
      return 'failed';
    }
    await trx.updateTable('replication_job_runs').set({ end_time: now, outcome: 'succeeded' }).where('id', '=', runId).execute();
    const last = Number(current.run_once) === 1 || Number(current.cut_over) === 1;
    const nextRunAt = last ? null : Math.max(now, Number(run.start_time) + Number(current.frequency_hours ?? 1) * hourMs);
    await transition(trx, current, last ? 'finish' : 'await', now, { progress: 100, status_info: delivered, current_run_id: null, end_time: last ? now : null, next_run_at: nextRunAt });
    if (nextRunAt !== null) await scheduleSmcJob(deps.jobs, trx, smcJobKinds.runDue, { accountId: current.account_id, jobId: current.id }, nextRunAt);
    return last ? 'finished' : 'waiting';
  }, { result: null });
  await deps.images.discard(runId);
  await deps.images.remove(imageId);
  await rm(layerPathOf(deps.images, imageId), { force: true });
  return verdict;
}

function layerPathOf(images: ImageStore, imageId: string): string {
  return `${images.imagePath(imageId, 0)}.layer.tar.gz`;
}

/** Build the OCI image from the staged tar stream and push it; returns `Pushed <reference>@<digest>`. */
async function pushContainerImage(deps: TargetRunDeps, row: ReplicationJobTable, runId: string, imageId: string, signal: AbortSignal): Promise<Delivered> {
  if (deps.registryUrl === undefined) throw new AppError('ContainerRegistryNotConfigured');
  const source = await deps.database.db.selectFrom('source_servers').select(['architecture']).where('id', '=', row.source_id).executeTakeFirst();
  const tarPath = deps.images.imagePath(imageId, 0);
  // A layer no tool could unpack must never reach the registry.
  await scanTar(tarPath).catch((err: unknown) => {
    throw err instanceof TarFormatError ? new AppError('SourceServerFileTreeInvalid', { reason: err.message }) : err;
  });
  const layer = await buildGzipLayer(tarPath, layerPathOf(deps.images, imageId), signal);
  const config = imageConfig({
    architecture: source?.architecture ?? '',
    os: 'linux',
    createdMs: deps.clock.nowMs(),
    layers: [layer],
    createdBy: `ferry: SMC replication job ${row.id}, run ${runId}, source server ${row.source_id}`,
  });
  const repository = `${row.container_namespace}/${row.container_repository}`;
  const registry = new URL(deps.registryUrl).host;
  try {
    const pushed = await pushImage({ registryUrl: deps.registryUrl, repository, tag: row.container_tag, config, layers: [layer], manifest: imageManifest(config, [layer]), signal });
    return `Pushed ${pushed.reference}@${pushed.manifestDigest}`;
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    if (err.kind === 'unreachable') throw new AppError('ContainerRegistryUnreachable', { registry, reason: err.message });
    throw new AppError('ContainerRegistryPushRefused', { reference: `${registry}/${repository}:${row.container_tag}`, status: err.status, reason: err.message });
  }
}

/**
 * Replace the destination instance's disks with the staged ones: source disk 0 onto its system
 * disk, source data disk N onto its N-th data disk. A running instance is stopped for the write and
 * started again after it (a retry after a crash remembers that through the job's checkpoint).
 */
async function writeTargetInstance(deps: TargetRunDeps, ctx: JobContext, row: ReplicationJobTable, sent: readonly { index: number; sizeBytes: number }[], imageId: string): Promise<Delivered> {
  const db = deps.database.db;
  const instance = await db.selectFrom('instances').selectAll().where('id', '=', row.instance_id).where('account_id', '=', row.account_id).executeTakeFirst();
  if (instance === undefined) throw new AppError('InvalidInstanceIdNotFound', { instanceId: row.instance_id, regionId: row.region_id });
  const disks = await db.selectFrom('disks').selectAll().where('instance_id', '=', instance.id).orderBy('device_index').execute();
  // Checked when the job was made too; the disks the agent really sent may have grown since.
  const targets = targetDisksFor(instance.id, sent, disks);
  const runtime = { instanceId: instance.id, hostId: instance.host_id, diskPaths: disks.map((d) => d.path) };
  const checkpoint = ctx.job.checkpoint as { restart?: boolean } | null;
  let restart = checkpoint?.restart === true;
  if (instance.status === 'Running') {
    await ctx.checkpoint({ restart: true });
    restart = true;
    await transitionInstance(db, instance.id, 'stop', deps.clock.nowMs());
    await deps.driver.stop(runtime, ctx.signal);
    await transitionInstance(db, instance.id, 'stopped', deps.clock.nowMs());
  } else if (instance.status !== 'Stopped') {
    throw new AppError('InstanceStatusInvalid', { instanceId: instance.id, status: instance.status, action: 'a TargetInstance run', allowed: 'Running or Stopped' });
  }
  for (const { index, target } of targets) {
    await deps.driver.writeDisk({ disk: { diskId: target.id, hostId: target.host_id, path: target.path }, sourcePath: deps.images.imagePath(imageId, index) }, ctx.signal);
  }
  if (restart) {
    await transitionInstance(db, instance.id, 'start', deps.clock.nowMs());
    await deps.driver.start(runtime, ctx.signal);
    await transitionInstance(db, instance.id, 'started', deps.clock.nowMs());
  }
  return `Wrote ${targets.map(({ index, target }) => `source disk ${index} onto ${target.id}`).join(', ')} of ${instance.id}`;
}
