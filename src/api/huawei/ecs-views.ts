/**
 * Ferry's views in Huawei ECS words (huawei-ecs-api.md): the job of ShowJob, the server of
 * ShowServer, the dedicated hosts of the DeH list. Wire names exactly as the SDK reads them.
 */
import { createHash } from 'node:crypto';
import { errorCatalogue } from '../../core/errors.ts';
import type { InstanceStatus, InstanceView } from '../../fleet/index.ts';
import type { DedicatedHostView } from '../../migration/cold-migration.ts';
import type { InstanceMoveView, MoveState } from '../../migration/instance-move.ts';
import { isoUtc } from '../../migration/validation.ts';

const jobStatus: Record<MoveState, 'INIT' | 'RUNNING' | 'SUCCESS' | 'FAIL'> = {
  queued: 'INIT',
  running: 'RUNNING',
  succeeded: 'SUCCESS',
  failed: 'FAIL',
};

/** ShowJob: one sub-job per server, as ECS reports its batch jobs. */
export function ecsJob(move: InstanceMoveView): Record<string, unknown> {
  const status = jobStatus[move.state];
  const errorCode = move.errorCode === null ? '' : errorCatalogue[move.errorCode].huaweiCode;
  const failReason = move.errorMessage ?? '';
  const times = {
    begin_time: isoUtc(move.startedAtMs ?? move.createdAtMs),
    end_time: move.finishedAtMs === null ? '' : isoUtc(move.finishedAtMs),
  };
  return {
    job_id: move.moveId,
    job_type: 'migrateServer',
    status,
    ...times,
    error_code: errorCode,
    fail_reason: failReason,
    entities: {
      server_id: move.instanceId,
      sub_jobs_total: 1,
      sub_jobs: [
        {
          job_id: createHash('sha256').update(move.jobId).digest('hex').slice(0, 32),
          job_type: 'migrateSingleServer',
          status,
          ...times,
          error_code: errorCode,
          fail_reason: failReason,
          entities: { server_id: move.instanceId, errorcode_message: failReason },
        },
      ],
    },
  };
}

/** ECS statuses, with the OpenStack vm/task/power states the SDK's ServerDetail carries. */
const serverStates: Record<InstanceStatus, { status: string; vmState: string; taskState: string; powerState: number }> = {
  Running: { status: 'ACTIVE', vmState: 'active', taskState: '', powerState: 1 },
  Stopped: { status: 'SHUTOFF', vmState: 'stopped', taskState: '', powerState: 4 },
  Starting: { status: 'SHUTOFF', vmState: 'stopped', taskState: 'powering-on', powerState: 4 },
  Stopping: { status: 'ACTIVE', vmState: 'active', taskState: 'powering-off', powerState: 1 },
  Migrating: { status: 'MIGRATING', vmState: 'stopped', taskState: 'resize_migrating', powerState: 4 },
};

/** ShowServer's `server`. `hostId` is, as in Nova, an opaque hash of the project and the host. */
export function ecsServer(server: InstanceView, projectId: string, timesMs: { createdAtMs: number; updatedAtMs: number }): Record<string, unknown> {
  const state = serverStates[server.status];
  const memoryMib = Math.round(server.memoryGiB * 1024);
  return {
    id: server.id,
    name: server.id,
    status: state.status,
    created: isoUtc(timesMs.createdAtMs),
    updated: isoUtc(timesMs.updatedAtMs),
    tenant_id: projectId,
    user_id: server.accountId,
    hostId: createHash('sha224').update(`${projectId}${server.hostId}`).digest('hex'),
    'OS-EXT-SRV-ATTR:host': server.hostId,
    'OS-EXT-SRV-ATTR:hypervisor_hostname': server.hostId,
    'OS-EXT-SRV-ATTR:instance_name': server.id,
    'OS-EXT-AZ:availability_zone': server.zoneId,
    'OS-EXT-STS:vm_state': state.vmState,
    'OS-EXT-STS:task_state': state.taskState,
    'OS-EXT-STS:power_state': state.powerState,
    flavor: { id: server.instanceType, name: server.instanceType, vcpus: String(server.vcpus), ram: String(memoryMib), disk: '0' },
    metadata: { vpc_id: server.vpcId },
    addresses: {},
    image: { id: '' },
    key_name: '',
    security_groups: [],
    progress: 0,
    description: '',
    'os:scheduler_hints': server.dedicatedHostId === null ? {} : { dedicated_host_id: [server.dedicatedHostId], tenancy: ['dedicated'] },
    'os-extended-volumes:volumes_attached': server.disks.map((d, index) => ({
      id: d.id,
      delete_on_termination: 'true',
      bootIndex: d.kind === 'system' ? '0' : String(index),
      device: `/dev/vd${String.fromCharCode(97 + index)}`,
    })),
  };
}

/** One entry of the DeH list (`dedicated_hosts[]`); memory in MiB, as the DeH API counts it. */
export function ecsDedicatedHost(host: DedicatedHostView, projectId: string): Record<string, unknown> {
  return {
    dedicated_host_id: host.dedicatedHostId,
    name: host.dedicatedHostId,
    auto_placement: 'off',
    availability_zone: host.zoneId,
    state: host.state === 'Available' ? 'available' : 'fault',
    project_id: projectId,
    available_vcpus: host.availableVcpus,
    available_memory: host.availableMemoryMib,
    instance_total: host.instanceIds.length,
    instance_uuids: host.instanceIds,
    host_properties: {
      host_type: host.allowedFamilies?.join(',') ?? 'general',
      host_type_name: host.allowedFamilies?.join(',') ?? 'general',
      vcpus: host.vcpus,
      cores: host.vcpus,
      sockets: host.numaNodes,
      memory: host.memoryMib,
      available_instance_capacities: host.fittingTypes.map((flavor) => ({ flavor })),
    },
  };
}
