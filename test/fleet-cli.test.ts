/** `ferry fleet apply|show` and `ferry instance show` as a user runs them, against a real server. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CreatedKey, type FerryWithKey, ferryCli, startFerryWithKey } from './support/api.ts';
import { freePort } from './support/ports.ts';

const fleetYaml = `
regions:
  - id: cn-hangzhou
    zones:
      - id: cn-hangzhou-h
        vswitches: [{ id: vsw-h1, vpcId: vpc-1, cidr: 192.168.1.0/24 }]
        hosts:
          - { id: host-h1, vcpus: 64, memoryGiB: 256, numaNodes: 2 }
          - { id: host-h2, vcpus: 32, memoryGiB: 128, numaNodes: 2, dedicatedHostId: dh-1, account: default }
instanceTypes:
  - { id: ecs.g7.large, family: ecs.g7, vcpus: 2, memoryGiB: 8 }
instances:
  - id: i-1
    account: default
    host: host-h1
    type: ecs.g7.large
    vswitch: vsw-h1
    status: Running
    disks:
      - { id: d-1, kind: system, category: cloud_essd, performanceLevel: PL1, sizeGiB: 1, fillMiB: 4 }
`;

function env(ferry: FerryWithKey, key: CreatedKey = ferry.key): NodeJS.ProcessEnv {
  return { FERRY_ENDPOINT: ferry.server.url, FERRY_ACCESS_KEY_ID: key.accessKeyId, FERRY_ACCESS_KEY_SECRET: key.accessKeySecret };
}

describe('ferry fleet and instance commands', () => {
  let ferry: FerryWithKey;
  let file: string;
  before(async () => {
    ferry = await startFerryWithKey();
    file = join(ferry.data, 'fleet.yaml');
    writeFileSync(file, fleetYaml);
  });
  after(() => ferry.close());

  it('applies a fleet file, then finds everything unchanged on a second apply', async () => {
    const first = JSON.parse(await ferryCli(['fleet', 'apply', '-f', file, '--json'], env(ferry))) as { counts: Record<string, number> };
    assert.ok(first.counts['created']! >= 7, JSON.stringify(first.counts));
    const second = JSON.parse(await ferryCli(['fleet', 'apply', '-f', file, '--json'], env(ferry))) as { counts: Record<string, number> };
    assert.deepEqual([second.counts['created'], second.counts['updated']], [0, 0]);
    const human = await ferryCli(['fleet', 'apply', '-f', file], env(ferry));
    assert.match(human, /created 0, updated 0, unchanged \d+/);
  });

  it('shows an instance with its host, zone and disks with backing files', async () => {
    const view = JSON.parse(await ferryCli(['instance', 'show', 'i-1', '--json'], env(ferry))) as Record<string, unknown>;
    assert.deepEqual([view['hostId'], view['zoneId'], view['dedicatedHostId'], view['status'], view['instanceType']], ['host-h1', 'cn-hangzhou-h', null, 'Running', 'ecs.g7.large']);
    const disks = view['disks'] as Array<Record<string, unknown>>;
    assert.equal(disks.length, 1);
    assert.deepEqual([disks[0]?.['id'], disks[0]?.['kind'], disks[0]?.['category'], disks[0]?.['performanceLevel'], disks[0]?.['sizeGiB']], ['d-1', 'system', 'cloud_essd', 'PL1', 1]);
    assert.match(String(disks[0]?.['path']), /pools\/host-h1\//);
    const fleet = JSON.parse(await ferryCli(['fleet', 'show', '--json'], env(ferry))) as { regions: Array<{ zones: Array<{ hosts: Array<{ id: string }> }> }> };
    assert.deepEqual(fleet.regions.flatMap((r) => r.zones.flatMap((z) => z.hosts.map((h) => h.id))).sort(), ['host-h1', 'host-h2']);
  });

  it('keeps other accounts out of the fleet and of instances that are not theirs', async () => {
    const stranger = await ferry.createKey('stranger');
    await assert.rejects(ferryCli(['instance', 'show', 'i-1', '--json'], env(ferry, stranger)), /NotFound/);
    await assert.rejects(ferryCli(['fleet', 'apply', '-f', file], env(ferry, stranger)), /Forbidden\.RAM|ForbiddenRam/);
  });

  it('refuses a fleet file that names an unknown host, changing nothing', async () => {
    const bad = join(ferry.data, 'bad.yaml');
    writeFileSync(bad, fleetYaml.replace('host: host-h1', 'host: host-nope').replace('id: i-1', 'id: i-2'));
    await assert.rejects(ferryCli(['fleet', 'apply', '-f', bad], env(ferry)), /host-nope/);
    await assert.rejects(ferryCli(['instance', 'show', 'i-2'], env(ferry)), /NotFound/);
  });

  it('says where it looked, without a stack trace, when no server answers there', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    await assert.rejects(ferryCli(['fleet', 'show', '--json'], { ...env(ferry), FERRY_ENDPOINT: endpoint }), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 1);
      assert.equal(err.stderr, `ferry: cannot reach Ferry at ${endpoint} (connect ECONNREFUSED ${endpoint.slice('http://'.length)}); start it with ferry serve, or set FERRY_ENDPOINT to where it listens\n`);
      return true;
    });
  });
});
