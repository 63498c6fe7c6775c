/**
 * SMC's timed behaviour against a real `ferry serve` and a real agent: a scheduled start that is
 * due while the server is down fires after its restart; an incremental job runs every Frequency
 * hours and keeps MaxNumberOfImageToKeep images; a job expires at ValidTime and is deleted 7 days
 * later; an activation code runs out after TimeToLiveInDays. Days pass through the test clock
 * offset (FERRY_CLOCK_OFFSET_FILE), which the server adds to its clock.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sleep } from '../src/core/clock.ts';
import { isoUtc } from '../src/migration/validation.ts';
import { type FerryWithKey, type PopClient, popClient, startFerryWithKey } from './support/api.ts';
import { type FerryServer, startFerry } from './support/ferry-process.ts';
import { freePort } from './support/postgres.ts';
import { type AgentProcess, type Job, describeJob, describeSource, jobReaches, machineFacts, makeDisk, rejectsWith, startAgent, waitFor } from './support/smc.ts';

const mib = 1024 * 1024;
const hourMs = 3_600_000;
const dayMs = 24 * hourMs;

type Run = { Type: string; ImageId: string; EndTime: string };

function runsOf(job: Job | undefined): Run[] {
  return (job?.['ReplicationJobRuns'] as { ReplicationJobRun: Run[] } | undefined)?.ReplicationJobRun ?? [];
}

describe('SMC schedules, incremental runs and expiry under a moving clock', () => {
  let ferry: FerryWithKey;
  let server: FerryServer;
  let client: PopClient;
  let agent: AgentProcess;
  let offsetFile: string;
  let offsetMs = 0;
  let port: number;
  const env = (): NodeJS.ProcessEnv => ({ FERRY_AGENT_HEARTBEAT_SECONDS: '2', FERRY_CLOCK_OFFSET_FILE: offsetFile });

  /** Move the server's clock forward by `ms`. */
  function advance(ms: number): void {
    offsetMs += ms;
    writeFileSync(offsetFile, String(offsetMs));
  }

  const serverNow = (): number => Date.now() + offsetMs;

  const dir = mkdtempSync(join(tmpdir(), 'ferry-smc-clock-'));
  before(async () => {
    offsetFile = join(dir, 'offset');
    writeFileSync(offsetFile, '0');
    port = await freePort();
    ferry = await startFerryWithKey({ env: env(), extra: ['--poll-ms', '100', '--listen', `127.0.0.1:${port}`] });
    server = ferry.server;
    client = popClient(ferry.server.url, ferry.key);
    agent = await startAgent(ferry, { name: 'scheduled-server', disks: [makeDisk(dir, 'disk.img', 2 * mib, mib)] });
  });
  after(async () => {
    agent.process.kill('SIGKILL');
    server.kill('SIGKILL');
    await server.exited;
    await ferry.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fires a scheduled start that fell due while the server was down, after its restart', async () => {
    const at = Math.ceil((Date.now() + 3000) / 1000) * 1000;
    const { JobId } = (await client.request('CreateReplicationJob', { RegionId: 'cn-hangzhou', SourceId: agent.sourceId, ImageName: 'scheduled', SystemDiskSize: 20, ScheduledStartTime: isoUtc(at) })) as { JobId: string };
    assert.equal((await describeJob(client, JobId))?.['ScheduledStartTime'], isoUtc(at));
    server.kill('SIGKILL');
    await server.exited;
    await sleep(Math.max(0, at - Date.now() + 500));
    server = await startFerry({ data: ferry.data, env: env(), extra: ['--poll-ms', '100', '--listen', `127.0.0.1:${port}`] });
    const done = await jobReaches(client, JobId, 'Finished', undefined, 60_000);
    assert.deepEqual(runsOf(done).map((r) => r.Type), ['Schedule']);
    assert.ok(Date.parse(String(done['StartTime'])) >= at);
  });

  it('runs an incremental job every Frequency hours and keeps only MaxNumberOfImageToKeep images', async () => {
    const { JobId } = (await client.request('CreateReplicationJob', {
      RegionId: 'cn-hangzhou',
      SourceId: agent.sourceId,
      ImageName: 'hourly',
      SystemDiskSize: 20,
      RunOnce: false,
      Frequency: 1,
      MaxNumberOfImageToKeep: 2,
    })) as { JobId: string };
    await client.request('StartReplicationJob', { JobId });
    await jobReaches(client, JobId, 'Waiting');
    for (let run = 2; run <= 3; run += 1) {
      advance(hourMs + 1000);
      await waitFor(`run ${run} to end in Waiting`, async () => {
        const job = await describeJob(client, JobId);
        return job?.Status === 'Waiting' && runsOf(job).length === run ? job : undefined;
      }, 30_000);
    }
    const job = await describeJob(client, JobId);
    const runs = runsOf(job);
    assert.deepEqual(runs.map((r) => r.Type), ['Manual', 'Schedule', 'Schedule']);
    assert.equal(new Set(runs.map((r) => r.ImageId)).size, 3);
    // The run's end is committed first and the retired image's file removed after it, so the file may outlive the Waiting state by a moment.
    const imageFilesKept = (): boolean[] => runs.map((r) => existsSync(join(ferry.data, 'images', `${r.ImageId}.raw`)));
    await waitFor('the oldest image file to be deleted', () => Promise.resolve(imageFilesKept()[0] === false ? true : undefined), 10_000);
    assert.deepEqual(imageFilesKept(), [false, true, true], 'the oldest image was deleted, the two newest kept');
    assert.equal(job?.ImageId, runs[2]?.ImageId);
    await client.request('CutOverReplicationJob', { JobId });
    assert.equal((await describeJob(client, JobId))?.Status, 'Finished');
  });

  it('expires a job at ValidTime and deletes it 7 days later; an activation code expires after TimeToLiveInDays', async () => {
    const token = await client.request('CreateAccessToken', { Name: 'short-lived', TimeToLiveInDays: '1' });
    const validTime = Math.ceil((serverNow() + 7 * dayMs + 60_000) / 1000) * 1000;
    const { JobId } = (await client.request('CreateReplicationJob', { RegionId: 'cn-hangzhou', SourceId: agent.sourceId, ImageName: 'expiring', SystemDiskSize: 20, ValidTime: isoUtc(validTime) })) as { JobId: string };
    advance(7 * dayMs + 2 * 60_000);
    const expired = await jobReaches(client, JobId, 'Expired');
    assert.equal(expired['ValidTime'], isoUtc(validTime));
    await waitFor('the agent to be heard again', async () => ((await describeSource(client, agent.sourceId))?.State === 'InUse' ? true : undefined));
    await rejectsWith(client.request('StartReplicationJob', { JobId }), 'ReplicationJob.InvalidStatus');
    const tokens = await client.request('ListAccessTokens', { AccessTokenId: [token['AccessTokenId']] });
    assert.equal((tokens['AccessTokens'] as { AccessToken: Array<Record<string, unknown>> }).AccessToken[0]?.['Status'], 'expired');
    const activation = await fetch(`${server.url}/api/v1/agent/activate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'too-late', facts: machineFacts([mib]), accessTokenId: token['AccessTokenId'], accessTokenCode: token['AccessTokenCode'] }),
    });
    assert.equal(activation.status, 403);
    advance(7 * dayMs);
    await waitFor('the expired job to be deleted', async () => ((await describeJob(client, JobId)) === undefined ? true : undefined), 30_000);
    await waitFor('the source to be Available again', async () => ((await describeSource(client, agent.sourceId))?.State === 'Available' ? true : undefined));
  });
});
