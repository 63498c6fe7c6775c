import { table } from '../core/state-machine.ts';

/**
 * A replication job's state is the pair the API reports, `Status/BusinessStatus`, as one value;
 * BusinessStatus is empty outside Running and Deleting (smc-api.md §3).
 */
export const replicationJobStates = [
  'Ready',
  'Running/Preparing',
  'Running/Syncing',
  'Running/Processing',
  'Stopped',
  'InError',
  'Waiting',
  'Finished',
  'Expired',
  'Deleting/Cleaning',
] as const;
export type ReplicationJobState = (typeof replicationJobStates)[number];

/**
 * `start` is StartReplicationJob; `runDue` a scheduled start or an incremental job's next run;
 * `cutOver` ends an incremental job with a last run, `cutOverNow` without one; `syncStarted`,
 * `dataSent` and `fail` come from the agent; `finish` and `await` end a run once its image is
 * built (a run-once or cut-over job finishes, an incremental one waits for its next run).
 */
export const replicationJobEvents = ['start', 'runDue', 'cutOver', 'cutOverNow', 'syncStarted', 'dataSent', 'finish', 'await', 'fail', 'stop', 'expire', 'delete'] as const;
export type ReplicationJobEvent = (typeof replicationJobEvents)[number];

/** The job's life: every transition the services and workflows may make. */
export const replicationJobMachine = table(replicationJobStates, replicationJobEvents, [
  ['Ready', 'start', 'Running/Preparing'],
  ['Stopped', 'start', 'Running/Preparing'],
  ['InError', 'start', 'Running/Preparing'],
  ['Ready', 'runDue', 'Running/Preparing'],
  ['Waiting', 'runDue', 'Running/Preparing'],
  ['Waiting', 'cutOver', 'Running/Preparing'],
  ['Waiting', 'cutOverNow', 'Finished'],
  ['Running/Preparing', 'syncStarted', 'Running/Syncing'],
  ['Running/Preparing', 'dataSent', 'Running/Processing'],
  ['Running/Syncing', 'dataSent', 'Running/Processing'],
  ['Running/Processing', 'finish', 'Finished'],
  ['Running/Processing', 'await', 'Waiting'],
  ['Running/Preparing', 'fail', 'InError'],
  ['Running/Syncing', 'fail', 'InError'],
  ['Running/Processing', 'fail', 'InError'],
  ['Running/Preparing', 'stop', 'Stopped'],
  ['Running/Syncing', 'stop', 'Stopped'],
  ['Ready', 'expire', 'Expired'],
  ['Running/Preparing', 'expire', 'Expired'],
  ['Running/Syncing', 'expire', 'Expired'],
  ['Running/Processing', 'expire', 'Expired'],
  ['Stopped', 'expire', 'Expired'],
  ['InError', 'expire', 'Expired'],
  ['Waiting', 'expire', 'Expired'],
  ['Ready', 'delete', 'Deleting/Cleaning'],
  ['Stopped', 'delete', 'Deleting/Cleaning'],
  ['InError', 'delete', 'Deleting/Cleaning'],
  ['Finished', 'delete', 'Deleting/Cleaning'],
  ['Waiting', 'delete', 'Deleting/Cleaning'],
  ['Expired', 'delete', 'Deleting/Cleaning'],
]);

/** The API's Status of a state: the part before the slash. */
export function statusOf(state: ReplicationJobState): string {
  return state.split('/')[0] ?? state;
}

/** The API's BusinessStatus of a state; empty when the state has none. */
export function businessStatusOf(state: ReplicationJobState): string {
  return state.split('/')[1] ?? '';
}

export const replicationJobStatuses = [...new Set(replicationJobStates.map(statusOf))];
export const businessStatuses = [...new Set(replicationJobStates.map(businessStatusOf).filter((b) => b !== ''))];

/** Every state whose Status is `status`, for SQL filters. */
export function statesWithStatus(status: string): ReplicationJobState[] {
  return replicationJobStates.filter((s) => statusOf(s) === status);
}

/** Every state whose BusinessStatus is `business`, for SQL filters. */
export function statesWithBusinessStatus(business: string): ReplicationJobState[] {
  return replicationJobStates.filter((s) => businessStatusOf(s) === business);
}

/** States in which a job holds its source: at most one such job per source (smc-api.md §3). */
export const activeJobStates: readonly ReplicationJobState[] = replicationJobStates.filter((s) =>
  ['Ready', 'Running', 'Stopped', 'Waiting', 'InError', 'Expired'].includes(statusOf(s)),
);

/** States in which a run is under way: the job has a current run and an open agent command. */
export const runningJobStates: readonly ReplicationJobState[] = statesWithStatus('Running');

/** A state as messages name it: `Running (Syncing)`, `Ready`. */
export function describeState(state: ReplicationJobState): string {
  const business = businessStatusOf(state);
  return business === '' ? statusOf(state) : `${statusOf(state)} (${business})`;
}

/**
 * The states `event` may leave from, for ReplicationJob.InvalidStatus messages: a Status alone
 * when every state of it qualifies, else each qualifying `Status (BusinessStatus)`.
 */
export function allowedStatusesFor(event: ReplicationJobEvent): string {
  const sources = replicationJobMachine.sourcesOf(event);
  const names = sources.map((s) => (statesWithStatus(statusOf(s)).every((t) => sources.includes(t)) ? statusOf(s) : describeState(s)));
  return [...new Set(names)].join(', ');
}

/** Whether a stored text is a state of the table. */
export function isReplicationJobState(value: string): value is ReplicationJobState {
  return (replicationJobStates as readonly string[]).includes(value);
}

/** Every state reachable from `from` along the table, `from` included (tests walk it). */
export function reachableStates(from: ReplicationJobState): Set<ReplicationJobState> {
  const seen = new Set<ReplicationJobState>([from]);
  const queue = [from];
  for (let state = queue.shift(); state !== undefined; state = queue.shift()) {
    for (const event of replicationJobEvents) {
      const next = replicationJobMachine.next(state, event);
      if (next !== undefined && !seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return seen;
}
