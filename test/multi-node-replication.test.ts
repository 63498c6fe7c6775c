/**
 * A replication run through two Ferry nodes behind one address, as README "Several nodes" sets
 * them up: one PostgreSQL, one data directory on storage both see. A proxy in front sends every
 * data-plane stream to node B and everything else (the agent's ticket calls among them) to node A,
 * so each stream redeems on B a ticket that A issued. The exported image must equal the source.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { agentStreamPath } from '../src/core/agent-protocol.ts';
import { writeTestDisk } from '../src/dataplane/test-disk.ts';
import { type CreatedKey, type FerryWithKey, ferryCli, popClient } from './support/api.ts';
import { type FerryServer, startFerry } from './support/ferry-process.ts';
import { sha256File } from './support/moves.ts';
import { freshPostgresDatabase } from './support/postgres.ts';
import { type AgentProcess, jobReaches, startAgent } from './support/smc.ts';

const mib = 1024 * 1024;

/** A TCP proxy that reads each connection's first bytes and sends data-plane upgrades to `streams`, the rest to `api`. */
function splittingProxy(api: URL, streams: URL): Promise<{ url: string; streamsSent: () => number; close: () => void }> {
  let streamsSent = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    sockets.add(inbound);
    inbound.once('data', (first: Buffer) => {
      inbound.pause();
      const toStreams = first.toString('latin1').startsWith(`GET ${agentStreamPath}?`);
      if (toStreams) streamsSent += 1;
      const target = toStreams ? streams : api;
      const outbound = connect(Number(target.port), target.hostname, () => {
        outbound.write(first);
        inbound.pipe(outbound);
        outbound.pipe(inbound);
        inbound.resume();
      });
      sockets.add(outbound);
      const closeBoth = (): void => {
        inbound.destroy();
        outbound.destroy();
      };
      outbound.on('error', closeBoth);
      inbound.on('error', closeBoth);
      outbound.on('close', closeBoth);
      inbound.on('close', closeBoth);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        streamsSent: () => streamsSent,
        close: () => {
          for (const socket of sockets) socket.destroy();
          server.close();
        },
      });
    });
  });
}

describe('replication through two nodes sharing PostgreSQL and a data directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-two-nodes-'));
  const data = join(dir, 'shared-data');
  let db: string;
  let nodes: FerryServer[] = [];
  let agent: AgentProcess | undefined;
  let proxy: Awaited<ReturnType<typeof splittingProxy>>;
  let key: CreatedKey;

  before(async () => {
    db = await freshPostgresDatabase('two_nodes');
    const first = await startFerry({ data, db, extra: ['--poll-ms', '100'] });
    const second = await startFerry({ data, db, extra: ['--poll-ms', '100'] });
    nodes = [first, second];
    key = JSON.parse(await ferryCli(['admin', 'create-key', '--data', data, '--db', db, '--json'])) as CreatedKey;
    proxy = await splittingProxy(new URL(first.url), new URL(second.url));
  });
  after(async () => {
    await agent?.stop();
    proxy.close();
    await Promise.all(nodes.map((node) => node.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams each disk to the node that did not issue its ticket, and the image equals the source', async () => {
    const disk = join(dir, 'disk.raw');
    await writeTestDisk(disk, { sizeBytes: 96 * mib, seed: 7 });
    const ferry: FerryWithKey = { server: nodes[0]!, data, db, key, createKey: () => Promise.resolve(key), close: () => Promise.resolve() };
    agent = await startAgent(ferry, { name: 'two-node-source', disks: [disk], endpoint: proxy.url });
    const client = popClient(proxy.url, key);
    const { JobId } = (await client.request('CreateReplicationJob', { RegionId: 'cn-hangzhou', SourceId: agent.sourceId, ImageName: 'two-nodes', SystemDiskSize: 20, ReplicationParameters: '{"checksum":true}' })) as { JobId: string };
    await client.request('StartReplicationJob', { JobId });
    const done = await jobReaches(client, JobId, 'Finished', undefined, 120_000);
    assert.ok(proxy.streamsSent() >= 1, 'the disk travelled through node B');

    const out = join(dir, 'exported.raw');
    const env = { FERRY_ENDPOINT: proxy.url, FERRY_ACCESS_KEY_ID: key.accessKeyId, FERRY_ACCESS_KEY_SECRET: key.accessKeySecret };
    await ferryCli(['image', 'export', done.ImageId, '--format', 'raw', '-o', out, '--json'], env);
    assert.equal(await sha256File(out), await sha256File(disk));
  });
});
