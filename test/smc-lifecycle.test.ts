/**
 * Replication runs end to end: real `ferry agent` processes register with an activation code,
 * heartbeat, and send their disks to a real `ferry serve` on PostgreSQL; pop-core drives the jobs
 * Ready → Running → Finished, into InError (an unreadable disk, a vanished agent), Stop and Start
 * again, an incremental job cut over, and a source deleted under its running agent.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type FerryWithKey, type PopClient, popClient, startFerryWithKey } from './support/api.ts';
import { freshPostgresDatabase } from './support/postgres.ts';
import { type AgentProcess, describeJob, describeSource, jobReaches, machineFacts, makeDisk, plain, rejectsWith, startAgent, waitFor } from './support/smc.ts';

const mib = 1024 * 1024;

describe('SMC replication runs with real agents', () => {
  let ferry: FerryWithKey;
  let client: PopClient;
  let dir: string;
  let diskA: string;
  let agentA: AgentProcess;
  let diskB: string;
  let agentB: AgentProcess;
  let token: { id: string; code: string };
  const agents: AgentProcess[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-smc-disks-'));
    // On PostgreSQL: the rules suite runs both dialects, the schedules suite SQLite.
    ferry = await startFerryWithKey({ db: await freshPostgresDatabase(), env: { FERRY_AGENT_HEARTBEAT_SECONDS: '2' }, extra: ['--poll-ms', '100'] });
    client = popClient(ferry.server.url, ferry.key);
    diskA = makeDisk(dir, 'a.img', 4 * mib, 3 * mib);
    diskB = makeDisk(dir, 'b.img', 2 * mib, mib, false);
    const created = await client.request('CreateAccessToken', { Name: 'agents', Count: '1', TimeToLiveInDays: '1' });
    token = { id: String(created['AccessTokenId']), code: String(created['AccessTokenCode']) };
    [agentA, agentB] = await Promise.all([
      startAgent(ferry, { name: 'server-a', disks: [diskA], token, key: null }),
      startAgent(ferry, { name: 'server-b', disks: [diskB] }),
    ]);
    agents.push(agentA, agentB);
  });
  after(async () => {
    for (const agent of agents) agent.process.kill('SIGKILL');
    await ferry.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers with an activation code once per Count, and reports disks, partitions and OS facts', async () => {
    const tokens = await client.request('ListAccessTokens', { AccessTokenId: [token.id] });
    const listed = (tokens['AccessTokens'] as { AccessToken: Array<Record<string, unknown>> }).AccessToken[0];
    assert.deepEqual([listed?.['RegisteredCount'], listed?.['Status']], ['1', 'activated']);
    // A second registration with the code is refused (the same call `ferry agent --token-id` makes).
    const again = await fetch(`${ferry.server.url}/api/v1/agent/activate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'server-a-copy', facts: machineFacts([mib]), accessTokenId: token.id, accessTokenCode: token.code }),
    });
    assert.equal(again.status, 403);
    assert.match(((await again.json()) as { message: string }).message, /used up \(1 registrations\)/);
    const source = await describeSource(client, agentA.sourceId);
    assert.deepEqual([source?.['Name'], source?.State, source?.['HeartbeatRate'], source?.['SystemDiskSize']], ['server-a', 'Available', 2, 1]);
    assert.deepEqual(plain((source?.['SystemDiskParts'] as { SystemDiskPart: unknown[] }).SystemDiskPart), [{ Device: '0_0', Path: `${diskA}1`, SizeBytes: 4 * mib - 512, CanBlock: true, Need: true }]);
    assert.equal(plain(source?.['Disks'] as { System: { Parts: { Part: Array<{ Type: string }> } } }).System.Parts.Part[0]?.Type, 'Boot', 'the active MBR entry');
    assert.ok(String(source?.['Platform']).length > 0);
    assert.equal(source?.['AgentVersion'], '0.1.0');
    const unpartitioned = await describeSource(client, agentB.sourceId);
    assert.deepEqual(plain((unpartitioned?.['SystemDiskParts'] as { SystemDiskPart: unknown[] }).SystemDiskPart), [{ Device: '0_0', Path: `${diskB}1`, SizeBytes: 2 * mib, CanBlock: true, Need: true }]);
  });

  it('runs a job Ready → Running → Finished: the image is the disk, byte for byte, and the run is recorded', async () => {
    const { JobId } = (await client.request('CreateReplicationJob', {
      RegionId: 'cn-hangzhou',
      SourceId: agentA.sourceId,
      Name: 'first-run',
      ImageName: 'server-a-image',
      SystemDiskSize: 20,
      ReplicationParameters: '{"compress_level":5,"checksum":true}',
    })) as { JobId: string };
    assert.equal((await describeJob(client, JobId))?.Status, 'Ready');
    assert.equal((await describeSource(client, agentA.sourceId))?.State, 'InUse');
    await client.request('StartReplicationJob', { JobId });
    const done = await jobReaches(client, JobId, 'Finished');
    assert.deepEqual([done.Progress, done.ErrorCode, done.BusinessStatus], [100, '', '']);
    assert.match(done.ImageId, /^m-/);
    assert.deepEqual(readFileSync(join(ferry.data, 'images', `${done.ImageId}.raw`)), readFileSync(diskA));
    const runs = plain((done['ReplicationJobRuns'] as { ReplicationJobRun: Array<Record<string, string>> }).ReplicationJobRun);
    assert.deepEqual(runs.map((r) => [r['Type'], r['ImageId']]), [['Manual', done.ImageId]]);
    assert.ok(runs[0]?.['EndTime'] !== '');
    assert.equal((await describeSource(client, agentA.sourceId))?.State, 'Available', 'a finished job lets go of its source');
  });

  it('stops a syncing run and starts it again to the end', async () => {
    const { JobId } = (await client.request('CreateReplicationJob', {
      RegionId: 'cn-hangzhou',
      SourceId: agentA.sourceId,
      ImageName: 'throttled-image',
      SystemDiskSize: 20,
      ReplicationParameters: '{"bandwidth_limit":8}',
    })) as { JobId: string };
    await client.request('StartReplicationJob', { JobId });
    const syncing = await jobReaches(client, JobId, 'Running', 'Syncing');
    assert.ok(syncing.Progress < 100);
    await client.request('StopReplicationJob', { JobId });
    assert.equal((await describeJob(client, JobId))?.Status, 'Stopped');
    await waitFor('the agent to drop the stopped command', () => Promise.resolve(/command cmd-\S+: cancelled/.test(agentA.output()) ? true : undefined));
    await client.request('StartReplicationJob', { JobId });
    const done = await jobReaches(client, JobId, 'Finished');
    assert.deepEqual(readFileSync(join(ferry.data, 'images', `${done.ImageId}.raw`)), readFileSync(diskA));
    const runs = (done['ReplicationJobRuns'] as { ReplicationJobRun: Array<Record<string, string>> }).ReplicationJobRun;
    assert.deepEqual(runs.map((r) => [r['Type'], r['ImageId'] === '']), [['Manual', true], ['Manual', false]], 'the stopped run built no image');
  });

  it('ends a run in InError when the agent cannot read its disk, and runs again once it can', async () => {
    const { JobId } = (await client.request('CreateReplicationJob', { RegionId: 'cn-hangzhou', SourceId: agentB.sourceId, ImageName: 'server-b-image', SystemDiskSize: 20 })) as { JobId: string };
    renameSync(diskB, `${diskB}.away`);
    await client.request('StartReplicationJob', { JobId });
    const failed = await jobReaches(client, JobId, 'InError');
    assert.equal(failed.ErrorCode, 'SourceServer.DiskUnreadable');
    assert.match(String(failed['StatusInfo']), /b\.img/);
    renameSync(`${diskB}.away`, diskB);
    await client.request('StartReplicationJob', { JobId });
    const done = await jobReaches(client, JobId, 'Finished');
    assert.deepEqual(readFileSync(join(ferry.data, 'images', `${done.ImageId}.raw`)), readFileSync(diskB));
  });

  it('runs an incremental job to Waiting, and CutOverReplicationJob ends it with a last run (SyncData) or at once', async () => {
    const incremental = { RegionId: 'cn-hangzhou', SystemDiskSize: 20, RunOnce: false, Frequency: 12, MaxNumberOfImageToKeep: 2 };
    const { JobId } = (await client.request('CreateReplicationJob', { ...incremental, SourceId: agentA.sourceId, ImageName: 'incremental-a' })) as { JobId: string };
    await client.request('StartReplicationJob', { JobId });
    const waiting = await jobReaches(client, JobId, 'Waiting');
    assert.equal(waiting.Progress, 100);
    assert.equal((await describeSource(client, agentA.sourceId))?.State, 'InUse', 'a Waiting job holds its source');
    await client.request('CutOverReplicationJob', { JobId, SyncData: true });
    const done = await jobReaches(client, JobId, 'Finished');
    const runs = (done['ReplicationJobRuns'] as { ReplicationJobRun: Array<Record<string, string>> }).ReplicationJobRun;
    assert.deepEqual(runs.map((r) => r['Type']), ['Manual', 'Manual']);
    assert.notEqual(runs[1]?.['ImageId'], runs[0]?.['ImageId']);
    assert.equal(done.ImageId, runs[1]?.['ImageId'], 'the last run\'s image is the job\'s');

    const quick = (await client.request('CreateReplicationJob', { ...incremental, SourceId: agentB.sourceId, ImageName: 'incremental-b' })) as { JobId: string };
    await client.request('StartReplicationJob', { JobId: quick.JobId });
    await jobReaches(client, quick.JobId, 'Waiting');
    await client.request('CutOverReplicationJob', { JobId: quick.JobId });
    const cut = await describeJob(client, quick.JobId);
    assert.equal(cut?.Status, 'Finished');
    assert.equal((cut?.['ReplicationJobRuns'] as { ReplicationJobRun: unknown[] }).ReplicationJobRun.length, 1);
  });

  it('a vanished agent makes its source Unavailable and its run InError; restarted on its state dir it is the same source again', async () => {
    const { JobId } = (await client.request('CreateReplicationJob', { RegionId: 'cn-hangzhou', SourceId: agentA.sourceId, ImageName: 'offline-image', SystemDiskSize: 20, ReplicationParameters: '{"bandwidth_limit":8}' })) as { JobId: string };
    await client.request('StartReplicationJob', { JobId });
    await jobReaches(client, JobId, 'Running', 'Syncing');
    agentA.process.kill('SIGKILL');
    const failed = await jobReaches(client, JobId, 'InError', undefined, 20_000);
    assert.equal(failed.ErrorCode, 'SourceServer.Offline');
    const offline = await waitFor('the source to be Unavailable', async () => {
      const source = await describeSource(client, agentA.sourceId);
      return source?.State === 'Unavailable' ? source : undefined;
    });
    assert.equal(offline.ErrorCode, 'SourceServer.Offline');
    assert.equal((JSON.parse(String(offline['StatusInfo'])) as { error_code: string }).error_code, 'SourceServer.Offline');
    assert.equal(Number((await client.request('DescribeSourceServers', { SourceId: [agentA.sourceId], State: 'Unavailable' }))['TotalCount']), 1);
    await rejectsWith(client.request('StartReplicationJob', { JobId }), 'SourceServerState.Invalid');
    const restarted = await startAgent(ferry, { name: 'server-a', disks: [diskA], stateDir: agentA.stateDir, key: null });
    agents.push(restarted);
    assert.equal(restarted.sourceId, agentA.sourceId, 'the state dir keeps the identity');
    agentA = restarted;
    assert.equal((await describeSource(client, agentA.sourceId))?.State, 'InUse');
    await client.request('StartReplicationJob', { JobId });
    await jobReaches(client, JobId, 'Finished');
  });

  it('deletes a source with Force: its jobs go, and its agent stops because its key no longer works', async () => {
    await client.request('DeleteSourceServer', { SourceId: agentA.sourceId, Force: true });
    assert.equal(await agentA.exited, 3);
    assert.match(agentA.output(), /stopped: .*AccessKeyDisabled|stopped: .*Forbidden/);
    await waitFor('the source to go', async () => ((await describeSource(client, agentA.sourceId)) === undefined ? true : undefined));
    assert.equal(Number((await client.request('DescribeReplicationJobs', { SourceId: [agentA.sourceId] }))['TotalCount']), 0);
  });
});
