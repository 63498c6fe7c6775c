/**
 * ENS instance system events as users meet them: raised by `ferry host set-state` and
 * `ferry events inject`, listed and answered through the real `@alicloud/pop-core` client, executed
 * by a real `ferry serve` on SQLite and on PostgreSQL. Disks are compared by full-file sha256.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { callApi } from '../src/cli/api-client.ts';
import { contentDigest, manifestDigest } from '../src/fleet/sparse-file.ts';
import type { EventView } from '../src/migration/events.ts';
import type { HostStateOutcome } from '../src/migration/events-host-state.ts';
import { type CreatedKey, type FerryWithKey, type PopClient, ferryCli, startFerryWithKey } from './support/api.ts';
import { dialects } from './support/dialects.ts';
import { cliEnv, credsOf, ensClient, expectEnsError, sha256File, showInstance, waitForEvent } from './support/ens.ts';
import { assertCapacityCountedOnce, eventually, openServerDatabase } from './support/moves.ts';
import { freshPostgresDatabase } from './support/postgres.ts';

const host = (id: string) => `          - { id: ${id}, vcpus: 16, memoryGiB: 64, numaNodes: 2 }`;
const disk = (id: string, kind: 'system' | 'data') => `      - { id: ${id}, kind: ${kind}, category: cloud_essd, performanceLevel: PL1, sizeGiB: 1, fillMiB: 4 }`;
function instance(id: string, hostId: string, withData: boolean, status = 'Running'): string {
  return [
    `  - id: ${id}`,
    `    account: default`,
    `    host: ${hostId}`,
    '    type: ecs.g7.large',
    '    vswitch: vsw-h1',
    `    status: ${status}`,
    '    disks:',
    disk(`${id}-sys`, 'system'),
    ...(withData ? [disk(`${id}-data`, 'data')] : []),
  ].join('\n');
}

/**
 * host-a goes into maintenance, host-b fails, host-c is set back to available; host-d and host-e
 * take the instances that move. Instance ids say which test uses them.
 */
const fleetYaml = [
  'regions:',
  '  - id: cn-hangzhou',
  '    zones:',
  '      - id: cn-hangzhou-h',
  '        vswitches: [{ id: vsw-h1, vpcId: vpc-1, cidr: 192.168.1.0/24 }]',
  '        hosts:',
  ...['host-a', 'host-b', 'host-c', 'host-d', 'host-e'].map(host),
  'instanceTypes:',
  '  - { id: ecs.g7.large, family: ecs.g7, vcpus: 2, memoryGiB: 8 }',
  'instances:',
  instance('i-force', 'host-a', true),
  instance('i-abandon', 'host-a', true),
  instance('i-try', 'host-a', true, 'Stopped'),
  instance('i-plan', 'host-a', false),
  instance('i-planutc', 'host-a', false),
  instance('i-rules', 'host-a', false),
  instance('i-batch', 'host-a', false),
  instance('i-redeploy', 'host-b', true),
  instance('i-batchb', 'host-b', false),
  instance('i-cancel', 'host-c', false),
  instance('i-reboot', 'host-d', false),
  instance('i-batchr', 'host-d', false),
  instance('i-deadline', 'host-d', false),
  '',
].join('\n');

const migrateType = 'Instance:SystemUpgrade.Migrate';
const failureType = 'Instance:SystemFailure.Redeploy';
const allTypes = [migrateType, failureType, 'Instance:SystemMaintenance.Redeploy', 'Instance:SystemMaintenance.Reboot', 'Instance:SystemFailure.Reboot'];

interface EnsEvent {
  EventId: string;
  EventType: string;
  EventStatus: string;
  EventLevel: string;
  ResourceId: string;
  ExtendedAttribute: string;
  NotBefore: number;
  NotBeforeUtcTime: string;
  PublishTime: number;
}

interface EventsPage {
  TotalCount: number;
  PageNumber: number;
  PageSize: number;
  Events: EnsEvent[];
}

async function describeEvents(client: PopClient, params: Record<string, unknown>): Promise<EventsPage> {
  return (await client.request('DescribeHistoryEvents', params, { method: 'POST' })) as unknown as EventsPage;
}

/** The open or last event of an instance, through DescribeHistoryEvents. */
async function eventOf(client: PopClient, instanceId: string): Promise<EnsEvent> {
  const page = await describeEvents(client, { EventTypes: allTypes, ResourceIds: [instanceId] });
  const event = page.Events[0];
  assert.ok(event !== undefined, `no event for ${instanceId}`);
  return event;
}

/** Every disk of the instance, hashed where it lives now. */
async function diskHashes(ferry: FerryWithKey, instanceId: string): Promise<Record<string, string>> {
  const view = await showInstance(ferry, instanceId);
  const out: Record<string, string> = {};
  for (const d of view.disks) out[d.id] = await sha256File(d.path);
  return out;
}

/** The disks' hashes before anything moved (of one kind, if given): seeded disks of one id hold the same bytes on every server. */
async function seededHashes(ferry: FerryWithKey, instanceId: string, kind?: string): Promise<Record<string, string>> {
  const view = await showInstance(ferry, instanceId);
  const out: Record<string, string> = {};
  for (const d of view.disks) if (kind === undefined || d.kind === kind) out[d.id] = await sha256File(d.path, d.id);
  return out;
}

for (const dialect of dialects) {
  describe(`ENS system events [${dialect}]`, () => {
    let ferry: FerryWithKey;
    let ens: PopClient;
    const raised = new Map<string, string>();
    let stranger: CreatedKey;
    /** The server's clock runs this many ms ahead of ours (core/offset-clock.ts). */
    let clockOffsetFile: string;

    before(async () => {
      const db = dialect === 'postgres' ? await freshPostgresDatabase() : undefined;
      clockOffsetFile = join(mkdtempSync(join(tmpdir(), 'ferry-clock-')), 'offset-ms');
      ferry = await startFerryWithKey({ ...(db === undefined ? {} : { db }), extra: ['--poll-ms', '50'], env: { FERRY_CLOCK_OFFSET_FILE: clockOffsetFile } });
      ens = ensClient(ferry);
      const file = join(ferry.data, 'fleet.yaml');
      writeFileSync(file, fleetYaml);
      await ferryCli(['fleet', 'apply', '-f', file, '--json'], cliEnv(ferry));
    });
    after(async () => {
      await ferry.close();
      rmSync(dirname(clockOffsetFile), { recursive: true, force: true });
    });

    async function setHostState(hostId: string, state: string, eventType?: string): Promise<HostStateOutcome> {
      return callApi<HostStateOutcome>(credsOf(ferry), 'POST', `/api/v1/hosts/${hostId}/state`, { state, ...(eventType === undefined ? {} : { eventType }) });
    }

    async function inject(instanceId: string, eventType: string, deadlineMs?: number): Promise<EventView> {
      return callApi<EventView>(credsOf(ferry), 'POST', '/api/v1/events', { instanceId, eventType, ...(deadlineMs === undefined ? {} : { deadlineMs }) });
    }

    it('a host set to maintenance raises an Instance:SystemUpgrade.Migrate event on each of its instances, once', async () => {
      const outcome = JSON.parse(await ferryCli(['host', 'set-state', 'host-a', 'maintenance', '--json'], cliEnv(ferry))) as HostStateOutcome;
      assert.deepEqual([outcome.previous, outcome.state], ['Available', 'Maintenance']);
      assert.deepEqual(outcome.raised.map((e) => e.resourceId).sort(), ['i-abandon', 'i-batch', 'i-force', 'i-plan', 'i-planutc', 'i-rules', 'i-try']);
      for (const e of outcome.raised) {
        assert.match(e.eventId, /^e-[0-9a-f]{32}$/);
        assert.deepEqual([e.eventType, e.status, e.level], [migrateType, 'Inquiring', 'WARN']);
        assert.ok(e.notBeforeMs > e.publishTimeMs + 71 * 3600_000, 'the default answer window is 72 hours');
        raised.set(e.resourceId, e.eventId);
      }
      const again = await setHostState('host-a', 'maintenance');
      assert.deepEqual(again.raised, [], 'an instance has one open event at a time');
      // host-c waits in maintenance (so no move lands there) until the last test sets it back.
      const onC = await setHostState('host-c', 'maintenance', 'Instance:SystemMaintenance.Redeploy');
      assert.deepEqual(onC.raised.map((e) => [e.resourceId, e.eventType]), [['i-cancel', 'Instance:SystemMaintenance.Redeploy']]);
    });

    it('DescribeHistoryEvents takes every list form: Key.N, comma-joined, JSON text', async () => {
      const forms: Array<Record<string, unknown>> = [
        { EventTypes: [migrateType, failureType] },
        { EventTypes: `${migrateType},${failureType}` },
        { EventTypes: JSON.stringify([migrateType, failureType]) },
      ];
      for (const form of forms) {
        const page = await describeEvents(ens, { ...form, ResourceIds: 'i-force,i-abandon' });
        assert.equal(page.TotalCount, 2, JSON.stringify(form));
        assert.deepEqual(page.Events.map((e) => e.ResourceId).sort(), ['i-abandon', 'i-force']);
      }
      const json = await describeEvents(ens, { EventTypes: migrateType, ResourceIds: JSON.stringify(['i-plan']), EventStatus: ['Inquiring'], EventLevels: 'WARN' });
      assert.deepEqual(json.Events.map((e) => e.ResourceId), ['i-plan']);
      const event = json.Events[0];
      assert.ok(event !== undefined);
      assert.equal(event.EventId, raised.get('i-plan'));
      assert.equal(event.NotBeforeUtcTime, new Date(event.NotBefore).toISOString().replace(/\.\d{3}Z$/, 'Z'));
      assert.equal((JSON.parse(event.ExtendedAttribute) as { HostId: string }).HostId, 'host-a');
      assert.equal((await describeEvents(ens, { EventTypes: [migrateType], EventLevels: ['CRITICAL'] })).TotalCount, 0);
      assert.equal((await describeEvents(ens, { EventTypes: [failureType] })).TotalCount, 0);
    });

    it('pages newest first, and filters by publish time', async () => {
      const all = await describeEvents(ens, { EventTypes: [migrateType], PageSize: 100 });
      assert.equal(all.TotalCount, 7);
      const ids: string[] = [];
      for (let page = 1; page <= 3; page += 1) {
        const p = await describeEvents(ens, { EventTypes: [migrateType], PageSize: 3, PageNumber: page });
        assert.deepEqual([p.PageNumber, p.PageSize, p.TotalCount], [page, 3, 7]);
        ids.push(...p.Events.map((e) => e.EventId));
      }
      assert.deepEqual(ids, all.Events.map((e) => e.EventId));
      assert.equal(new Set(ids).size, 7);
      const defaults = await describeEvents(ens, { EventTypes: [migrateType] });
      assert.deepEqual([defaults.PageNumber, defaults.PageSize, defaults.Events.length], [1, 10, 7]);
      const future = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      assert.equal((await describeEvents(ens, { EventTypes: [migrateType], 'EventPublishTime.Start': future })).TotalCount, 0);
      assert.equal((await describeEvents(ens, { EventTypes: [migrateType], 'EventPublishTime.End': future, 'NotBefore.Start': future })).TotalCount, 7);
    });

    it('DescribeHistoryEvents refuses a missing or unknown EventTypes, an unknown status or level, a bad page', async () => {
      const missing = await ensErrorCode(ens, 'DescribeHistoryEvents', {});
      assert.equal(missing, 'MissingParameter');
      await expectEnsError(ens, 'DescribeHistoryEvents', { EventTypes: 'Instance:Nope' }, 'InvalidParameter.EventTypes', /Instance:Nope/);
      await expectEnsError(ens, 'DescribeHistoryEvents', { EventTypes: [migrateType], EventStatus: ['Done'] }, 'InvalidParameter.EventStatus');
      await expectEnsError(ens, 'DescribeHistoryEvents', { EventTypes: [migrateType], EventLevels: ['LOUD'] }, 'InvalidParameter.EventLevels');
      await expectEnsError(ens, 'DescribeHistoryEvents', { EventTypes: [migrateType], PageSize: 101 }, 'InvalidParameter.PageSize');
      await expectEnsError(ens, 'DescribeHistoryEvents', { EventTypes: [migrateType], PageNumber: 0 }, 'InvalidParameter.PageNumber');
      const many = Array.from({ length: 101 }, (_, i) => `i-${i}`).join(',');
      await expectEnsError(ens, 'DescribeHistoryEvents', { EventTypes: [migrateType], ResourceIds: many }, 'InvalidParameter.ResourceIds');
    });

    it('EventMigrateInstance immediate with force_transfer moves every disk: sha256 equal, instance running on another host', async () => {
      const before = await seededHashes(ferry, 'i-force');
      const eventId = raised.get('i-force') ?? '';
      const answer = await ens.request('EventMigrateInstance', { EventId: eventId, ResourceId: 'i-force', OpsType: 'immediate', DataPolicy: 'force_transfer', Password: 'Ferry2026!' }, { method: 'POST' });
      assert.deepEqual(Object.keys(answer), ['RequestId']);
      const done = await waitForEvent(ferry, eventId, ['Executed', 'Failed']);
      assert.equal(done.status, 'Executed', JSON.stringify(done));
      const view = await showInstance(ferry, 'i-force');
      assert.notEqual(view.hostId, 'host-a');
      assert.equal(view.status, 'Running');
      assert.deepEqual(await diskHashes(ferry, 'i-force'), before);
      const listed = await eventOf(ens, 'i-force');
      assert.equal(listed.EventStatus, 'Executed');
      const attribute = JSON.parse(listed.ExtendedAttribute) as Record<string, unknown>;
      assert.deepEqual([attribute['OpsType'], attribute['DataPolicy'], attribute['ExecutedBy']], ['immediate', 'force_transfer', 'owner']);
      await expectEnsError(ens, 'EventMigrateInstance', { EventId: eventId, ResourceId: 'i-force', OpsType: 'immediate' }, 'InvalidParameter.EventId', /Executed/);
    });

    it('abandon (the default) recreates data disks empty; try_transfer copies them', async () => {
      const abandonBefore = await seededHashes(ferry, 'i-abandon', 'system');
      const tryBefore = await seededHashes(ferry, 'i-try');
      const abandonId = raised.get('i-abandon') ?? '';
      const tryId = raised.get('i-try') ?? '';
      await ens.request('EventMigrateInstance', { EventId: abandonId, ResourceId: 'i-abandon', OpsType: 'immediate' }, { method: 'POST' });
      await ens.request('EventMigrateInstance', { EventId: tryId, ResourceId: 'i-try', OpsType: 'immediate', DataPolicy: 'try_transfer' }, { method: 'POST' });
      const abandoned = await waitForEvent(ferry, abandonId, ['Executed', 'Failed']);
      const tried = await waitForEvent(ferry, tryId, ['Executed', 'Failed']);
      assert.deepEqual([abandoned.status, tried.status], ['Executed', 'Executed']);
      assert.deepEqual((abandoned.result as { abandonedDiskIds: string[] }).abandonedDiskIds, ['i-abandon-data']);
      const view = await showInstance(ferry, 'i-abandon');
      const system = view.disks.find((d) => d.kind === 'system');
      const data = view.disks.find((d) => d.kind === 'data');
      assert.ok(system !== undefined && data !== undefined && data.hostId === view.hostId);
      assert.equal(await sha256File(system.path), abandonBefore['i-abandon-sys']);
      // Reading 1 GiB to prove it is all zeros would cost seconds; no data extent at all proves it.
      assert.equal(await contentDigest(data.path), emptyDiskDigest, 'an abandoned data disk is recreated empty, same size');
      assert.deepEqual(await diskHashes(ferry, 'i-try'), tryBefore);
      const tryView = await showInstance(ferry, 'i-try');
      assert.deepEqual([tryView.status, tryView.hostId === 'host-a'], ['Stopped', false], 'a stopped instance stays stopped');
    });

    it('scheduled runs wait for PlanTime (ms) or PlanUtcTime, then migrate', async () => {
      const planId = raised.get('i-plan') ?? '';
      const utcId = raised.get('i-planutc') ?? '';
      const planTime = Date.now() + 2_500;
      await ens.request('EventMigrateInstance', { EventId: planId, ResourceId: 'i-plan', OpsType: 'scheduled', PlanTime: planTime, DataPolicy: 'force_transfer' }, { method: 'POST' });
      const utc = new Date(Date.now() + 3_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      await ens.request('EventMigrateInstance', { EventId: utcId, ResourceId: 'i-planutc', OpsType: 'scheduled', PlanUtcTime: utc }, { method: 'POST' });
      const scheduled = await eventOf(ens, 'i-plan');
      assert.deepEqual([scheduled.EventStatus, scheduled.NotBefore], ['Scheduled', planTime]);
      assert.equal((await eventOf(ens, 'i-planutc')).NotBeforeUtcTime, utc);
      const before = await seededHashes(ferry, 'i-plan');
      const beforeUtc = await seededHashes(ferry, 'i-planutc');
      const done = await waitForEvent(ferry, planId, ['Executed', 'Failed']);
      assert.equal(done.status, 'Executed');
      assert.ok(Date.now() >= planTime);
      assert.deepEqual(await diskHashes(ferry, 'i-plan'), before);
      assert.equal((await waitForEvent(ferry, utcId, ['Executed', 'Failed'])).status, 'Executed');
      assert.deepEqual(await diskHashes(ferry, 'i-planutc'), beforeUtc, 'the system disk is copied whatever the data policy');
    });

    it('refuses each broken rule of an answer with InvalidParameter.<Field> and HTTP 400', async () => {
      const eventId = raised.get('i-rules') ?? '';
      const base = { EventId: eventId, ResourceId: 'i-rules' };
      const migrate = (params: Record<string, unknown>, code: string, message?: RegExp) => expectEnsError(ens, 'EventMigrateInstance', { ...base, ...params }, code, message);
      await migrate({ OpsType: 'later' }, 'InvalidParameter.OpsType');
      await migrate({ OpsType: 'scheduled' }, 'InvalidParameter.PlanTime', /required/);
      await migrate({ OpsType: 'scheduled', PlanTime: Date.now() - 1000 }, 'InvalidParameter.PlanTime', /not in the future/);
      await migrate({ OpsType: 'scheduled', PlanTime: Date.now() + 100 * 3600_000 }, 'InvalidParameter.PlanTime', /after the event's deadline/);
      await migrate({ OpsType: 'scheduled', PlanTime: 'soon' }, 'InvalidParameter.PlanTime');
      await migrate({ OpsType: 'scheduled', PlanUtcTime: 'tomorrow' }, 'InvalidParameter.PlanUtcTime');
      await migrate({ OpsType: 'scheduled', PlanTime: Date.now() + 60_000, PlanUtcTime: new Date(Date.now() + 120_000).toISOString() }, 'InvalidParameter.PlanUtcTime');
      await migrate({ OpsType: 'scheduled', PlanTime: Date.now() + 60_000, Password: 'Ferry2026!' }, 'InvalidParameter.Password', /scheduled/);
      await migrate({ OpsType: 'immediate', Password: 'Fe2!' }, 'InvalidParameter.Password', /8 to 30/);
      await migrate({ OpsType: 'immediate', Password: 'ferry2026!' }, 'InvalidParameter.Password', /upper-case/);
      await migrate({ OpsType: 'immediate', Password: 'Ferry 2026' }, 'InvalidParameter.Password', /may hold only/);
      await migrate({ OpsType: 'immediate', DataPolicy: 'keep' }, 'InvalidParameter.DataPolicy');
      await migrate({ OpsType: 'immediate', ResourceId: 'i-force' }, 'InvalidParameter.ResourceId', /concerns instance i-rules/);
      await migrate({ OpsType: 'immediate', EventId: 'e-00000000000000000000000000000000' }, 'InvalidParameter.EventId', /does not exist/);
      await expectEnsError(ens, 'EventRedeployInstance', { ...base, OpsType: 'immediate' }, 'InvalidParameter.EventId', /handles only/);
      await expectEnsError(ens, 'EventRebootInstance', { ...base, OpsType: 'immediate' }, 'InvalidParameter.EventId', /handles only/);
      assert.equal(await ensErrorCode(ens, 'EventMigrateInstance', { ResourceId: 'i-rules', OpsType: 'immediate' }), 'MissingParameter');
      stranger = await ferry.createKey('stranger');
      await expectEnsError(ensClient(ferry, stranger), 'EventMigrateInstance', { ...base, OpsType: 'immediate' }, 'InvalidParameter.EventId', /does not exist/);
      assert.equal((await describeEvents(ensClient(ferry, stranger), { EventTypes: allTypes })).TotalCount, 0, 'another account sees none of these events');
      assert.equal((await eventOf(ens, 'i-rules')).EventStatus, 'Inquiring', 'nothing was changed');
    });

    it('a key whose policy denies ens:EventMigrateInstance gets NoPermission with HTTP 400', async () => {
      const limited = await ferry.createKey('default');
      const policy = join(ferry.data, 'deny.json');
      writeFileSync(policy, JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 'ens:*', Resource: '*' }, { Effect: 'Deny', Action: 'ens:EventMigrateInstance', Resource: '*' }] }));
      await ferryCli(['admin', 'policy', 'attach', limited.accessKeyId, '-f', policy, '--data', ferry.data, ...(ferry.db === undefined ? [] : ['--db', ferry.db])]);
      const client = ensClient(ferry, limited);
      await expectEnsError(client, 'EventMigrateInstance', { EventId: raised.get('i-rules') ?? '', ResourceId: 'i-rules', OpsType: 'immediate' }, 'NoPermission');
      assert.equal((await describeEvents(client, { EventTypes: [migrateType], ResourceIds: ['i-rules'] })).TotalCount, 1);
    });

    it('a failed host raises CRITICAL Instance:SystemFailure.Redeploy events; EventRedeployInstance moves the instance with all its disks', async () => {
      const outcome = await setHostState('host-b', 'failed');
      assert.deepEqual(outcome.raised.map((e) => [e.resourceId, e.eventType, e.level]).sort(), [
        ['i-batchb', failureType, 'CRITICAL'],
        ['i-redeploy', failureType, 'CRITICAL'],
      ]);
      const event = outcome.raised.find((e) => e.resourceId === 'i-redeploy');
      assert.ok(event !== undefined);
      const before = await seededHashes(ferry, 'i-redeploy');
      await expectEnsError(ens, 'EventMigrateInstance', { EventId: event.eventId, ResourceId: 'i-redeploy', OpsType: 'immediate' }, 'InvalidParameter.EventId', /handles only Instance:SystemUpgrade\.Migrate/);
      await ens.request('EventRedeployInstance', { EventId: event.eventId, ResourceId: 'i-redeploy', OpsType: 'immediate' }, { method: 'POST' });
      const done = await waitForEvent(ferry, event.eventId, ['Executed', 'Failed']);
      assert.equal(done.status, 'Executed', JSON.stringify(done));
      assert.equal(done.dataPolicy, 'force_transfer');
      const view = await showInstance(ferry, 'i-redeploy');
      assert.deepEqual([view.hostId === 'host-b', view.status], [false, 'Running']);
      assert.deepEqual(await diskHashes(ferry, 'i-redeploy'), before);
    });

    it('ferry events inject raises a reboot event; EventRebootInstance reboots the instance where it is', async () => {
      const injected = JSON.parse(await ferryCli(['events', 'inject', '--instance', 'i-reboot', '--type', 'Instance:SystemMaintenance.Reboot', '--json'], cliEnv(ferry))) as EventView;
      assert.match(injected.eventId, /^e-[0-9a-f]{32}$/);
      assert.deepEqual([injected.status, injected.resourceId, injected.source], ['Inquiring', 'i-reboot', 'inject']);
      await assert.rejects(inject('i-reboot', migrateType), /EventAlreadyOpen|already has the open event/);
      await ens.request('EventRebootInstance', { EventId: injected.eventId, ResourceId: 'i-reboot', OpsType: 'immediate' }, { method: 'POST' });
      const done = await waitForEvent(ferry, injected.eventId, ['Executed', 'Failed']);
      assert.deepEqual([done.status, (done.result as { hostId: string }).hostId], ['Executed', 'host-d']);
      const view = await showInstance(ferry, 'i-reboot');
      assert.deepEqual([view.hostId, view.status], ['host-d', 'Running']);
      const stopped = await inject('i-try', 'Instance:SystemMaintenance.Reboot');
      await ens.request('EventRebootInstance', { EventId: stopped.eventId, ResourceId: 'i-try', OpsType: 'immediate' }, { method: 'POST' });
      assert.equal((await waitForEvent(ferry, stopped.eventId, ['Avoided', 'Executed', 'Failed'])).status, 'Avoided', 'a stopped instance needs no reboot');
      await assert.rejects(inject('i-reboot', 'Instance:Nope'), /InvalidParameter/);
      await assert.rejects(inject('i-reboot', migrateType, -1), /InvalidParameter/);
      await assert.rejects(inject('i-nope', migrateType), /InvalidInstanceId\.NotFound|does not exist/);
    });

    it('the Batch forms answer per item: Code 200, or 400 with the error, HTTP 200 either way', async () => {
      const batchEvent = raised.get('i-batch') ?? '';
      const redeployEvent = (await eventOf(ens, 'i-batchb')).EventId;
      const reboot = await inject('i-batchr', 'Instance:SystemFailure.Reboot');
      const planTime = Date.now() + 3600_000;
      const migrate = (await ens.request('BatchEventMigrateInstance', {
        EventInfos: JSON.stringify([
          { EventId: batchEvent, ResourceId: 'i-batch', OpsType: 'scheduled', PlanTime: planTime, DataPolicy: 'try_transfer' },
          { EventId: batchEvent, ResourceId: 'i-wrong', OpsType: 'immediate' },
          { ResourceId: 'i-batch', OpsType: 'immediate' },
        ]),
      }, { method: 'POST' })) as unknown as { Results: Array<{ EventId: string; ResourceId: string; Code: number; Message: string }> };
      assert.deepEqual(
        migrate.Results.map((r) => [r.EventId, r.ResourceId, r.Code]),
        [
          [batchEvent, 'i-batch', 200],
          [batchEvent, 'i-wrong', 400],
          ['', 'i-batch', 400],
        ],
      );
      assert.equal(migrate.Results[0]?.Message, 'success');
      assert.match(migrate.Results[1]?.Message ?? '', /^InvalidParameter\.ResourceId: /);
      assert.match(migrate.Results[2]?.Message ?? '', /^MissingParameter: .*EventId/);
      const scheduled = await eventOf(ens, 'i-batch');
      assert.deepEqual([scheduled.EventStatus, scheduled.NotBefore], ['Scheduled', planTime]);
      // pop-core flattens an array of objects to EventInfos.N.Field: the Key.N form.
      const redeploy = (await ens.request('BatchEventRedeployInstance', {
        EventInfos: [{ EventId: redeployEvent, ResourceId: 'i-batchb', OpsType: 'scheduled', PlanUtcTime: new Date(Date.now() + 1800_000).toISOString() }],
      }, { method: 'POST' })) as unknown as { Results: Array<{ Code: number }> };
      assert.deepEqual(redeploy.Results.map((r) => r.Code), [200]);
      assert.equal((await eventOf(ens, 'i-batchb')).EventStatus, 'Scheduled');
      const rebooted = (await ens.request('BatchEventRebootInstance', {
        EventInfos: JSON.stringify([{ EventId: reboot.eventId, ResourceId: 'i-batchr', OpsType: 'immediate' }, { EventId: redeployEvent, ResourceId: 'i-batchb', OpsType: 'immediate' }]),
      }, { method: 'POST' })) as unknown as { Results: Array<{ Code: number; Message: string }> };
      assert.deepEqual(rebooted.Results.map((r) => r.Code), [200, 400]);
      assert.match(rebooted.Results[1]?.Message ?? '', /^InvalidParameter\.EventId: .*handles only/);
      assert.equal((await waitForEvent(ferry, reboot.eventId, ['Executed', 'Failed'])).status, 'Executed');
    });

    it('an event nobody answers is executed by the system at its deadline, with try_transfer', async () => {
      const before = await seededHashes(ferry, 'i-deadline');
      const event = await inject('i-deadline', migrateType, 1_000);
      assert.equal(event.notBeforeMs - event.publishTimeMs, 1_000);
      const done = await waitForEvent(ferry, event.eventId, ['Executed', 'Failed']);
      assert.deepEqual([done.status, done.executedBy, done.dataPolicy], ['Executed', 'system', 'try_transfer']);
      assert.deepEqual(await diskHashes(ferry, 'i-deadline'), before);
      assert.notEqual((await showInstance(ferry, 'i-deadline')).hostId, 'host-d');
    });

    it('a host set back to available cancels its events that have not started', async () => {
      const back = await setHostState('host-c', 'available');
      assert.deepEqual(back.canceled.map((e) => [e.resourceId, e.status]), [['i-cancel', 'Canceled']]);
      const listed = await describeEvents(ens, { EventTypes: ['Instance:SystemMaintenance.Redeploy'], EventStatus: 'Canceled' });
      assert.deepEqual(listed.Events.map((e) => e.ResourceId), ['i-cancel']);
      await assert.rejects(setHostState('host-c', 'failed', migrateType), /eventType/);
      await assert.rejects(setHostState('host-c', 'broken'), /state/);
      await assert.rejects(callApi(credsOf(ferry, stranger), 'POST', '/api/v1/hosts/host-c/state', { state: 'maintenance' }), /Forbidden/);
    });

    it('a planned time is kept by the server clock: moved again, it runs when that clock gets there', async () => {
      const eventId = raised.get('i-batch') ?? '';
      const planTime = Date.now() + 10 * 60_000;
      await ens.request('EventMigrateInstance', { EventId: eventId, ResourceId: 'i-batch', OpsType: 'scheduled', PlanTime: planTime }, { method: 'POST' });
      const moved = await eventOf(ens, 'i-batch');
      assert.deepEqual([moved.EventStatus, moved.NotBefore], ['Scheduled', planTime], 'a Scheduled event can be planned again');
      const before = await seededHashes(ferry, 'i-batch');
      writeFileSync(clockOffsetFile, String(10 * 60_000 + 1_000));
      const done = await waitForEvent(ferry, eventId, ['Executed', 'Failed']);
      assert.deepEqual([done.status, done.executedBy], ['Executed', 'owner']);
      assert.deepEqual(await diskHashes(ferry, 'i-batch'), before);
    });

    it('after all these moves each host counts the capacity of exactly the instances on it, and no claim is left held', async () => {
      const database = await openServerDatabase(ferry);
      try {
        const open = () => database.db.selectFrom('instance_moves').select('id').where('state', 'in', ['queued', 'running']).executeTakeFirst();
        await eventually(async () => ((await open()) === undefined ? true : undefined), 'every move to end');
        await assertCapacityCountedOnce(database);
      } finally {
        await database.close();
      }
    });
  });

  describe(`ENS flow control [${dialect}]`, () => {
    let ferry: FerryWithKey;

    before(async () => {
      const db = dialect === 'postgres' ? await freshPostgresDatabase() : undefined;
      ferry = await startFerryWithKey({ ...(db === undefined ? {} : { db }), env: { FERRY_RATE_API_RPS: '1', FERRY_RATE_API_BURST: '2' } });
    });
    after(async () => {
      await ferry.close();
    });

    it('calls to one action beyond its rate are refused with Throttling.Api and HTTP 400; another action still answers', async () => {
      const ens = ensClient(ferry);
      const outcomes: string[] = [];
      for (let i = 0; i < 6; i += 1) {
        try {
          await describeEvents(ens, { EventTypes: [migrateType] });
          outcomes.push('ok');
        } catch (err) {
          const e = err as { code?: string; entry?: { response?: { statusCode?: number } } };
          outcomes.push(`${e.code ?? ''} ${e.entry?.response?.statusCode ?? 0}`);
        }
      }
      assert.deepEqual(outcomes.slice(0, 2), ['ok', 'ok'], 'the burst is served');
      assert.ok(outcomes.slice(2).includes('Throttling.Api 400'), outcomes.join(', '));
      await expectEnsError(ens, 'EventMigrateInstance', { EventId: 'e-00000000000000000000000000000000', ResourceId: 'i-none', OpsType: 'immediate' }, 'InvalidParameter.EventId');
    });
  });
}

/** The content digest of an empty 1 GiB disk (size only, no data chunks). */
const emptyDiskDigest = manifestDigest(1024 ** 3, 4 * 1024 ** 2, []);

async function ensErrorCode(client: PopClient, action: string, params: Record<string, unknown>): Promise<string> {
  try {
    await client.request(action, params, { method: 'POST' });
  } catch (err) {
    return (err as { code: string }).code;
  }
  return assert.fail(`${action} succeeded`);
}
