import assert from 'node:assert/strict';
import { test } from 'node:test';
import { demoFleet } from './demo-fleet.ts';
import { FleetValidationError, parseFleetYaml, planFleet } from './fleet-spec.ts';

function issues(input: unknown): string[] {
  try {
    planFleet(input);
  } catch (err) {
    assert.ok(err instanceof FleetValidationError);
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

test('the DESIGN.md fleet file plans with defaults filled in and memory in MiB', () => {
  const plan = planFleet(demoFleet);
  assert.deepEqual(plan.hosts.map((h) => [h.id, h.memoryMib, h.accountName]), [['host-h1', 262144, null], ['host-h2', 131072, 'default']]);
  assert.deepEqual(plan.disks[0], { id: 'd-1', instanceId: 'i-1', deviceIndex: 0, kind: 'system', category: 'cloud_essd', performanceLevel: 'PL1', sizeGib: 20, fillMib: 64, path: 'instances[0].disks[0]' });
  const yaml = 'instances:\n  - { id: i-9, host: h, type: t, vswitch: v }\n';
  assert.deepEqual(planFleet(parseFleetYaml(yaml)).instances[0], { id: 'i-9', accountName: 'default', hostId: 'h', typeId: 't', vswitchId: 'v', status: 'Running', numaNode: undefined, path: 'instances[0]' });
});

test('structure errors name the path in the file', () => {
  assert.deepEqual(issues({ regions: [{ id: 'r', zones: [{ id: 'z', hosts: [{ id: 'h', vcpus: 'many', memoryGiB: 1, numaNodes: 1 }] }] }] }), [
    'regions[0].zones[0].hosts[0].vcpus: must be integer, not "many"',
  ]);
  assert.deepEqual(issues({ instances: [{ id: 'i', host: 'h', type: 't' }] }), ['instances[0].vswitch: is required']);
  assert.deepEqual(issues({ instanceTypes: [{ id: 'bad id', family: 'f', vcpus: 1, memoryGiB: 1 }] }), ['instanceTypes[0].id: has an invalid format: "bad id"']);
  assert.deepEqual(issues([]), ['(root): must be object, not a list']);
});

test('rules a schema cannot say are checked too', () => {
  const zone = { id: 'z', hosts: [{ id: 'h', vcpus: 2, memoryGiB: 0.0001, numaNodes: 4, account: 'x' }, { id: 'h', vcpus: 4, memoryGiB: 4, numaNodes: 1 }] };
  const disks = [
    { id: 'd', kind: 'system', category: 'cloud_ssd', sizeGiB: 1, fillMiB: 2048 },
    { id: 'd2', kind: 'system', category: 'cloud_ssd', sizeGiB: 1 },
  ];
  assert.deepEqual(issues({ regions: [{ id: 'r', zones: [zone] }], instances: [{ id: 'i', host: 'h', type: 't', vswitch: 'v', disks }] }), [
    'regions[0].zones[0].hosts[0].numaNodes: 4 NUMA nodes need at least as many vCPUs (host has 2)',
    'regions[0].zones[0].hosts[0].account: only a dedicated host has an owning account: set dedicatedHostId or remove account',
    'regions[0].zones[0].hosts[0].memoryGiB: must be a whole number of MiB (a multiple of 1/1024 GiB), not 0.0001',
    'regions[0].zones[0].hosts[1].id: duplicate host id h (first at regions[0].zones[0].hosts[0].id)',
    'instances[0].disks[0].fillMiB: 2048 MiB of data does not fit a 1 GiB disk',
    'instances[0].disks[1].kind: an instance has at most one system disk',
  ]);
});
