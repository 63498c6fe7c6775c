import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type InstanceStatus, instanceEvents, instanceMachine, instanceStatuses } from './instance-states.ts';

test('random event walks only reach listed statuses, and a move starts and ends Stopped', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...instanceEvents), { maxLength: 60 }), (events) => {
      let status: InstanceStatus = 'Stopped';
      for (const event of events) {
        const next = instanceMachine.next(status, event);
        if (next === undefined) continue;
        assert.ok(instanceStatuses.includes(next));
        if (next === 'Migrating') assert.equal(status, 'Stopped', 'only a stopped instance starts a cold move');
        if (status === 'Migrating') assert.equal(next, 'Stopped', 'a move ends with the instance stopped');
        status = next;
      }
    }),
  );
});
