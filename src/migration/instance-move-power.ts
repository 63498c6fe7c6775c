/**
 * Powering an instance off and on around a move, as guarded status changes of the fleet's
 * instance table (fleet/instance-states.ts) with the compute driver call in between. Both are
 * re-entrant: after a crash a Stopping instance is stopped and a Starting one started, again.
 */
import type { Clock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import { type ComputeDriver, type InstanceStatus, transitionInstance } from '../fleet/index.ts';
import type { Database, Db } from '../store/database.ts';
import type { Trx } from '../engine/job-store.ts';

export async function instanceStatus(db: Db | Trx, instanceId: string): Promise<InstanceStatus> {
  const row = await db.selectFrom('instances').select('status').where('id', '=', instanceId).executeTakeFirst();
  if (row === undefined) throw new AppError('InstanceNotFound', { instanceId });
  return row.status as InstanceStatus;
}

async function runtimeOf(db: Db, instanceId: string): Promise<{ instanceId: string; hostId: string; diskPaths: string[] }> {
  const instance = await db.selectFrom('instances').select('host_id').where('id', '=', instanceId).executeTakeFirstOrThrow();
  const disks = await db.selectFrom('disks').select('path').where('instance_id', '=', instanceId).orderBy('device_index').execute();
  return { instanceId, hostId: instance.host_id, diskPaths: disks.map((d) => d.path) };
}

/** Running → Stopping → (driver stop) → Stopped. A stopped (or migrating) instance is left alone. */
export async function powerOff(database: Database, driver: ComputeDriver, clock: Clock, instanceId: string, signal: AbortSignal): Promise<void> {
  const { db } = database;
  let status = await instanceStatus(db, instanceId);
  if (status === 'Stopped' || status === 'Migrating') return;
  if (status === 'Running' && !(await transitionInstance(db, instanceId, 'stop', clock.nowMs()))) status = await instanceStatus(db, instanceId);
  else if (status === 'Running') status = 'Stopping';
  if (status !== 'Stopping') throw new AppError('InstanceStatusInvalid', { instanceId, status, action: 'stopping it for a move', allowed: 'Running or Stopped' });
  await driver.stop(await runtimeOf(db, instanceId), signal);
  await transitionInstance(db, instanceId, 'stopped', clock.nowMs());
}

/** Stopped → Starting → (driver start) → Running; a failed start goes back to Stopped. A running instance is left alone. */
export async function powerOn(database: Database, driver: ComputeDriver, clock: Clock, instanceId: string, signal: AbortSignal): Promise<void> {
  const { db } = database;
  let status = await instanceStatus(db, instanceId);
  if (status === 'Running') return;
  if (status === 'Stopped' && !(await transitionInstance(db, instanceId, 'start', clock.nowMs()))) status = await instanceStatus(db, instanceId);
  else if (status === 'Stopped') status = 'Starting';
  if (status !== 'Starting') throw new AppError('InstanceStatusInvalid', { instanceId, status, action: 'starting it after a move', allowed: 'Stopped' });
  try {
    await driver.start(await runtimeOf(db, instanceId), signal);
  } catch (err) {
    await transitionInstance(db, instanceId, 'startFailed', clock.nowMs());
    throw err;
  }
  await transitionInstance(db, instanceId, 'started', clock.nowMs());
}
