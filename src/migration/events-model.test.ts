import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type EventStatus, eventMachine, eventStatuses, eventTarget, eventTransitions, finalEventStatuses, openEventStatuses, raisableEventTypes, typesHandledBy } from './events-model.ts';

test('random walks from Inquiring reach only listed statuses; an ended event never changes; executing comes only from an answer or the deadline', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...eventTransitions), { maxLength: 40 }), (walk) => {
      let status: EventStatus = 'Inquiring';
      for (const transition of walk) {
        const next = eventMachine.next(status, transition);
        if (next === undefined) continue;
        assert.ok(eventStatuses.includes(next));
        assert.ok(!finalEventStatuses.includes(status), `${status} is final but ${transition} left it`);
        if (next === 'Executing' && status !== 'Executing') assert.ok(transition === 'execute' || transition === 'expire');
        if (transition === 'expire') assert.equal(status, 'Inquiring', 'the system executes only what nobody answered');
        if (next === 'Executed' || next === 'Failed') assert.equal(status, 'Executing', 'only a running event succeeds or fails');
        if (next === 'Canceled') assert.notEqual(status, 'Executing', 'a running event is not canceled');
        status = next;
      }
      assert.equal(openEventStatuses.includes(status), !finalEventStatuses.includes(status));
    }),
  );
});

test('every status is reachable from Inquiring, and every raisable type is handled by exactly one action', () => {
  const seen = new Set<EventStatus>(['Inquiring']);
  for (let grew = true; grew; ) {
    grew = false;
    for (const t of eventMachine.transitions) {
      if (seen.has(t.from) && !seen.has(t.to)) {
        seen.add(t.to);
        grew = true;
      }
    }
  }
  assert.deepEqual([...seen].sort(), [...eventStatuses].sort());
  assert.deepEqual([...finalEventStatuses].sort(), ['Avoided', 'Canceled', 'Executed', 'Failed']);
  const handled = [...typesHandledBy('migrate'), ...typesHandledBy('redeploy'), ...typesHandledBy('reboot')];
  assert.deepEqual([...handled].sort(), [...raisableEventTypes].sort());
  assert.deepEqual(typesHandledBy('migrate'), ['Instance:SystemUpgrade.Migrate']);
  for (const transition of eventTransitions) assert.ok(eventStatuses.includes(eventTarget(transition)));
});
