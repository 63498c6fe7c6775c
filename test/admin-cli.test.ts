/** `ferry admin` commands as an operator runs them on a data dir: their --json answers and what they change in the database. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openDatabase } from '../src/store/database.ts';
import { type CreatedKey, ferryCli } from './support/api.ts';

describe('ferry admin', () => {
  const data = mkdtempSync(join(tmpdir(), 'ferry-admin-'));
  after(() => rmSync(data, { recursive: true, force: true }));

  async function keyRow(id: string): Promise<{ status: string; policy: string | null }> {
    const database = await openDatabase({ dataDir: data, url: undefined });
    try {
      const row = await database.db
        .selectFrom('access_keys')
        .leftJoin('key_policies', 'key_policies.access_key_id', 'access_keys.id')
        .select(['access_keys.status', 'key_policies.document'])
        .where('access_keys.id', '=', id)
        .executeTakeFirstOrThrow();
      return { status: row.status, policy: row.document };
    } finally {
      await database.close();
    }
  }

  it('prints one JSON object for each change with --json, and a line without it', async () => {
    const key = JSON.parse(await ferryCli(['admin', 'create-key', '--data', data, '--json'])) as CreatedKey;
    const policyFile = join(data, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ Statement: [{ Effect: 'Deny', Action: 'smc:Delete*', Resource: '*' }] }));

    assert.deepEqual(JSON.parse(await ferryCli(['admin', 'policy', 'attach', key.accessKeyId, '-f', policyFile, '--data', data, '--json'])), { accessKeyId: key.accessKeyId, policy: 'attached' });
    assert.match((await keyRow(key.accessKeyId)).policy ?? '', /smc:Delete\*/);
    assert.deepEqual(JSON.parse(await ferryCli(['admin', 'policy', 'detach', key.accessKeyId, '--data', data, '--json'])), { accessKeyId: key.accessKeyId, policy: 'detached' });
    assert.equal((await keyRow(key.accessKeyId)).policy, null);

    assert.deepEqual(JSON.parse(await ferryCli(['admin', 'key', 'disable', key.accessKeyId, '--data', data, '--json'])), { accessKeyId: key.accessKeyId, status: 'Inactive' });
    assert.equal((await keyRow(key.accessKeyId)).status, 'Inactive');
    assert.equal(await ferryCli(['admin', 'key', 'enable', key.accessKeyId, '--data', data]), `${key.accessKeyId} enabled\n`);
    assert.equal((await keyRow(key.accessKeyId)).status, 'Active');
  });

  it('refuses an unknown key with its code and exit status 2, changing nothing', async () => {
    await assert.rejects(ferryCli(['admin', 'key', 'disable', 'LTAInosuchkey', '--data', data, '--json']), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr ?? '', /InvalidAccessKeyId\.NotFound/);
      return true;
    });
  });
});
