import type { JobHandler } from '../engine/worker.ts';
import type { Database } from '../store/database.ts';
import type { Clock } from '../core/clock.ts';
import type { JobStore } from '../engine/job-store.ts';
import type { ComputeDriver } from '../fleet/compute-driver.ts';
import { agentSettings } from './agent-settings.ts';
import { endEventOfMove, eventHandlers } from './events-run.ts';
import { fileImageStore } from './image-store.ts';
import { instanceMoveJobKind } from './instance-move.ts';
import { instanceMoveHandler } from './instance-move-run.ts';
import { replicationHandlers } from './replication-handlers.ts';
import { withTargetDelivery } from './replication-targets.ts';
import { smcJobKinds } from './replication-schedules.ts';

/** What the domain's job handlers are given when a node starts. */
export interface HandlerDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly jobs: JobStore;
  readonly dataDir: string;
  readonly driver: ComputeDriver;
  /** The registry ContainerImage jobs push to (`ferry serve --registry`, FERRY_REGISTRY_URL). */
  readonly registryUrl?: string | undefined;
}

/**
 * The durable workflows of the product (replication schedules, instance migrations, events),
 * by job kind. Every Ferry node runs all of them; a new workflow adds its kind here.
 */
export function migrationHandlers(deps: HandlerDeps): Map<string, JobHandler> {
  const images = fileImageStore(deps.dataDir);
  const replication = replicationHandlers({ ...deps, images, settings: agentSettings() });
  const finalizeImage = replication.get(smcJobKinds.finalizeRun);
  // ContainerImage and TargetInstance runs end in their own finalisation; Image runs in the image's.
  if (finalizeImage !== undefined) replication.set(smcJobKinds.finalizeRun, withTargetDelivery({ ...deps, images, registryUrl: deps.registryUrl }, finalizeImage));
  return new Map([...replication, [instanceMoveJobKind, instanceMoveHandler({ ...deps, onEnd: endEventOfMove })], ...eventHandlers(deps)]);
}
