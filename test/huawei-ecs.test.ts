/**
 * Huawei ECS cold migration through the official SDK (@huaweicloud/huaweicloud-sdk-ecs) against a
 * real `ferry serve`: MigrateServer to a dedicated host and back to the public pool, ShowJob,
 * ShowServer, the DeH list, every rule's error code, and hand-signed requests no SDK would send,
 * on SQLite and on PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sdkSignature, sdkStringToSign } from '../src/api/huawei/signature.ts';
import { showInstance } from '../src/fleet/index.ts';
import type { Database } from '../src/store/database.ts';
import { type CreatedKey, type FerryWithKey, startFerryWithKey } from './support/api.ts';
import {
  type EcsClient,
  applyServerFleet,
  assertCapacityCountedOnce,
  diskDigests,
  ecsClient,
  ecsModule,
  eventually,
  huaweiError,
  openServerDatabase,
  sha256File,
} from './support/moves.ts';
import { dialects } from './support/dialects.ts';
import { freshPostgresDatabase } from './support/postgres.ts';

const fleet = {
  regions: [
    {
      id: 'cn-north-4',
      zones: [
        {
          id: 'cn-north-4a',
          vswitches: [{ id: 'subnet-1', vpcId: 'vpc-1', cidr: '192.168.0.0/24' }],
          hosts: [
            { id: 'pub-1', vcpus: 32, memoryGiB: 128, numaNodes: 2 },
            { id: 'pub-2', vcpus: 32, memoryGiB: 128, numaNodes: 2 },
            { id: 'deh-a', vcpus: 16, memoryGiB: 64, numaNodes: 2, dedicatedHostId: 'dh-a' },
            { id: 'deh-small', vcpus: 8, memoryGiB: 32, numaNodes: 2, dedicatedHostId: 'dh-small' },
            { id: 'deh-other', vcpus: 16, memoryGiB: 64, numaNodes: 2, dedicatedHostId: 'dh-other', account: 'other' },
          ],
        },
      ],
    },
  ],
  instanceTypes: [
    { id: 's6.large.2', family: 's6', vcpus: 2, memoryGiB: 4 },
    { id: 's6.2xlarge.3', family: 's6', vcpus: 6, memoryGiB: 12 },
  ],
  instances: [
    {
      id: 'i-stopped',
      host: 'pub-1',
      type: 's6.large.2',
      vswitch: 'subnet-1',
      status: 'Stopped',
      disks: [
        { id: 'd-sys', kind: 'system', category: 'cloud_essd', sizeGiB: 1, fillMiB: 8 },
        { id: 'd-data', kind: 'data', category: 'cloud_ssd', sizeGiB: 1, fillMiB: 4 },
      ],
    },
    { id: 'i-running', host: 'pub-1', type: 's6.large.2', vswitch: 'subnet-1', status: 'Running', disks: [{ id: 'd-run', kind: 'system', category: 'cloud_essd', sizeGiB: 1, fillMiB: 1 }] },
    { id: 'i-big', host: 'pub-2', type: 's6.2xlarge.3', vswitch: 'subnet-1', status: 'Stopped', disks: [{ id: 'd-big', kind: 'system', category: 'cloud_essd', sizeGiB: 1, fillMiB: 1 }] },
    { id: 'i-other', account: 'other', host: 'pub-2', type: 's6.large.2', vswitch: 'subnet-1', status: 'Stopped' },
  ],
};

type Job = Record<string, unknown> & { status?: string; entities?: { server_id?: string; sub_jobs_total?: number; sub_jobs?: Array<Record<string, unknown>> } };

async function migrate(client: EcsClient, serverId: string, dedicatedHostId?: string | null): Promise<string> {
  const ecs = ecsModule();
  const body = new ecs.MigrateServerRequestBody();
  if (dedicatedHostId === null) body.withMigrate(null);
  else if (dedicatedHostId !== undefined) body.withMigrate(new ecs.MigrateServerOption().withDedicatedHostId(dedicatedHostId));
  const answer = await client.migrateServer(new ecs.MigrateServerRequest().withServerId(serverId).withBody(body));
  assert.equal(answer['httpStatusCode'], 200);
  const jobId = answer['job_id'];
  assert.ok(typeof jobId === 'string' && /^[0-9a-f]{32}$/.test(jobId), `job_id ${String(jobId)}`);
  return jobId;
}

async function finishedJob(client: EcsClient, jobId: string): Promise<Job> {
  const ecs = ecsModule();
  return eventually(async () => {
    const job = (await client.showJob(new ecs.ShowJobRequest().withJobId(jobId))) as Job;
    return job.status === 'SUCCESS' || job.status === 'FAIL' ? job : undefined;
  }, `job ${jobId}`);
}

async function server(client: EcsClient, serverId: string): Promise<Record<string, unknown>> {
  const ecs = ecsModule();
  return (await client.showServer(new ecs.ShowServerRequest().withServerId(serverId)))['server'] as Record<string, unknown>;
}

/** A request signed by hand with SDK-HMAC-SHA256, with whatever the test changes. */
async function signedFetch(
  url: string,
  key: CreatedKey,
  request: { method: string; path: string; body?: string; projectId?: string; sdkDate?: string; signedHeaders?: string[]; secret?: string },
): Promise<{ status: number; body: Record<string, unknown>; requestId: string | null }> {
  const host = new URL(url).host;
  const sdkDate = request.sdkDate ?? new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  const headers = new Map<string, string>([
    ['content-type', 'application/json;charset=UTF-8'],
    ['host', host],
    ['x-project-id', request.projectId ?? key.projectId],
    ['x-sdk-date', sdkDate],
  ]);
  const signedHeaders = request.signedHeaders ?? [...headers.keys()];
  const body = Buffer.from(request.body ?? '');
  const stringToSign = sdkStringToSign({ method: request.method, path: request.path, query: new Map(), headers, body }, signedHeaders, sdkDate);
  const signature = sdkSignature(stringToSign, request.secret ?? key.accessKeySecret);
  const response = await fetch(`${url}${request.path}`, {
    method: request.method,
    headers: { ...Object.fromEntries([...headers].filter(([name]) => name !== 'host')), authorization: `SDK-HMAC-SHA256 Access=${key.accessKeyId}, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}` },
    ...(request.body === undefined ? {} : { body }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, requestId: response.headers.get('x-request-id') };
}

for (const dialect of dialects) {
  describe(`Huawei ECS cold migration through the SDK [${dialect}]`, () => {
    let ferry: FerryWithKey;
    let database: Database;
    let client: EcsClient;
    let other: CreatedKey;

    before(async () => {
      const db = dialect === 'postgres' ? await freshPostgresDatabase() : undefined;
      ferry = await startFerryWithKey({ ...(db === undefined ? {} : { db }), extra: ['--poll-ms', '100'] });
      other = await ferry.createKey('other');
      database = await openServerDatabase(ferry);
      await applyServerFleet(ferry, database, fleet);
      client = ecsClient(ferry.server.url, ferry.key);
    });
    after(async () => {
      await database.close();
      await ferry.close();
    });

    it('moves a stopped server onto a dedicated host: job SUCCESS, ShowServer on the DeH, disk bytes unchanged', async () => {
      const before = await diskDigests(database, 'i-stopped');
      const systemDiskSha256 = await sha256File((await showInstance(database, 'i-stopped')).disks[0]?.path ?? '');
      const jobId = await migrate(client, 'i-stopped', 'dh-a');
      const job = await finishedJob(client, jobId);
      assert.equal(job.status, 'SUCCESS', JSON.stringify(job));
      assert.equal(job['job_id'], jobId);
      assert.equal(job['error_code'], '');
      assert.match(String(job['begin_time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.match(String(job['end_time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(job.entities?.server_id, 'i-stopped');
      assert.equal(job.entities?.sub_jobs_total, 1);
      assert.equal(job.entities?.sub_jobs?.[0]?.['status'], 'SUCCESS');

      const shown = await server(client, 'i-stopped');
      assert.equal(shown['status'], 'SHUTOFF', 'a cold migration leaves the server stopped');
      assert.equal(shown['OS-EXT-SRV-ATTR:host'], 'deh-a');
      assert.equal(shown['OS-EXT-AZ:availability_zone'], 'cn-north-4a');
      assert.deepEqual(shown['flavor'], { id: 's6.large.2', name: 's6.large.2', vcpus: '2', ram: '4096', disk: '0' });
      assert.deepEqual((shown['os:scheduler_hints'] as { dedicated_host_id?: string[] }).dedicated_host_id, ['dh-a']);
      assert.match(String(shown['hostId']), /^[0-9a-f]{56}$/);

      assert.deepEqual(await diskDigests(database, 'i-stopped'), before);
      const moved = await showInstance(database, 'i-stopped');
      assert.equal(await sha256File(moved.disks[0]?.path ?? ''), systemDiskSha256);
      assert.ok(moved.disks.every((d) => d.hostId === 'deh-a'));
      await assertCapacityCountedOnce(database);
    });

    it('already on that dedicated host: Ecs.0221; back to the public pool with {"migrate":null} and with {}', async () => {
      await huaweiError(migrate(client, 'i-stopped', 'dh-a'), 400, 'Ecs.0221');
      const before = await diskDigests(database, 'i-stopped');
      const toPool = await finishedJob(client, await migrate(client, 'i-stopped', null));
      assert.equal(toPool.status, 'SUCCESS', JSON.stringify(toPool));
      const onPool = await server(client, 'i-stopped');
      assert.ok(['pub-1', 'pub-2'].includes(String(onPool['OS-EXT-SRV-ATTR:host'])), 'the public pool, never a dedicated host');
      assert.deepEqual(onPool['os:scheduler_hints'], {});
      assert.deepEqual(await diskDigests(database, 'i-stopped'), before);
      const again = await finishedJob(client, await migrate(client, 'i-stopped'));
      assert.equal(again.status, 'SUCCESS', JSON.stringify(again));
      assert.notEqual((await server(client, 'i-stopped'))['OS-EXT-SRV-ATTR:host'], onPool['OS-EXT-SRV-ATTR:host'], 'moved off its host');
      assert.deepEqual(await diskDigests(database, 'i-stopped'), before);
      await assertCapacityCountedOnce(database);
    });

    it('refuses a running server (Ecs.0100), an unknown or foreign server (Ecs.0114, 404), a foreign DeH, an unknown job', async () => {
      const running = await huaweiError(migrate(client, 'i-running', 'dh-a'), 409, 'Ecs.0100');
      assert.match(running.errorMsg, /i-running is Running; cold migration needs it Stopped/);
      assert.ok(running.requestId !== undefined && running.requestId !== '', 'the request id comes back in X-Request-Id');
      await huaweiError(migrate(client, 'i-nope', 'dh-a'), 404, 'Ecs.0114');
      await huaweiError(migrate(client, 'i-other', 'dh-a'), 404, 'Ecs.0114');
      await huaweiError(server(client, 'i-other'), 404, 'Ecs.0114');
      await huaweiError(migrate(client, 'i-big', 'dh-other'), 400, 'Ecs.0005');
      await huaweiError(migrate(client, 'i-big', 'dh-nope'), 400, 'Ecs.0005');
      await huaweiError(client.showJob(new (ecsModule().ShowJobRequest)().withJobId('0'.repeat(32))), 404, 'Common.0404');
      assert.equal((await server(client, 'i-running'))['status'], 'ACTIVE');
    });

    it('no room on a single NUMA node of the dedicated host: the job FAILs with Ecs.0319 and the dry run’s reason', async () => {
      const before = await showInstance(database, 'i-big');
      const job = await finishedJob(client, await migrate(client, 'i-big', 'dh-small'));
      assert.equal(job.status, 'FAIL');
      assert.equal(job['error_code'], 'Ecs.0319');
      assert.match(String(job['fail_reason']), /deh-small: needs 6 vCPU \+ 12 GiB on one NUMA node; free node 0: 4 vCPU \+ 16 GiB, node 1: 4 vCPU \+ 16 GiB/);
      assert.equal(job.entities?.sub_jobs?.[0]?.['error_code'], 'Ecs.0319');
      const after = await showInstance(database, 'i-big');
      assert.equal(after.hostId, before.hostId);
      assert.equal(after.status, 'Stopped');
      await assertCapacityCountedOnce(database);
    });

    it('lists the account’s dedicated hosts with what they can still take', async () => {
      const answer = await signedFetch(ferry.server.url, ferry.key, { method: 'GET', path: `/v1.0/${ferry.key.projectId}/dedicated-hosts` });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const hosts = answer.body['dedicated_hosts'] as Array<Record<string, unknown>>;
      assert.deepEqual(hosts.map((h) => h['dedicated_host_id']), ['dh-a', 'dh-small'], 'never another account’s');
      const small = hosts[1] ?? {};
      assert.equal(small['available_vcpus'], 8);
      assert.equal(small['available_memory'], 32 * 1024);
      assert.deepEqual((small['host_properties'] as { available_instance_capacities: unknown }).available_instance_capacities, [{ flavor: 's6.large.2' }]);
    });

    it('answers gateway errors for a bad signature, an expired X-Sdk-Date, unsigned host, another account’s project, unknown paths', async () => {
      const url = ferry.server.url;
      const path = `/v1/${ferry.key.projectId}/cloudservers/i-stopped`;
      const ok = await signedFetch(url, ferry.key, { method: 'GET', path });
      assert.equal(ok.status, 200);

      const forged = await signedFetch(url, ferry.key, { method: 'GET', path, secret: 'not-the-secret' });
      assert.equal(forged.status, 401);
      assert.equal(forged.body['error_code'], 'APIGW.0301');
      assert.equal(forged.body['request_id'], forged.requestId);
      assert.match(String(forged.body['error_msg']), /signature is not matched/);

      const old = new Date(Date.now() - 16 * 60_000).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
      const expired = await signedFetch(url, ferry.key, { method: 'GET', path, sdkDate: old });
      assert.deepEqual([expired.status, expired.body['error_code']], [401, 'APIGW.0301']);
      assert.match(String(expired.body['error_msg']), /expired/);

      const hostless = await signedFetch(url, ferry.key, { method: 'GET', path, signedHeaders: ['content-type', 'x-project-id', 'x-sdk-date'] });
      assert.deepEqual([hostless.status, hostless.body['error_code']], [401, 'APIGW.0301']);
      assert.match(String(hostless.body['error_msg']), /SignedHeaders must include host/);

      // The other account's key with this account's project id, signed correctly.
      const foreign = await signedFetch(url, other, { method: 'GET', path, projectId: ferry.key.projectId });
      assert.deepEqual([foreign.status, foreign.body['error_code']], [401, 'APIGW.0301']);
      assert.match(String(foreign.body['error_msg']), /does not belong to the account/);
      await huaweiError(server(ecsClient(url, other, ferry.key.projectId), 'i-stopped'), 401, 'APIGW.0301');

      const unknown = await signedFetch(url, ferry.key, { method: 'GET', path: `/v1/${ferry.key.projectId}/cloudservers/i-stopped/nothing` });
      assert.deepEqual([unknown.status, unknown.body['error_code']], [404, 'APIGW.0101']);

      const badBody = await signedFetch(url, ferry.key, { method: 'POST', path: `${path}/migrate`, body: '{"migrate":"dh-a"}' });
      assert.equal(badBody.status, 400);
      assert.deepEqual((badBody.body['error'] as { code: string }).code, 'Ecs.0005');
    });
  });
}
