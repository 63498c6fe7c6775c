/**
 * Tenant isolation through every Describe and List action the POP door registers: one account
 * owns one resource of every kind, and each such action shows it to that account and nothing to
 * another. The list of actions comes from the registry, so an action a later change registers
 * fails this test until it says how to call it here.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildActionRegistry } from '../src/api/alibaba/all-actions.ts';
import { popProducts } from '../src/api/alibaba/action-registry.ts';
import { callApi } from '../src/cli/api-client.ts';
import type { EventView } from '../src/migration/events.ts';
import { type CreatedKey, type FerryWithKey, popClient, startFerryWithKey } from './support/api.ts';
import { credsOf } from './support/ens.ts';
import { seedFleet } from './support/smc-seed.ts';
import { contractSource, machineFacts } from './support/smc.ts';

type Answer = Record<string, unknown>;

/** How to call each listing action, and how many of the caller's resources its answer holds. */
const listings: Record<string, { readonly params: Answer; readonly count: (answer: Answer) => number }> = {
  ListAccessTokens: { params: {}, count: (a) => Number(a['TotalCount']) },
  DescribeSourceServers: { params: {}, count: (a) => Number(a['TotalCount']) },
  DescribeReplicationJobs: { params: { RegionId: 'cn-hangzhou' }, count: (a) => Number(a['TotalCount']) },
  DescribeWorkgroups: { params: {}, count: (a) => Number(a['TotalCount']) },
  ListTagResources: {
    params: { ResourceType: 'replicationjob' },
    count: (a) => ((a['TagResources'] as { TagResource?: unknown[] } | undefined)?.TagResource ?? []).length,
  },
  DescribeHistoryEvents: { params: { EventTypes: 'Instance:SystemUpgrade.Migrate' }, count: (a) => Number(a['TotalCount']) },
};

describe('tenant isolation through every Describe and List action', () => {
  let ferry: FerryWithKey;
  let stranger: CreatedKey;
  before(async () => {
    ferry = await startFerryWithKey({ env: { FERRY_AGENT_HEARTBEAT_SECONDS: '600' } });
    const fleet = await seedFleet(`sqlite:${join(ferry.data, 'ferry.db')}`, ferry.key.accountId);
    stranger = await ferry.createKey('stranger');
    // One resource of every kind, owned by the first account.
    const smc = popClient(ferry.server.url, ferry.key);
    await smc.request('CreateAccessToken', { Name: 'owned-token' });
    const sourceId = await contractSource(ferry, ferry.key, 'owned-source', machineFacts([30 * 1024 ** 3]));
    const { JobId } = (await smc.request('CreateReplicationJob', { RegionId: 'cn-hangzhou', SourceId: sourceId, Name: 'owned-job', ImageName: 'owned-image', SystemDiskSize: 30 }, { method: 'POST' })) as { JobId: string };
    await smc.request('CreateWorkgroup', { Name: 'owned-group' });
    await smc.request('TagResources', { ResourceType: 'replicationjob', ResourceId: [JobId], Tag: [{ Key: 'owner', Value: 'first' }] });
    await callApi<EventView>(credsOf(ferry), 'POST', '/api/v1/events', { instanceId: fleet.instanceId, eventType: 'Instance:SystemUpgrade.Migrate', deadlineMs: 3_600_000 });
  });
  after(() => ferry.close());

  it('knows how to call every listing action the door registers', () => {
    const registered = buildActionRegistry()
      .all()
      .map((a) => a.name)
      .filter((name) => /^(Describe|List)/.test(name))
      .sort();
    assert.deepEqual(registered, Object.keys(listings).sort());
  });

  for (const action of buildActionRegistry().all().filter((a) => /^(Describe|List)/.test(a.name))) {
    it(`${action.name} shows the owner its resource and the other account nothing`, async () => {
      const listing = listings[action.name];
      if (listing === undefined) return assert.fail(`no listing entry for ${action.name}`);
      const version = popProducts[action.product].version;
      const call = (key: CreatedKey): Promise<Answer> => popClient(ferry.server.url, key, version).request(action.name, listing.params, { method: 'POST' });
      assert.ok(listing.count(await call(ferry.key)) >= 1, `${action.name} shows the owner its resource`);
      assert.equal(listing.count(await call(stranger)), 0, `${action.name} shows the other account nothing`);
    });
  }
});
