/**
 * A server killed (SIGKILL) in the middle of an event's migration: on restart the event's move
 * resumes (or rolls back) and the event ends accordingly, with every disk byte-for-byte intact and
 * the instance's capacity counted once.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { callApi } from '../src/cli/api-client.ts';
import type { EventView } from '../src/migration/events.ts';
import { type FerryWithKey, ferryCli, startFerryWithKey } from './support/api.ts';
import { dialects } from './support/dialects.ts';
import { cliEnv, credsOf, ensClient, sha256File, showInstance, waitForEvent } from './support/ens.ts';
import { type FerryServer, startFerry } from './support/ferry-process.ts';
import { assertCapacityCountedOnce, openServerDatabase } from './support/moves.ts';
import { freshPostgresDatabase } from './support/postgres.ts';

const fleetYaml = `
regions:
  - id: cn-hangzhou
    zones:
      - id: cn-hangzhou-h
        vswitches: [{ id: vsw-h1, vpcId: vpc-1, cidr: 192.168.1.0/24 }]
        hosts:
          - { id: host-a, vcpus: 16, memoryGiB: 64, numaNodes: 2 }
          - { id: host-b, vcpus: 16, memoryGiB: 64, numaNodes: 2 }
instanceTypes:
  - { id: ecs.g7.large, family: ecs.g7, vcpus: 2, memoryGiB: 8 }
instances:
  - id: i-crash
    account: default
    host: host-a
    type: ecs.g7.large
    vswitch: vsw-h1
    status: Running
    disks:
      - { id: i-crash-sys, kind: system, category: cloud_essd, performanceLevel: PL1, sizeGiB: 1, fillMiB: 4 }
      - { id: i-crash-data, kind: data, category: cloud_essd, performanceLevel: PL1, sizeGiB: 1, fillMiB: 192 }
`;

/** Serve flags: fast polling, and a short lease so the restarted node takes the dead one's jobs over soon. */
const serveFlags = ['--poll-ms', '50', '--lease-ms', '1500'];

/** Unfinished copies in a host's pool: the sim driver writes `<disk>.img.partial` while copying. */
function partialCopies(data: string, hostId: string): string[] {
  const pool = join(data, 'pools', hostId);
  return existsSync(pool) ? readdirSync(pool).filter((name) => name.includes('.partial')) : [];
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

for (const dialect of dialects) {
  describe(`ENS event migration killed mid-copy [${dialect}]`, () => {
    let ferry: FerryWithKey;
    let restarted: FerryServer | undefined;

    before(async () => {
      const db = dialect === 'postgres' ? await freshPostgresDatabase() : undefined;
      ferry = await startFerryWithKey({ ...(db === undefined ? {} : { db }), extra: serveFlags });
      const file = join(ferry.data, 'fleet.yaml');
      writeFileSync(file, fleetYaml);
      await ferryCli(['fleet', 'apply', '-f', file, '--json'], cliEnv(ferry));
    });
    after(async () => {
      restarted?.kill('SIGKILL');
      await restarted?.exited;
      await ferry.close();
    });

    it('resumes or rolls back on restart; the event ends and every disk keeps its sha256', async () => {
      const before = Object.fromEntries(await Promise.all((await showInstance(ferry, 'i-crash')).disks.map(async (d) => [d.id, await sha256File(d.path, d.id)] as const)));
      const event = await callApi<EventView>(credsOf(ferry), 'POST', '/api/v1/events', { instanceId: 'i-crash', eventType: 'Instance:SystemUpgrade.Migrate' });
      await ensClient(ferry).request('EventMigrateInstance', { EventId: event.eventId, ResourceId: 'i-crash', OpsType: 'immediate', DataPolicy: 'force_transfer' }, { method: 'POST' });
      await waitFor('the data disk copy to start', () => partialCopies(ferry.data, 'host-b').length > 0, 60_000);
      ferry.server.kill('SIGKILL');
      await ferry.server.exited;

      restarted = await startFerry({ data: ferry.data, ...(ferry.db === undefined ? {} : { db: ferry.db }), extra: serveFlags });
      const again: FerryWithKey = { ...ferry, server: restarted };
      const done = await waitForEvent(again, event.eventId, ['Executed', 'Failed'], 120_000);
      const view = await showInstance(again, 'i-crash');
      if (done.status === 'Executed') assert.equal(view.hostId, 'host-b', 'the move resumed and committed');
      else assert.deepEqual([view.hostId, (done.result as { rolledBack?: boolean }).rolledBack], ['host-a', true], `rolled back: ${done.error ?? ''}`);
      assert.equal(view.status, 'Running', 'the instance runs again either way');
      const afterHashes = Object.fromEntries(await Promise.all(view.disks.map(async (d) => [d.id, await sha256File(d.path)] as const)));
      assert.deepEqual(afterHashes, before);
      assert.deepEqual(partialCopies(ferry.data, 'host-b'), [], 'no unfinished copy is left behind');
      const database = await openServerDatabase(ferry);
      try {
        await assertCapacityCountedOnce(database);
      } finally {
        await database.close();
      }
    });
  });
}
