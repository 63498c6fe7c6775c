/**
 * The agent side of the native API (docs/agent-protocol.md): registration, heartbeats, the long
 * poll for commands and the reports of a run. Agents dial out; the server never connects to them.
 * Every route but `activate` is signed with the agent's own key, which its registration issued.
 */
import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { agentApiPrefix } from '../../../core/agent-protocol.ts';
import { pollCommands, reportProgress, reportResult } from '../../../migration/agent-commands.ts';
import { agentSettings } from '../../../migration/agent-settings.ts';
import { recordHeartbeat, registerSourceServer, requireAgentSource } from '../../../migration/source-registration.ts';
import type { NativeRoutes } from '../native-door.ts';

const prefix = agentApiPrefix.replace(/^\/api\/v1/, '');

const PartitionFacts = Type.Object({
  index: Type.Integer({ minimum: 0, maximum: 1024 }),
  offsetBytes: Type.Integer({ minimum: 0 }),
  sizeBytes: Type.Integer({ minimum: 0 }),
  type: Type.Union([Type.Literal('Normal'), Type.Literal('System'), Type.Literal('Boot')]),
  path: Type.String({ maxLength: 4096 }),
});

const DiskFacts = Type.Object({
  index: Type.Integer({ minimum: 0, maximum: 16 }),
  path: Type.String({ maxLength: 4096 }),
  sizeBytes: Type.Integer({ minimum: 0 }),
  partitionTable: Type.Union([Type.Literal('mbr'), Type.Literal('gpt'), Type.Literal('none')]),
  parts: Type.Array(PartitionFacts, { maxItems: 128 }),
});

const SourceFacts = Type.Object({
  agentVersion: Type.String({ maxLength: 64 }),
  hostname: Type.String({ maxLength: 255 }),
  platform: Type.String({ maxLength: 255 }),
  architecture: Type.String({ maxLength: 64 }),
  kernelLevel: Type.Integer({ minimum: 0 }),
  cores: Type.Integer({ minimum: 0 }),
  memoryBytes: Type.Integer({ minimum: 0 }),
  ipv4: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 64 }),
  disks: Type.Array(DiskFacts, { minItems: 1, maxItems: 17 }),
});

const RegisterResponse = Type.Object({ sourceId: Type.String(), accessKeyId: Type.String(), accessKeySecret: Type.String(), heartbeatSeconds: Type.Integer() });
const CommandAnswer = Type.Object({ cancelled: Type.Boolean() });
const commandParams = Type.Object({ commandId: Type.String({ maxLength: 64 }) });
const tags = ['agent'];

export const agentRoutes: NativeRoutes = (scope, deps) => {
  const registration = { database: deps.runtime.database, clock: deps.runtime.clock, secrets: deps.runtime.secrets };
  // Long polls end when the node shuts down, so they never hold up a graceful stop.
  const closing = new AbortController();
  scope.addHook('preClose', (done) => {
    closing.abort();
    done();
  });

  async function agentSource(request: FastifyRequest, action: string) {
    deps.authorize(request, action);
    const caller = deps.caller(request);
    return requireAgentSource(deps.runtime.database, caller.accountId, caller.accessKeyId);
  }

  scope.post(
    `${prefix}/activate`,
    {
      config: { anonymous: true },
      schema: {
        tags,
        summary: 'Register a source server with an SMC activation code (unsigned: the code is the proof); returns the agent\'s own key',
        body: Type.Object({ name: Type.String({ maxLength: 256 }), facts: SourceFacts, accessTokenId: Type.String({ maxLength: 64 }), accessTokenCode: Type.String({ maxLength: 256 }) }),
        response: { 200: RegisterResponse },
      },
    },
    async (request) => {
      const { name, facts, accessTokenId, accessTokenCode } = request.body;
      return registerSourceServer(registration, { accessTokenId, accessTokenCode }, name, facts);
    },
  );

  scope.post(
    `${prefix}/register`,
    {
      schema: {
        tags,
        summary: 'Register a source server in the signing key\'s account; returns the agent\'s own key',
        body: Type.Object({ name: Type.String({ maxLength: 256 }), facts: SourceFacts }),
        response: { 200: RegisterResponse },
      },
    },
    async (request) => {
      deps.authorize(request, 'RegisterAgent');
      return registerSourceServer(registration, { accountId: deps.caller(request).accountId }, request.body.name, request.body.facts);
    },
  );

  scope.post(
    `${prefix}/heartbeat`,
    {
      schema: {
        tags,
        summary: 'The agent is alive; facts (disks, OS) on the first heartbeat after a start',
        body: Type.Object({ facts: Type.Optional(SourceFacts) }),
        response: { 200: Type.Object({ sourceId: Type.String(), heartbeatSeconds: Type.Integer() }) },
      },
    },
    async (request) => {
      const source = await agentSource(request, 'AgentHeartbeat');
      return recordHeartbeat(deps.runtime.database, deps.runtime.clock, source, request.body.facts);
    },
  );

  scope.get(
    `${prefix}/commands`,
    {
      schema: {
        tags,
        summary: 'Long poll: the open commands not in exclude, waiting up to waitMs for one',
        querystring: Type.Object({ waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: agentSettings().maxPollMs })), exclude: Type.Optional(Type.String({ maxLength: 4096 })) }),
      },
    },
    async (request, reply) => {
      const source = await agentSource(request, 'AgentPollCommands');
      const gone = new AbortController();
      reply.raw.once('close', () => gone.abort());
      const exclude = (request.query.exclude ?? '').split(',').filter((id) => id !== '');
      const commands = await pollCommands(deps.context(request), source, request.query.waitMs ?? 0, exclude, AbortSignal.any([gone.signal, closing.signal]));
      return { commands };
    },
  );

  scope.post(
    `${prefix}/commands/:commandId/progress`,
    { schema: { tags, summary: 'Progress of a run, 0-100; the answer says whether it was cancelled', params: commandParams, body: Type.Object({ percent: Type.Number({ minimum: 0, maximum: 100 }) }), response: { 200: CommandAnswer } } },
    async (request) => {
      const source = await agentSource(request, 'AgentReportProgress');
      return reportProgress(deps.context(request), source, request.params.commandId, request.body.percent);
    },
  );

  scope.post(
    `${prefix}/commands/:commandId/result`,
    {
      schema: {
        tags,
        summary: 'The end of a command: every disk sent (sizes and SHA-256), or the error that stopped it',
        params: commandParams,
        body: Type.Union([
          Type.Object({ ok: Type.Literal(true), disks: Type.Array(Type.Object({ index: Type.Integer({ minimum: 0, maximum: 16 }), sizeBytes: Type.Integer({ minimum: 0 }), sha256: Type.String({ maxLength: 64 }) }), { maxItems: 17 }) }),
          Type.Object({ ok: Type.Literal(false), errorCode: Type.String({ maxLength: 128 }), message: Type.String({ maxLength: 1024 }) }),
        ]),
        response: { 200: CommandAnswer },
      },
    },
    async (request) => {
      const source = await agentSource(request, 'AgentReportResult');
      return reportResult(deps.context(request), source, request.params.commandId, request.body);
    },
  );
};

