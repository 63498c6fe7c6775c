import assert from 'node:assert/strict';
import { it } from 'node:test';
import { activeJobStatesAt0007 } from '../store/migrations/0007-smc-replication.ts';
import {
  activeJobStates,
  allowedStatusesFor,
  businessStatusOf,
  reachableStates,
  replicationJobEvents,
  replicationJobMachine,
  replicationJobStates,
  statusOf,
} from './replication-job-states.ts';

it('starts only from Ready, Stopped or InError, and stops only a run that has not reached Processing', () => {
  assert.deepEqual(new Set(replicationJobMachine.sourcesOf('start').map(statusOf)), new Set(['Ready', 'Stopped', 'InError']));
  assert.deepEqual(replicationJobMachine.sourcesOf('stop'), ['Running/Preparing', 'Running/Syncing']);
  assert.equal(allowedStatusesFor('start'), 'Ready, Stopped, InError');
  assert.equal(allowedStatusesFor('stop'), 'Running (Preparing), Running (Syncing)');
});

it('reports the documented Status and BusinessStatus values', () => {
  assert.deepEqual(new Set(replicationJobStates.map(statusOf)), new Set(['Ready', 'Running', 'Stopped', 'InError', 'Finished', 'Waiting', 'Expired', 'Deleting']));
  assert.deepEqual(new Set(replicationJobStates.map(businessStatusOf).filter((b) => b !== '')), new Set(['Preparing', 'Syncing', 'Processing', 'Cleaning']));
});

it('holds the source in exactly the active states the database index lists', () => {
  assert.deepEqual(new Set(activeJobStates.map(statusOf)), new Set(['Ready', 'Running', 'Stopped', 'Waiting', 'InError', 'Expired']));
  assert.deepEqual([...activeJobStates].sort(), [...activeJobStatesAt0007].sort());
});

it('reaches every state from Ready, ends only in Deleting, and lets a finished job only be deleted', () => {
  assert.deepEqual(reachableStates('Ready'), new Set(replicationJobStates));
  const terminal = replicationJobStates.filter((s) => replicationJobEvents.every((e) => !replicationJobMachine.can(s, e)));
  assert.deepEqual(terminal, ['Deleting/Cleaning']);
  assert.deepEqual(replicationJobEvents.filter((e) => replicationJobMachine.can('Finished', e)), ['delete']);
  for (const state of replicationJobStates) assert.ok(reachableStates(state).has('Deleting/Cleaning'), `${state} can always be deleted in the end`);
});
