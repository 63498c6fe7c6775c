import type { FleetSpec } from './fleet-spec.ts';

/** The fleet file of DESIGN.md, as `serve --demo` and the tests start from it. */
export const demoFleet: FleetSpec = {
  regions: [
    {
      id: 'cn-hangzhou',
      zones: [
        {
          id: 'cn-hangzhou-h',
          vswitches: [{ id: 'vsw-h1', vpcId: 'vpc-1', cidr: '192.168.1.0/24' }],
          hosts: [
            { id: 'host-h1', vcpus: 64, memoryGiB: 256, numaNodes: 2 },
            { id: 'host-h2', vcpus: 32, memoryGiB: 128, numaNodes: 2, dedicatedHostId: 'dh-1', account: 'default' },
          ],
        },
      ],
    },
  ],
  instanceTypes: [{ id: 'ecs.g7.large', family: 'ecs.g7', vcpus: 2, memoryGiB: 8 }],
  instances: [
    {
      id: 'i-1',
      account: 'default',
      host: 'host-h1',
      type: 'ecs.g7.large',
      vswitch: 'vsw-h1',
      status: 'Running',
      disks: [{ id: 'd-1', kind: 'system', category: 'cloud_essd', performanceLevel: 'PL1', sizeGiB: 20, fillMiB: 64 }],
    },
  ],
};
