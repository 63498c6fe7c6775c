/** `ferry serve --demo` as a user starts it: the DESIGN.md fleet is there and the printed key works, and a restart keeps both. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ferryCli } from './support/api.ts';
import { type FerryServer, startFerry } from './support/ferry-process.ts';

/** The environment the banner's `export` line sets, read back from the server's output. */
async function bannerEnv(server: FerryServer): Promise<Record<string, string>> {
  for (let waited = 0; waited < 10_000; waited += 50) {
    const line = /^export (FERRY_ENDPOINT=.*)$/m.exec(server.output())?.[1];
    if (line !== undefined) return Object.fromEntries(line.split(' ').map((pair) => pair.split('=') as [string, string]));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no export line in:\n${server.output()}`);
}

describe('ferry serve --demo', () => {
  const data = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  after(() => rmSync(data, { recursive: true, force: true }));

  it('starts with the DESIGN.md fleet and prints a key the CLI can use at once; a restart keeps the key and changes nothing', async () => {
    const first = await startFerry({ data, extra: ['--demo'] });
    let env: Record<string, string>;
    try {
      env = await bannerEnv(first);
      assert.equal(env['FERRY_ENDPOINT'], first.url);
      assert.match(first.output(), /demo fleet applied \(created 9, updated 0, unchanged 0\)/);
      const fleet = JSON.parse(await ferryCli(['fleet', 'show', '--json'], env)) as { regions: Array<{ zones: Array<{ hosts: Array<{ id: string }> }> }> };
      assert.deepEqual(fleet.regions.flatMap((r) => r.zones.flatMap((z) => z.hosts.map((h) => h.id))).sort(), ['host-h1', 'host-h2']);
      const instance = JSON.parse(await ferryCli(['instance', 'show', 'i-1', '--json'], env)) as { hostId: string; status: string; disks: Array<{ id: string; sizeGiB: number }> };
      assert.deepEqual([instance.hostId, instance.status, instance.disks.map((d) => [d.id, d.sizeGiB])], ['host-h1', 'Running', [['d-1', 20]]]);
    } finally {
      assert.equal(await first.stop(), 0);
    }
    const second = await startFerry({ data, extra: ['--demo'] });
    try {
      const again = await bannerEnv(second);
      assert.deepEqual([again['FERRY_ACCESS_KEY_ID'], again['FERRY_ACCESS_KEY_SECRET']], [env['FERRY_ACCESS_KEY_ID'], env['FERRY_ACCESS_KEY_SECRET']]);
      assert.match(second.output(), /demo fleet applied \(created 0, updated 0, unchanged 9\)/);
      await ferryCli(['instance', 'show', 'i-1', '--json'], again);
    } finally {
      await second.stop();
    }
  });

  it('does without the demo when not asked: no fleet, no key printed', async () => {
    const plainData = mkdtempSync(join(tmpdir(), 'ferry-plain-'));
    const plain = await startFerry({ data: plainData });
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.doesNotMatch(plain.output(), /demo|export FERRY_/);
    } finally {
      await plain.stop();
      rmSync(plainData, { recursive: true, force: true });
    }
  });
});
