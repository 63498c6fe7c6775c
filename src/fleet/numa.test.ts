import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fitOccupants, numaCapacities, splitEvenly } from './numa.ts';

test('capacity splits evenly over NUMA nodes, the remainder to the lower nodes', () => {
  assert.deepEqual(splitEvenly(64, 2), [32, 32]);
  assert.deepEqual(splitEvenly(33, 4), [9, 8, 8, 8]);
  assert.deepEqual(numaCapacities(32, 131072, 2), [
    { vcpus: 16, memoryMib: 65536 },
    { vcpus: 16, memoryMib: 65536 },
  ]);
});

test('occupants keep their node, newcomers go to the freest node, and the first that fits nowhere is named', () => {
  const nodes = numaCapacities(16, 16384, 2);
  const fit = fitOccupants(nodes, [
    { id: 'stays', vcpus: 6, memoryMib: 1024, node: 1, pinned: false },
    { id: 'new', vcpus: 4, memoryMib: 1024, node: undefined, pinned: false },
  ]);
  assert.ok(fit.ok);
  assert.deepEqual([...fit.nodeOf], [['stays', 1], ['new', 0]]);
  assert.deepEqual(fit.used, [{ vcpus: 4, memoryMib: 1024 }, { vcpus: 6, memoryMib: 1024 }]);

  const moved = fitOccupants(numaCapacities(8, 16384, 1), [{ id: 'was-on-node-1', vcpus: 2, memoryMib: 1, node: 1, pinned: false }]);
  assert.ok(moved.ok);
  assert.equal(moved.nodeOf.get('was-on-node-1'), 0, 'a node that went away sends its instances elsewhere');

  const full = fitOccupants(nodes, [
    { id: 'claim', vcpus: 8, memoryMib: 1, node: 0, pinned: true },
    { id: 'a', vcpus: 5, memoryMib: 1, node: undefined, pinned: false },
    { id: 'b', vcpus: 5, memoryMib: 1, node: undefined, pinned: false },
  ]);
  assert.equal(full.ok, false);
  assert.equal(full.ok ? '' : full.misfit.id, 'b');
});
