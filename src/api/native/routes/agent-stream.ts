/**
 * The agent's data-plane streams (docs/agent-protocol.md): a signed call hands out a one-time
 * ticket for one disk of a run, and `GET /api/v1/agent/stream?ticket=...` with
 * `Upgrade: ferry-dataplane/1` turns the HTTP connection into the data plane's framed byte stream.
 * The ticket is the proof for the upgrade, so the streamed bytes need no per-request signature.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Type } from 'typebox';
import { agentApiPrefix, agentStreamPath, agentStreamProtocol } from '../../../core/agent-protocol.ts';
import { DiskStreams } from '../../../migration/disk-streams.ts';
import { fileImageStore } from '../../../migration/image-store.ts';
import { requireAgentSource } from '../../../migration/source-registration.ts';
import { registerReplicationMetrics } from '../../common/replication-metrics.ts';
import type { NativeRoutes } from '../native-door.ts';

const prefix = agentApiPrefix.replace(/^\/api\/v1/, '');

function refuse(socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

export const agentStreamRoutes: NativeRoutes = (scope, deps) => {
  const { runtime } = deps;
  const streams = new DiskStreams({ database: runtime.database, clock: runtime.clock, images: fileImageStore(runtime.dataDir), log: (message) => scope.log.info(message) });
  registerReplicationMetrics(runtime.metrics.registry, runtime.database);

  scope.post(
    `${prefix}/commands/:commandId/streams`,
    {
      schema: {
        tags: ['agent'],
        summary: 'A one-time ticket to stream one disk of a replicate command over the data-plane protocol',
        params: Type.Object({ commandId: Type.String({ maxLength: 64 }) }),
        body: Type.Object({
          diskIndex: Type.Integer({ minimum: 0, maximum: 16 }),
          runTotalBytes: Type.Integer({ minimum: 0 }),
          runBytesBefore: Type.Integer({ minimum: 0 }),
        }),
        response: { 200: Type.Object({ ticket: Type.String(), expiresInSeconds: Type.Integer() }) },
      },
    },
    async (request) => {
      deps.authorize(request, 'AgentUploadChunk');
      const caller = deps.caller(request);
      const source = await requireAgentSource(runtime.database, caller.accountId, caller.accessKeyId);
      return streams.issueTicket(source, request.params.commandId, request.body);
    },
  );

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => undefined);
    const url = new URL(request.url ?? '/', 'http://ferry');
    if (url.pathname !== agentStreamPath) return refuse(socket, '404 Not Found');
    if ((request.headers.upgrade ?? '').toLowerCase() !== agentStreamProtocol) return refuse(socket, '400 Bad Request');
    // The agent sends nothing before the 101 answer, so no byte can arrive while the ticket is looked up.
    socket.pause();
    streams.redeem(url.searchParams.get('ticket') ?? '').then(
      (grant) => {
        if (grant === undefined) return refuse(socket, '403 Forbidden');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${agentStreamProtocol}\r\n\r\n`);
        if (head.length > 0) socket.unshift(head);
        // Still paused: the stream's frame reader resumes it once it listens.
        void streams.serve(grant, socket);
      },
      (err: unknown) => {
        scope.log.error({ err }, 'stream ticket lookup failed');
        refuse(socket, '503 Service Unavailable');
      },
    );
  };
  scope.server.on('upgrade', onUpgrade);
  // Before the server closes: open streams would hold it up, so they checkpoint and end first.
  scope.addHook('preClose', async () => {
    scope.server.off('upgrade', onUpgrade);
    await streams.stopAll();
  });
};
