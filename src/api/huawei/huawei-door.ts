/**
 * The Huawei Cloud ECS front door under `/v1/{project_id}/` (and the DeH list under
 * `/v1.0/{project_id}/dedicated-hosts`): SDK-HMAC-SHA256 authentication, the project checked
 * against the key's account, and the cold migration calls of huawei-ecs-api.md. Errors answer as
 * ECS does: `{"error":{"code","message"}}` from the service, `{"error_msg","error_code","request_id"}`
 * from the gateway (APIGW.*). Business rules live in src/migration; this file only translates.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../core/errors.ts';
import { listDedicatedHosts, showColdMigrationJob, showServer, startColdMigration } from '../../migration/cold-migration.ts';
import type { ServiceContext } from '../../migration/service-context.ts';
import { classifyError } from '../common/errors-http.ts';
import { maxClockSkewMs } from '../common/request-time.ts';
import type { Runtime } from '../runtime.ts';
import { ecsDedicatedHost, ecsJob, ecsServer } from './ecs-views.ts';
import { type SdkRequest, parseSdkAuthorization, parseSdkDate, sdkStringToSign, verifySdkSignature } from './signature.ts';

/** The HTTP status of each gateway code; anything else keeps its catalogue status. */
const gatewayStatus: Readonly<Record<string, number>> = { 'APIGW.0301': 401, 'APIGW.0101': 404, 'APIGW.0305': 403, 'APIGW.0308': 429 };

/** ECS answers a malformed request with Ecs.0005 where Ferry's catalogue says InvalidParameter / MissingParameter. */
const ecsCodeOf: Readonly<Record<string, string>> = { 'Common.0001': 'Ecs.0005', 'Common.0002': 'Ecs.0005' };

interface Caller {
  readonly accountId: string;
  readonly projectId: string;
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function rawBody(request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

function decodeSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The request as the signature covers it: path and query decoded, headers by lower-case name. */
function sdkRequest(request: FastifyRequest): SdkRequest {
  const rawUrl = request.raw.url ?? '/';
  const q = rawUrl.indexOf('?');
  const query = new Map<string, string[]>();
  for (const pair of (q === -1 ? '' : rawUrl.slice(q + 1)).split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decodeSafe(eq === -1 ? pair : pair.slice(0, eq));
    query.set(name, [...(query.get(name) ?? []), decodeSafe(eq === -1 ? '' : pair.slice(eq + 1))]);
  }
  const headers = new Map<string, string>();
  for (const name of Object.keys(request.headers)) headers.set(name.toLowerCase(), header(request, name) ?? '');
  return { method: request.method, path: q === -1 ? rawUrl : rawUrl.slice(0, q), query, headers, body: rawBody(request) };
}

/** `{"migrate":{"dedicated_host_id":"..."}}` → that host; `{"migrate":null}`, `{"migrate":{}}` or `{}` → the public pool (null). */
function migrateTarget(body: Buffer): string | null {
  const bad = (reason: string): AppError => new AppError('InvalidParameter', { name: 'migrate', reason });
  if (body.length === 0) throw bad('the request body is missing; send {"migrate":{"dedicated_host_id":"..."}} or {"migrate":null}');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw bad('the request body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad('the request body must be a JSON object');
  const migrate = (parsed as { migrate?: unknown }).migrate;
  if (migrate === undefined || migrate === null) return null;
  if (typeof migrate !== 'object' || Array.isArray(migrate)) throw bad('must be an object or null');
  const id = (migrate as { dedicated_host_id?: unknown }).dedicated_host_id;
  if (id === undefined || id === null) return null;
  if (typeof id !== 'string' || id === '' || id.length > 64) throw new AppError('InvalidParameter', { name: 'migrate.dedicated_host_id', reason: 'must be a dedicated host id (1 to 64 characters)' });
  return id;
}

export function registerHuaweiDoor(app: FastifyInstance, runtime: Runtime): void {
  const db = runtime.database.db;
  const callers = new WeakMap<FastifyRequest, Caller>();

  /** SDK-HMAC-SHA256, then the key's state, the X-Sdk-Date window and the project. */
  async function authenticate(request: FastifyRequest, projectId: string): Promise<Caller> {
    const authorization = header(request, 'authorization');
    if (authorization === undefined) throw new AppError('IncompleteSignature', { reason: 'the Authorization header is missing; sign the request with SDK-HMAC-SHA256' });
    const auth = parseSdkAuthorization(authorization);
    if (!auth.ok) throw new AppError('IncompleteSignature', { reason: auth.reason });
    for (const required of ['host', 'x-sdk-date']) {
      if (!auth.value.signedHeaders.includes(required)) throw new AppError('IncompleteSignature', { reason: `SignedHeaders must include ${required}` });
    }
    const sdkDate = header(request, 'x-sdk-date') ?? '';
    const dateMs = parseSdkDate(sdkDate);
    if (dateMs === undefined) throw new AppError('IncompleteSignature', { reason: 'X-Sdk-Date must be YYYYMMDDTHHMMSSZ in UTC' });
    const { key } = await runtime.keys.find(auth.value.accessKeyId);
    const signed = sdkRequest(request);
    if (!verifySdkSignature(signed, auth.value, sdkDate, key.secret)) {
      throw new AppError('SignatureDoesNotMatch', { stringToSign: sdkStringToSign(signed, auth.value.signedHeaders, sdkDate).replaceAll('\n', '\\n') });
    }
    if (key.status !== 'Active') throw new AppError('AccessKeyDisabled', { accessKeyId: key.id });
    const nowMs = runtime.clock.nowMs();
    if (Math.abs(nowMs - dateMs) > maxClockSkewMs) throw new AppError('InvalidTimeStampExpired', { value: sdkDate, serverTime: new Date(nowMs).toISOString() });
    const account = await db.selectFrom('accounts').select('project_id').where('id', '=', key.accountId).executeTakeFirst();
    const headerProject = header(request, 'x-project-id');
    if (account?.project_id !== projectId || (headerProject !== undefined && headerProject !== projectId)) {
      throw new AppError('ProjectMismatch', { projectId: headerProject !== undefined && headerProject !== projectId ? headerProject : projectId, accessKeyId: key.id });
    }
    return { accountId: key.accountId, projectId };
  }

  function context(request: FastifyRequest): ServiceContext & Caller {
    const caller = callers.get(request);
    if (caller === undefined) throw new Error('Huawei route reached without authentication');
    return { ...caller, database: runtime.database, clock: runtime.clock, jobs: runtime.jobs, requestId: String(request.id), dataDir: runtime.dataDir };
  }

  function sendError(request: FastifyRequest, reply: FastifyReply, err: AppError): FastifyReply {
    const requestId = String(request.id);
    if (err.huaweiCode.startsWith('APIGW.')) {
      return reply.code(gatewayStatus[err.huaweiCode] ?? err.httpStatus).send({ error_msg: err.message, error_code: err.huaweiCode, request_id: requestId });
    }
    return reply.code(err.httpStatus).send({ error: { code: ecsCodeOf[err.huaweiCode] ?? err.huaweiCode, message: err.message } });
  }

  void app.register((scope, _opts, done) => {
    // Keep the raw body: the signature covers its SHA-256.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, next) => next(null, body));
    scope.addHook('onRequest', (request, reply, next) => {
      void reply.header('x-request-id', String(request.id));
      next();
    });
    scope.addHook('preHandler', async (request) => {
      const projectId = (request.params as { project_id?: string }).project_id;
      if (projectId !== undefined) callers.set(request, await authenticate(request, projectId));
    });
    scope.setErrorHandler((err, request, reply) => sendError(request, reply, classifyError(err, request)));

    type ServerParams = { Params: { project_id: string; server_id: string } };
    scope.post<ServerParams>('/v1/:project_id/cloudservers/:server_id/migrate', async (request) => {
      const move = await startColdMigration(context(request), { serverId: request.params.server_id, dedicatedHostId: migrateTarget(rawBody(request)) });
      return { job_id: move.moveId };
    });
    scope.get<ServerParams>('/v1/:project_id/cloudservers/:server_id', async (request) => {
      const ctx = context(request);
      const server = await showServer(ctx, request.params.server_id);
      const row = await db.selectFrom('instances').select(['created_at', 'updated_at']).where('id', '=', server.id).executeTakeFirstOrThrow();
      return { server: ecsServer(server, ctx.projectId, { createdAtMs: Number(row.created_at), updatedAtMs: Number(row.updated_at) }) };
    });
    scope.get<{ Params: { project_id: string; job_id: string } }>('/v1/:project_id/jobs/:job_id', async (request) => ecsJob(await showColdMigrationJob(context(request), request.params.job_id)));
    scope.get<{ Params: { project_id: string } }>('/v1.0/:project_id/dedicated-hosts', async (request) => {
      const ctx = context(request);
      const hosts = await listDedicatedHosts(ctx);
      return { dedicated_hosts: hosts.map((h) => ecsDedicatedHost(h, ctx.projectId)), total: hosts.length };
    });
    for (const prefix of ['/v1/*', '/v1.0/*']) {
      scope.all(prefix, (request, reply) =>
        sendError(request, reply, new AppError('InvalidActionNotFound', { action: `${request.method} ${request.url.split('?')[0] ?? ''}`, version: 'ECS v1' })),
      );
    }
    done();
  });
}
