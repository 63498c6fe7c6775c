/** The native REST API with the CLI's ACS3 signer against a real `ferry serve`, and the OpenAPI document. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiError, callApi } from '../src/cli/api-client.ts';
import { type FerryWithKey, startFerryWithKey } from './support/api.ts';

function rejectsWith(code: string, status: number) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ApiError, String(err));
    assert.deepEqual([err.code, err.status], [code, status]);
    assert.match(err.requestId, /^[0-9A-F-]{36}$/);
    return true;
  };
}

describe('native API /api/v1', () => {
  let ferry: FerryWithKey;
  before(async () => {
    ferry = await startFerryWithKey();
  });
  after(() => ferry.close());

  const creds = () => ({ endpoint: ferry.server.url, accessKeyId: ferry.key.accessKeyId, accessKeySecret: ferry.key.accessKeySecret });

  it('accepts requests signed with ACS3-HMAC-SHA256 by a Ferry key', async () => {
    const me = await callApi<{ accountId: string; accessKeyId: string }>(creds(), 'GET', '/api/v1/whoami');
    assert.deepEqual(me, { accountId: ferry.key.accountId, accessKeyId: ferry.key.accessKeyId });
  });

  it('refuses unsigned, wrongly signed and unknown-key requests', async () => {
    const unsigned = await fetch(`${ferry.server.url}/api/v1/whoami`);
    assert.equal(unsigned.status, 400);
    assert.equal(((await unsigned.json()) as { code: string }).code, 'IncompleteSignature');
    await assert.rejects(callApi({ ...creds(), accessKeySecret: 'wrong' }, 'GET', '/api/v1/whoami'), rejectsWith('SignatureDoesNotMatch', 400));
    await assert.rejects(callApi({ ...creds(), accessKeyId: 'LTAInosuchkey' }, 'GET', '/api/v1/whoami'), rejectsWith('InvalidAccessKeyIdNotFound', 404));
  });

  it('answers a job of nobody as not found', async () => {
    await assert.rejects(callApi(creds(), 'GET', '/api/v1/jobs/job-unknown'), rejectsWith('JobNotFound', 404));
  });

  it('publishes OpenAPI 3 at /docs with native routes and the POP actions', async () => {
    const doc = (await (await fetch(`${ferry.server.url}/docs`)).json()) as { openapi: string; paths: Record<string, unknown>; 'x-pop-actions': Array<{ action: string }> };
    assert.match(doc.openapi, /^3\./);
    assert.ok('/api/v1/jobs/{jobId}' in doc.paths);
    assert.ok(doc['x-pop-actions'].some((a) => a.action === 'CreateAccessToken'));
  });
});
