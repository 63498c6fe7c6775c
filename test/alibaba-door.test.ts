/**
 * The Alibaba POP front door through the official SDK clients (pop-core V1, openapi-client V1 and V3)
 * against a real `ferry serve`, and hand-built requests for what no SDK sends.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { popEncode } from '../src/api/common/percent-encoding.ts';
import { v1Signature, v1StringToSign } from '../src/api/alibaba/signature-v1.ts';
import { type CreatedKey, type FerryWithKey, ferryCli, isSdkError, openApiCall, popClient, startFerryWithKey } from './support/api.ts';
import { seedFleet } from './support/smc-seed.ts';
import { contractSource, machineFacts } from './support/smc.ts';

function popTimestamp(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

interface RawAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** A V1-signed request built by hand, so a test can break exactly one thing about it. */
async function rawV1(
  url: string,
  key: CreatedKey,
  params: Record<string, string>,
  tweak: { signature?: (s: string) => string; timestamp?: string; nonce?: string; secret?: string; drop?: string } = {},
): Promise<RawAnswer> {
  const all: Record<string, string> = {
    Format: 'JSON',
    Version: '2019-06-01',
    AccessKeyId: key.accessKeyId,
    SignatureMethod: 'HMAC-SHA1',
    SignatureVersion: '1.0',
    SignatureNonce: tweak.nonce ?? randomUUID(),
    Timestamp: tweak.timestamp ?? popTimestamp(),
    ...params,
  };
  if (tweak.drop !== undefined) delete all[tweak.drop];
  const signature = v1Signature(v1StringToSign('GET', all), tweak.secret ?? key.accessKeySecret);
  all['Signature'] = tweak.signature?.(signature) ?? signature;
  const query = Object.entries(all)
    .map(([k, v]) => `${popEncode(k)}=${popEncode(v)}`)
    .join('&');
  const response = await fetch(`${url}/?${query}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function tokenCount(door: FerryWithKey): Promise<number> {
  const list = await popClient(door.server.url, door.key).request('ListAccessTokens', {});
  return Number(list['TotalCount']);
}

describe('Alibaba POP front door', () => {
  let door: FerryWithKey;
  before(async () => {
    door = await startFerryWithKey();
  });
  after(() => door.close());

  it('serves pop-core (V1, GET and POST) with repeat-list params', async () => {
    const client = popClient(door.server.url, door.key);
    const created = await client.request('CreateAccessToken', { Name: 'agents-a', Count: '5', TimeToLiveInDays: '7' });
    assert.match(String(created['AccessTokenId']), /^at-/);
    assert.equal(typeof created['AccessTokenCode'], 'string');
    assert.match(String(created['RequestId']), /^[0-9A-F-]{36}$/);
    const other = await client.request('CreateAccessToken', { Name: 'agents-b' }, { method: 'POST' });
    const listed = await client.request('ListAccessTokens', { AccessTokenId: [created['AccessTokenId'], other['AccessTokenId']] }, { method: 'POST' });
    const tokens = (listed['AccessTokens'] as { AccessToken: Array<Record<string, unknown>> }).AccessToken;
    assert.deepEqual(tokens.map((t) => t['Name']).sort(), ['agents-a', 'agents-b']);
    const a = tokens.find((t) => t['Name'] === 'agents-a');
    assert.deepEqual({ Count: a?.['Count'], TimeToLiveInDays: a?.['TimeToLiveInDays'], Status: a?.['Status'] }, { Count: '5', TimeToLiveInDays: '7', Status: 'unactivated' });
    assert.equal(listed['TotalCount'], 2);
  });

  for (const signature of ['v1', 'v3'] as const) {
    it(`serves @alicloud/openapi-client with signature ${signature}`, async () => {
      const call = openApiCall(door.server.url, door.key, signature);
      const created = await call('CreateAccessToken', { Name: `token-${signature}`, Count: '3' });
      const listed = await call('ListAccessTokens', { AccessTokenId: [created['AccessTokenId']] });
      const tokens = (listed['AccessTokens'] as { AccessToken: Array<Record<string, unknown>> }).AccessToken;
      assert.equal(tokens.length, 1);
      assert.equal(tokens[0]?.['Count'], '3');
      await assert.rejects(call('DeleteAccessToken', {}), isSdkError('MissingParameter', 400));
    });
  }

  it('answers errors with status and body Code, so every SDK sees them', async () => {
    const client = popClient(door.server.url, door.key);
    await assert.rejects(client.request('DisableAccessToken', { AccessTokenId: 'at-nope' }), (err: unknown) => {
      const e = err as { code: string; data: Record<string, unknown> };
      assert.equal(e.code, 'InvalidAccessTokenId.NotFound');
      assert.deepEqual(Object.keys(e.data).sort(), ['Code', 'HostId', 'Message', 'Recommend', 'RequestId']);
      assert.match(String(e.data['Recommend']), /^https:\/\/api\.aliyun\.com\/troubleshoot\?q=InvalidAccessTokenId\.NotFound&product=Smc&requestId=/);
      return true;
    });
    const raw = await rawV1(door.server.url, door.key, { Action: 'DisableAccessToken', AccessTokenId: 'at-nope' });
    assert.equal(raw.status, 404);
  });

  it('logs one JSON line per request, when it is answered, with its request id, status and action', async () => {
    const linesOf = async (requestId: string): Promise<Record<string, unknown>[]> => {
      const read = (): Record<string, unknown>[] =>
        door.server
          .output()
          .split('\n')
          .filter((line) => line.includes(requestId))
          .map((line) => JSON.parse(line) as Record<string, unknown>);
      for (let tries = 0; read().length === 0 && tries < 50; tries += 1) await new Promise((resolve) => setTimeout(resolve, 20));
      // A second line would follow the first at once; give it the time to show.
      await new Promise((resolve) => setTimeout(resolve, 50));
      return read();
    };
    const failed = await rawV1(door.server.url, door.key, { Action: 'DisableAccessToken', AccessTokenId: 'at-logged' });
    const failedId = String(failed.body['RequestId']);
    assert.deepEqual(
      (await linesOf(failedId)).map((l) => [l['msg'], l['statusCode'], l['method'], l['requestId'], l['action']]),
      [['request completed', 404, 'GET', failedId, 'smc:DisableAccessToken']],
    );
    const listed = await rawV1(door.server.url, door.key, { Action: 'ListAccessTokens' });
    const listedId = String(listed.body['RequestId']);
    assert.deepEqual(
      (await linesOf(listedId)).map((l) => [l['msg'], l['statusCode'], l['method'], l['requestId'], l['action']]),
      [['request completed', 200, 'GET', listedId, 'smc:ListAccessTokens']],
    );
    assert.doesNotMatch(door.server.output(), /FSTDEP|DeprecationWarning/, 'no deprecation warning at start');
  });

  it('refuses a tampered signature, an expired timestamp, a replayed nonce and changes nothing', async () => {
    const before = await tokenCount(door);
    const create = { Action: 'CreateAccessToken', Name: 'replayed' };
    // One character changed, whatever it was (a signature that began with A once slipped through as its own untampered self).
    const tampered = await rawV1(door.server.url, door.key, create, { signature: (s) => `${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}` });
    assert.deepEqual([tampered.status, tampered.body['Code']], [400, 'SignatureDoesNotMatch']);
    assert.match(String(tampered.body['Message']), /server string to sign is:GET&%2F&/);
    const wrongSecret = await rawV1(door.server.url, door.key, create, { secret: 'not-the-secret' });
    assert.deepEqual([wrongSecret.status, wrongSecret.body['Code']], [400, 'SignatureDoesNotMatch']);
    const expired = await rawV1(door.server.url, door.key, create, { timestamp: popTimestamp(Date.now() - 16 * 60_000) });
    assert.deepEqual([expired.status, expired.body['Code']], [400, 'InvalidTimeStamp.Expired']);
    const future = await rawV1(door.server.url, door.key, create, { timestamp: popTimestamp(Date.now() + 16 * 60_000) });
    assert.equal(future.body['Code'], 'InvalidTimeStamp.Expired');
    const badFormat = await rawV1(door.server.url, door.key, create, { timestamp: '2026-01-01 00:00:00' });
    assert.deepEqual([badFormat.status, badFormat.body['Code']], [400, 'InvalidTimeStamp.Format']);
    assert.equal(await tokenCount(door), before, 'no refused request created anything');

    const nonce = randomUUID();
    const first = await rawV1(door.server.url, door.key, create, { nonce });
    assert.equal(first.status, 200);
    const replay = await rawV1(door.server.url, door.key, create, { nonce });
    assert.deepEqual([replay.status, replay.body['Code']], [400, 'SignatureNonceUsed']);
    assert.equal(await tokenCount(door), before + 1, 'the replay created nothing');
  });

  it('names missing, mistyped and oversized params with the documented codes', async () => {
    const url = door.server.url;
    const missing = await rawV1(url, door.key, { Action: 'DisableAccessToken' });
    assert.deepEqual([missing.status, missing.body['Code']], [400, 'MissingParameter']);
    assert.match(String(missing.body['Message']), /AccessTokenId/);
    const mistyped = await rawV1(url, door.key, { Action: 'ListAccessTokens', Status: 'sleeping' });
    assert.deepEqual([mistyped.status, mistyped.body['Code']], [400, 'InvalidParameter']);
    assert.match(String(mistyped.body['Message']), /Status/);
    const outOfRange = await rawV1(url, door.key, { Action: 'CreateAccessToken', Count: '1001' });
    assert.deepEqual([outOfRange.status, outOfRange.body['Code']], [400, 'InvalidParameter']);
    assert.match(String(outOfRange.body['Message']), /Count/);
    const oversized = await rawV1(url, door.key, { Action: 'CreateAccessToken', Name: `a${'x'.repeat(5000)}` });
    assert.deepEqual([oversized.status, oversized.body['Code']], [400, 'InvalidParameter']);
    const tooMany = await rawV1(url, door.key, { Action: 'ListAccessTokens', ...Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`AccessTokenId.${i + 1}`, `at-${i}`])) });
    assert.deepEqual([tooMany.status, tooMany.body['Code']], [400, 'InvalidParameter']);
    const noAction = await rawV1(url, door.key, {});
    assert.deepEqual([noAction.status, noAction.body['Code']], [400, 'MissingParameter']);
    const noSignatureNonce = await rawV1(url, door.key, { Action: 'ListAccessTokens' }, { drop: 'SignatureNonce' });
    assert.deepEqual([noSignatureNonce.status, noSignatureNonce.body['Code']], [400, 'MissingParameter']);
  });

  it('answers unknown actions, versions and keys with the gateway codes', async () => {
    const url = door.server.url;
    const action = await rawV1(url, door.key, { Action: 'DescribeEverything' });
    assert.deepEqual([action.status, action.body['Code']], [404, 'InvalidAction.NotFound']);
    const version = await rawV1(url, door.key, { Action: 'ListAccessTokens', Version: '2099-01-01' });
    assert.deepEqual([version.status, version.body['Code']], [404, 'InvalidAction.NotFound']);
    const unknownKey = await rawV1(url, { ...door.key, accessKeyId: 'LTAInobodyhasthiskey00' }, { Action: 'ListAccessTokens' });
    assert.deepEqual([unknownKey.status, unknownKey.body['Code']], [404, 'InvalidAccessKeyId.NotFound']);
    const put = await fetch(`${url}/?Action=ListAccessTokens`, { method: 'PUT' });
    assert.equal(put.status, 403);
    assert.equal(((await put.json()) as Record<string, unknown>)['Code'], 'UnsupportedHTTPMethod');
    const xml = await rawV1(url, door.key, { Action: 'DescribeEverything', Format: 'JSON' });
    assert.equal(typeof xml.body['RequestId'], 'string');
  });

  it('answers XML when Format=XML', async () => {
    const all: Record<string, string> = {
      Action: 'ListAccessTokens',
      Format: 'XML',
      Version: '2019-06-01',
      AccessKeyId: door.key.accessKeyId,
      SignatureMethod: 'HMAC-SHA1',
      SignatureVersion: '1.0',
      SignatureNonce: randomUUID(),
      Timestamp: popTimestamp(),
    };
    all['Signature'] = v1Signature(v1StringToSign('GET', all), door.key.accessKeySecret);
    const response = await fetch(`${door.server.url}/?${new URLSearchParams(all).toString()}`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /xml/);
    assert.match(await response.text(), /^<\?xml[^>]*>\s*<ListAccessTokensResponse>[\s\S]*<RequestId>/);
  });

  it('keeps each account to its own resources', async () => {
    const mine = await popClient(door.server.url, door.key).request('CreateAccessToken', { Name: 'private' });
    const stranger = await door.createKey('stranger');
    assert.notEqual(stranger.accountId, door.key.accountId);
    const theirs = popClient(door.server.url, stranger);
    const listed = await theirs.request('ListAccessTokens', { AccessTokenId: [mine['AccessTokenId']] });
    assert.equal(listed['TotalCount'], 0);
    await assert.rejects(theirs.request('DeleteAccessToken', { AccessTokenId: mine['AccessTokenId'] }), isSdkError('InvalidAccessTokenId.NotFound'));
    const still = await popClient(door.server.url, door.key).request('ListAccessTokens', { AccessTokenId: [mine['AccessTokenId']] });
    assert.equal(still['TotalCount'], 1);
  });

  it('enforces attached policies (Deny wins) and disabled keys', async () => {
    const key = await door.createKey('policy-test');
    const client = popClient(door.server.url, key);
    await client.request('CreateAccessToken', { Name: 'before-policy' });
    const policyFile = join(door.data, 'policy.json');
    writeFileSync(
      policyFile,
      JSON.stringify({
        Version: '1',
        Statement: [
          { Effect: 'Allow', Action: 'smc:*', Resource: '*' },
          { Effect: 'Deny', Action: ['smc:Create*', 'smc:DeleteAccessToken'], Resource: '*' },
        ],
      }),
    );
    await ferryCli(['admin', 'policy', 'attach', key.accessKeyId, '-f', policyFile, '--data', door.data]);
    await assert.rejects(client.request('CreateAccessToken', { Name: 'denied' }), (err: unknown) => {
      const e = err as { code: string; data: { AccessDeniedDetail?: Record<string, unknown> } };
      assert.equal(e.code, 'Forbidden.RAM');
      assert.equal(e.data.AccessDeniedDetail?.['NoPermissionType'], 'ExplicitDeny');
      assert.equal(e.data.AccessDeniedDetail?.['AuthAction'], 'smc:CreateAccessToken');
      return true;
    });
    const listed = await client.request('ListAccessTokens', {});
    assert.equal(listed['TotalCount'], 1, 'allowed actions still work and the denied one created nothing');

    writeFileSync(policyFile, JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 'smc:List*', Resource: 'acs:smc:*:*:*' }] }));
    await ferryCli(['admin', 'policy', 'attach', key.accessKeyId, '-f', policyFile, '--data', door.data]);
    await assert.rejects(client.request('DisableAccessToken', { AccessTokenId: 'at-x' }), (err: unknown) => {
      const e = err as { code: string; data: { AccessDeniedDetail?: Record<string, unknown> } };
      return e.code === 'Forbidden.RAM' && e.data.AccessDeniedDetail?.['NoPermissionType'] === 'ImplicitDeny';
    });

    await ferryCli(['admin', 'key', 'disable', key.accessKeyId, '--data', door.data]);
    await assert.rejects(client.request('ListAccessTokens', {}), isSdkError('Forbidden.AccessKeyDisabled'));
  });
});

describe('Alibaba POP front door under a flood', () => {
  it('throttles per key with Throttling.User and stays responsive', async () => {
    const door = await startFerryWithKey({ env: { FERRY_RATE_USER_RPS: '5', FERRY_RATE_USER_BURST: '5' } });
    after(() => door.close());
    const client = popClient(door.server.url, door.key);
    const started = Date.now();
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, () => client.request('ListAccessTokens', {}).then(() => 'ok', (err: { code: string }) => err.code)),
    );
    const refilled = Math.ceil(((Date.now() - started) / 1000) * 5);
    const passed = outcomes.filter((o) => o === 'ok').length;
    assert.ok(passed >= 5 && passed <= 5 + refilled, `the burst of 5 plus ${refilled} refilled tokens pass, got ${passed}: ${outcomes.join(',')}`);
    assert.ok(outcomes.includes('Throttling.User'));
    assert.ok(outcomes.every((o) => o === 'ok' || o === 'Throttling.User'));
    const health = await fetch(`${door.server.url}/healthz`);
    assert.equal(health.status, 200);
    const other = popClient(door.server.url, await door.createKey('other'));
    assert.equal((await other.request('ListAccessTokens', {}))['TotalCount'], 0, 'another key is not throttled');
  });
});

describe('Alibaba POP front door: a repeat list and a JSON param through every SDK', () => {
  let door: FerryWithKey;
  before(async () => {
    door = await startFerryWithKey({ env: { FERRY_AGENT_HEARTBEAT_SECONDS: '600' } });
    await seedFleet(`sqlite:${join(door.data, 'ferry.db')}`, door.key.accountId);
  });
  after(() => door.close());

  const gib = 1024 ** 3;
  const popCore = (url: string, key: CreatedKey) => {
    const client = popClient(url, key);
    return (action: string, params: Record<string, unknown>) => client.request(action, params, { method: 'POST' });
  };
  const clients = {
    'pop-core': popCore,
    'openapi-client V1': (url: string, key: CreatedKey) => openApiCall(url, key, 'v1'),
    'openapi-client V3': (url: string, key: CreatedKey) => openApiCall(url, key, 'v3'),
  } as const;

  for (const [name, makeClient] of Object.entries(clients)) {
    it(`${name}: CreateReplicationJob with DataDisk.N.Part.N, Tag.N and ReplicationParameters reads back as sent`, async () => {
      const call = makeClient(door.server.url, door.key);
      const sourceId = await contractSource(door, door.key, `src-${name.replace(/\W+/g, '-')}`, machineFacts([30 * gib, 40 * gib, 20 * gib]));
      const replicationParameters = '{"bandwidth_limit":40,"compress_level":7,"checksum":true}';
      const params = {
        RegionId: 'cn-hangzhou',
        SourceId: sourceId,
        Name: `json-${name.replace(/\W+/g, '-')}`,
        ImageName: `image-${name.replace(/\W+/g, '-')}`,
        SystemDiskSize: 30,
        ReplicationParameters: replicationParameters,
        DataDisk: [
          { Index: 1, Size: 40, Part: [{ Device: '1_0', SizeBytes: 40 * gib, Block: true }] },
          { Index: 2, Size: 20 },
        ],
        Tag: [
          { Key: 'team', Value: "a b!'()*~" },
          { Key: 'env', Value: 'prod' },
        ],
      };
      const { JobId } = (await call('CreateReplicationJob', params)) as { JobId: string };
      assert.match(JobId, /^j-/);
      const listed = await call('DescribeReplicationJobs', { RegionId: 'cn-hangzhou', JobId: [JobId] });
      const jobs = (listed['ReplicationJobs'] as { ReplicationJob: Array<Record<string, unknown>> }).ReplicationJob;
      assert.equal(jobs.length, 1);
      const job = jobs[0] ?? {};
      assert.deepEqual(JSON.parse(String(job['ReplicationParameters'])), { bandwidth_limit: 40, compress_level: 7, checksum: true });
      assert.deepEqual(JSON.parse(JSON.stringify(job['DataDisks'])), {
        DataDisk: [
          { Index: 1, Size: 40, Parts: { Part: [{ Device: '1_0', SizeBytes: 40 * gib, Block: true }] } },
          { Index: 2, Size: 20, Parts: { Part: [] } },
        ],
      });
      const tags = (job['Tags'] as { Tag: Array<{ Key: string; Value: string }> }).Tag;
      assert.deepEqual(Object.fromEntries(tags.map((t) => [t.Key, t.Value])), { team: "a b!'()*~", env: 'prod' });

      // A JSON param that is not JSON, or names an unknown key, is refused by name and creates nothing.
      for (const bad of ['{"bandwidth_limit":', '{"speed":1}', '[1,2]']) {
        await assert.rejects(call('CreateReplicationJob', { ...params, Name: 'never-made', ReplicationParameters: bad }), (err: unknown) => {
          isSdkError('InvalidParameter', 400)(err);
          assert.match(String((err as Error).message), /ReplicationParameters/);
          return true;
        });
      }
      // A repeat list with a mistyped member is refused naming the flattened field.
      await assert.rejects(call('CreateReplicationJob', { ...params, Name: 'never-made', DataDisk: [{ Index: 'one', Size: 20 }] }), (err: unknown) => {
        isSdkError('InvalidParameter', 400)(err);
        assert.match(String((err as Error).message), /DataDisk\.1\.Index/);
        return true;
      });
      assert.equal(Number((await call('DescribeReplicationJobs', { RegionId: 'cn-hangzhou', Name: 'never-made' }))['TotalCount']), 0);
      await call('DeleteReplicationJob', { JobId });
    });
  }
});
