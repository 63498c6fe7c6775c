import { table } from '../core/state-machine.ts';

export const instanceStatuses = ['Stopped', 'Starting', 'Running', 'Stopping', 'Migrating'] as const;
export type InstanceStatus = (typeof instanceStatuses)[number];

/** Statuses a fleet file may declare; the others are only reached through operations. */
export const declarableStatuses = ['Running', 'Stopped'] as const satisfies readonly InstanceStatus[];
export type DeclarableStatus = (typeof declarableStatuses)[number];

export const instanceEvents = ['start', 'started', 'startFailed', 'stop', 'stopped', 'migrate', 'migrated', 'migrationRolledBack'] as const;
export type InstanceEvent = (typeof instanceEvents)[number];

/**
 * An instance's life. A cold move needs a stopped instance and ends stopped, on the target host
 * when it committed (`migrated`) or on the source when it was rolled back. Every status holds its
 * NUMA capacity: a stopped instance keeps its slot, as on a dedicated host.
 */
export const instanceMachine = table(instanceStatuses, instanceEvents, [
  ['Stopped', 'start', 'Starting'],
  ['Starting', 'started', 'Running'],
  ['Starting', 'startFailed', 'Stopped'],
  ['Running', 'stop', 'Stopping'],
  ['Stopping', 'stopped', 'Stopped'],
  ['Stopped', 'migrate', 'Migrating'],
  ['Migrating', 'migrated', 'Stopped'],
  ['Migrating', 'migrationRolledBack', 'Stopped'],
]);

export function isInstanceStatus(value: string): value is InstanceStatus {
  return (instanceStatuses as readonly string[]).includes(value);
}
