/**
 * The Alibaba POP RPC front door at `/`: one endpoint for SMC and ENS, dispatched by Action and
 * Version. It decodes, authenticates (signature V1 or V3, time window, nonce), throttles,
 * authorises (RAM-like policies), deduplicates by ClientToken and answers in the POP envelope.
 * Business rules live in src/migration; this file only translates.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { systemClock } from '../../core/clock.ts';
import { AppError, toAppError } from '../../core/errors.ts';
import type { AccessKeyWithSecret, KeyWithPolicy } from '../../identity/access-keys.ts';
import { hashParams, withIdempotency } from '../../identity/idempotency.ts';
import { evaluatePolicy } from '../../identity/policies.ts';
import { RequestLimiter } from '../../identity/rate-limit.ts';
import type { ServiceContext } from '../../migration/service-context.ts';
import type { Runtime } from '../runtime.ts';
import { type ActionRegistry, type PopAction, type PopProduct, popProducts } from './action-registry.ts';
import { decodeFlatParams } from './flat-params.ts';
import { paramFailureError } from '../common/param-failure.ts';
import { addLogFields } from '../common/request-log.ts';
import { type ParamMap, decodeParams, mergeParams } from '../common/percent-encoding.ts';
import { checkRequestTime } from '../common/request-time.ts';
import { type AccessDeniedDetail, errorResponse, renderBody, successBody } from './responses.ts';
import { readV1Auth, verifyV1Signature } from './signature-v1.ts';
import { acs3Algorithm, readV3Auth, verifyV3Signature } from '../common/signature-v3.ts';

type Caller = KeyWithPolicy;

/** Thrown inside the door with the extra body fields some errors carry. */
class DeniedError extends Error {
  constructor(
    readonly error: AppError,
    readonly detail: AccessDeniedDetail,
  ) {
    super(error.message);
  }
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function productOf(version: string | undefined): PopProduct | undefined {
  return (Object.keys(popProducts) as PopProduct[]).find((p) => popProducts[p].version === version);
}

function bodyText(request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

const decodedParams = new WeakMap<FastifyRequest, ParamMap>();

/** Query and form-body params of the request, decoded once per request. */
function requestParams(request: FastifyRequest): ParamMap {
  let params = decodedParams.get(request);
  if (params === undefined) {
    params = decodeRequestParams(request);
    decodedParams.set(request, params);
  }
  return params;
}

function decodeRequestParams(request: FastifyRequest): ParamMap {
  const rawUrl = request.raw.url ?? '/';
  const q = rawUrl.indexOf('?');
  const query = decodeParams(q === -1 ? '' : rawUrl.slice(q + 1));
  if (!query.ok) throw paramFailureError(query);
  const isForm = (header(request, 'content-type') ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
  const body = decodeParams(isForm ? bodyText(request).toString('utf8') : '');
  if (!body.ok) throw paramFailureError(body);
  const merged = mergeParams(query.params, body.params);
  if (!merged.ok) throw paramFailureError(merged);
  return merged.params;
}

export interface PopDoorOptions {
  readonly registry: ActionRegistry;
  readonly limiter: RequestLimiter;
}

export function registerPopDoor(app: FastifyInstance, runtime: Runtime, options: PopDoorOptions): void {
  const { registry, limiter } = options;
  const db = runtime.database.db;

  async function authenticate(request: FastifyRequest, params: ParamMap): Promise<Caller> {
    const authorization = header(request, 'authorization');
    // Clients sign with the wall clock; the runtime clock may be shifted for tests (FERRY_CLOCK_OFFSET_FILE).
    const nowMs = systemClock.nowMs();
    if (authorization !== undefined && authorization.trim().startsWith(acs3Algorithm)) {
      const auth = readV3Auth(request.headers);
      if (!auth.ok) throw new AppError('IncompleteSignature', { reason: auth.reason });
      const caller = await runtime.keys.find(auth.value.accessKeyId);
      const rawUrl = request.raw.url ?? '/';
      const q = rawUrl.indexOf('?');
      const query = decodeParams(q === -1 ? '' : rawUrl.slice(q + 1));
      if (!query.ok) throw paramFailureError(query);
      const path = (q === -1 ? rawUrl : rawUrl.slice(0, q)) || '/';
      const verdict = verifyV3Signature({ method: request.method, path, query: query.params, headers: request.headers, body: bodyText(request) }, auth.value, caller.key.secret);
      if (!verdict.ok) throw new AppError('SignatureDoesNotMatch', { stringToSign: verdict.stringToSign ?? verdict.reason });
      await admit(caller.key, auth.value.date, auth.value.signatureNonce, nowMs);
      return caller;
    }
    if (authorization !== undefined) throw new AppError('IncompleteSignature', { reason: `the Authorization scheme is not ${acs3Algorithm}` });
    const auth = readV1Auth(params);
    if (!auth.ok) {
      throw auth.code === 'MissingParameter'
        ? new AppError('MissingParameter', { name: auth.field })
        : new AppError('IncompleteSignature', { reason: `${auth.field} ${auth.reason}` });
    }
    const caller = await runtime.keys.find(auth.value.accessKeyId);
    const verdict = verifyV1Signature(request.method, params, caller.key.secret);
    if (!verdict.ok) throw new AppError('SignatureDoesNotMatch', { stringToSign: verdict.stringToSign });
    await admit(caller.key, auth.value.timestamp, auth.value.signatureNonce, nowMs);
    return caller;
  }

  /** After the signature holds: the key must be active, the time fresh, the nonce new. */
  async function admit(key: AccessKeyWithSecret, time: string, nonce: string, nowMs: number): Promise<void> {
    if (key.status !== 'Active') throw new AppError('AccessKeyDisabled', { accessKeyId: key.id });
    const fresh = checkRequestTime(time, nowMs);
    if (!fresh.ok) {
      throw fresh.code === 'InvalidTimeStamp.Format'
        ? new AppError('InvalidTimeStampFormat', { value: time })
        : new AppError('InvalidTimeStampExpired', { value: time, serverTime: new Date(nowMs).toISOString().replace(/\.\d{3}Z$/, 'Z') });
    }
    if (nonce.length > 128) throw new AppError('IncompleteSignature', { reason: 'the signature nonce is longer than 128 characters' });
    await runtime.nonces.remember(key.id, nonce);
  }

  function authorize(caller: Caller, action: PopAction, params: never): void {
    const { policy } = caller;
    if (policy === undefined) return;
    const actionName = `${action.product}:${action.name}`;
    const resources = action.resources?.(params, caller.key.accountId) ?? [`acs:${action.product}:*:${caller.key.accountId}:*`];
    const decision = evaluatePolicy(policy, actionName, resources);
    if (decision.allowed) return;
    const resource = resources.join(', ');
    // ENS documents its permission failure as NoPermission with HTTP 400.
    const overrides = action.product === 'ens' ? { alibabaCode: 'NoPermission', httpStatus: 400 } : {};
    const error = new AppError('ForbiddenRam', { action: actionName, resource, denial: decision.denial }, overrides);
    throw new DeniedError(error, {
      AuthAction: actionName,
      AuthPrincipalType: 'AccessKey',
      AuthPrincipalOwnerId: caller.key.accountId,
      AuthPrincipalDisplayName: caller.key.id,
      NoPermissionType: decision.denial,
      PolicyType: 'AccountLevelIdentityBasedPolicy',
      EncodedDiagnosticMessage: Buffer.from(JSON.stringify({ action: actionName, resources })).toString('base64'),
    });
  }

  async function dispatch(request: FastifyRequest): Promise<{ fields: Record<string, unknown>; action: PopAction }> {
    const params = requestParams(request);
    const actionName = header(request, 'x-acs-action') ?? params['Action'];
    const version = header(request, 'x-acs-version') ?? params['Version'];
    if (actionName === undefined || actionName === '') throw new AppError('MissingParameter', { name: 'Action' });
    if (version === undefined || version === '') throw new AppError('MissingParameter', { name: 'Version' });
    const caller = await authenticate(request, params);
    const action = registry.find(version, actionName);
    if (action === undefined) throw new AppError('InvalidActionNotFound', { action: actionName.slice(0, 80), version: version.slice(0, 20) });
    const qualifiedName = `${action.product}:${action.name}`;
    addLogFields(request, { action: qualifiedName });
    const limited = limiter.check(caller.key.id, qualifiedName);
    if (limited === 'user') throw new AppError('ThrottlingUser', { ratePerSecond: limiter.limits.userPerSecond });
    if (limited === 'api') throw new AppError('ThrottlingApi', { ratePerSecond: limiter.limits.apiPerSecond, action: action.name });
    const decoded = decodeFlatParams(action.params, params);
    if (!decoded.ok) throw paramFailureError(decoded);
    authorize(caller, action, decoded.value as never);
    const ctx: ServiceContext = {
      database: runtime.database,
      clock: runtime.clock,
      jobs: runtime.jobs,
      accountId: caller.key.accountId,
      requestId: String(request.id),
      dataDir: runtime.dataDir,
    };
    const clientToken = action.idempotent === true ? (decoded.value as { ClientToken?: unknown }).ClientToken : undefined;
    const run = (): Promise<Record<string, unknown>> => action.handle(ctx, decoded.value);
    if (typeof clientToken !== 'string' || clientToken === '') return { fields: await run(), action };
    const rest: Record<string, unknown> = { ...(decoded.value as Record<string, unknown>) };
    delete rest['ClientToken'];
    const fields = await withIdempotency(
      db,
      runtime.clock,
      { accountId: caller.key.accountId, action: qualifiedName, clientToken, paramsHash: hashParams(rest) },
      run,
    );
    return { fields, action };
  }

  function reply(request: FastifyRequest, res: FastifyReply, status: number, body: object, rootName: string): FastifyReply {
    const params = safeParams(request);
    const rendered = renderBody(body, params['Format'], rootName);
    return res.code(status).type(rendered.contentType).send(rendered.payload);
  }

  function safeParams(request: FastifyRequest): ParamMap {
    try {
      return requestParams(request);
    } catch {
      return {};
    }
  }

  async function handle(request: FastifyRequest, res: FastifyReply): Promise<FastifyReply> {
    const requestId = String(request.id);
    try {
      const { fields, action } = await dispatch(request);
      return reply(request, res, 200, successBody(requestId, fields), `${action.name}Response`);
    } catch (err) {
      const denied = err instanceof DeniedError ? err : undefined;
      const error = denied?.error ?? toAppError(err, requestId);
      if (error.httpStatus >= 500) request.log.error({ err }, 'pop action failed');
      const product = productOf(header(request, 'x-acs-version') ?? safeParams(request)['Version']) ?? 'smc';
      const { status, body } = errorResponse(error, {
        requestId,
        hostId: header(request, 'host') ?? popProducts[product].host,
        product: popProducts[product].displayName,
        ...(denied === undefined ? {} : { accessDeniedDetail: denied.detail }),
      });
      return reply(request, res, status, body, 'Error');
    }
  }

  void app.register((scope, _opts, done) => {
    // Keep the raw body: V3 signs its SHA-256, and V1 form bodies are decoded by us, not Fastify.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, next) => next(null, body));
    scope.route({ method: ['GET', 'POST'], url: '/', handler: handle });
    scope.route({
      method: ['PUT', 'DELETE', 'PATCH'],
      url: '/',
      handler: async (request, res) => {
        const error = new AppError('UnsupportedHttpMethod', { method: request.method });
        const { status, body } = errorResponse(error, { requestId: String(request.id), hostId: header(request, 'host') ?? 'smc.aliyuncs.com', product: 'Smc' });
        return res.code(status).send(body);
      },
    });
    done();
  });
}
