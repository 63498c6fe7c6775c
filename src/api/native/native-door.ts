/**
 * Ferry's native REST API under `/api/v1`, for the CLI, the console and agents. JSON in and out,
 * TypeBox schemas per route (validation, types and the OpenAPI document at /docs).
 *
 * Authentication reuses the ACS3-HMAC-SHA256 scheme of Alibaba's V3 signature with the same access
 * keys: `Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=...,Signature=<hex>`
 * over the method, path, query, the signed headers (host, x-acs-date, x-acs-signature-nonce,
 * x-acs-content-sha256) and the body's SHA-256. Any V3 signer works; the CLI has one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, RawServerDefault } from 'fastify';
import { systemClock } from '../../core/clock.ts';
import { AppError } from '../../core/errors.ts';
import type { KeyWithPolicy } from '../../identity/access-keys.ts';
import { evaluatePolicy } from '../../identity/policies.ts';
import type { ServiceContext } from '../../migration/service-context.ts';
import { checkRequestTime } from '../common/request-time.ts';
import { decodeParams } from '../common/percent-encoding.ts';
import { acs3Algorithm, readV3Auth, verifyV3Signature } from '../common/signature-v3.ts';
import { classifyError, sendNativeError } from '../common/errors-http.ts';
import type { Runtime } from '../runtime.ts';

export type NativeScope = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

/** Who made an authenticated native request. */
export interface NativeCaller {
  readonly accountId: string;
  readonly accessKeyId: string;
}

export interface NativeDeps {
  readonly runtime: Runtime;
  /** The authenticated caller; throws if the route skipped authentication. */
  caller(request: FastifyRequest): NativeCaller;
  /** A service context for the caller of this request. */
  context(request: FastifyRequest): ServiceContext;
  /** Check the caller's policy for `ferry:<action>` on `resource` (default: everything of the account). */
  authorize(request: FastifyRequest, action: string, resource?: string): void;
}

/** A group of native routes; registered inside the authenticated `/api/v1` scope. */
export type NativeRoutes = (scope: NativeScope, deps: NativeDeps) => void;

const callers = new WeakMap<FastifyRequest, { caller: NativeCaller; found: KeyWithPolicy }>();
const rawBodies = new WeakMap<FastifyRequest, Buffer>();

export function registerNativeDoor(app: FastifyInstance, runtime: Runtime, routes: readonly NativeRoutes[]): void {
  async function authenticate(request: FastifyRequest): Promise<void> {
    const authorization = request.headers.authorization;
    if (authorization === undefined || !authorization.trim().startsWith(acs3Algorithm)) {
      throw new AppError('IncompleteSignature', { reason: `send an Authorization header signed with ${acs3Algorithm} (see README, "Native API")` });
    }
    const auth = readV3Auth(request.headers);
    if (!auth.ok) throw new AppError('IncompleteSignature', { reason: auth.reason });
    const found = await runtime.keys.find(auth.value.accessKeyId);
    const { key } = found;
    const rawUrl = request.raw.url ?? '/';
    const q = rawUrl.indexOf('?');
    const query = decodeParams(q === -1 ? '' : rawUrl.slice(q + 1));
    if (!query.ok) throw new AppError('InvalidParameter', { name: query.field, reason: query.reason });
    const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
    const verdict = verifyV3Signature({ method: request.method, path, query: query.params, headers: request.headers, body: rawBodies.get(request) ?? Buffer.alloc(0) }, auth.value, key.secret);
    if (!verdict.ok) throw new AppError('SignatureDoesNotMatch', { stringToSign: verdict.stringToSign ?? verdict.reason });
    if (key.status !== 'Active') throw new AppError('AccessKeyDisabled', { accessKeyId: key.id });
    // Clients sign with the wall clock; the runtime clock may be shifted for tests (FERRY_CLOCK_OFFSET_FILE).
    const nowMs = systemClock.nowMs();
    const fresh = checkRequestTime(auth.value.date, nowMs);
    if (!fresh.ok) {
      throw fresh.code === 'InvalidTimeStamp.Format'
        ? new AppError('InvalidTimeStampFormat', { value: auth.value.date })
        : new AppError('InvalidTimeStampExpired', { value: auth.value.date, serverTime: new Date(nowMs).toISOString() });
    }
    await runtime.nonces.remember(key.id, auth.value.signatureNonce);
    callers.set(request, { caller: { accountId: key.accountId, accessKeyId: key.id }, found });
  }

  const deps: NativeDeps = {
    runtime,
    caller: (request) => {
      const found = callers.get(request);
      if (found === undefined) throw new Error('native route reached without authentication');
      return found.caller;
    },
    context: (request) => ({
      database: runtime.database,
      clock: runtime.clock,
      jobs: runtime.jobs,
      accountId: deps.caller(request).accountId,
      requestId: String(request.id),
      dataDir: runtime.dataDir,
    }),
    authorize: (request, action, resource) => {
      const caller = deps.caller(request);
      const policy = callers.get(request)?.found.policy;
      if (policy === undefined) return;
      const resourceName = resource ?? `acs:ferry:*:${caller.accountId}:*`;
      const decision = evaluatePolicy(policy, `ferry:${action}`, [resourceName]);
      if (!decision.allowed) throw new AppError('ForbiddenRam', { action: `ferry:${action}`, resource: resourceName, denial: decision.denial });
    },
  };

  void app.register(
    (scope, _opts, done) => {
      const typed = scope.withTypeProvider<TypeBoxTypeProvider>().setValidatorCompiler(TypeBoxValidatorCompiler);
      typed.removeAllContentTypeParsers();
      // Keep the raw bytes: the signature covers their SHA-256.
      typed.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, next) => {
        const raw = body as Buffer;
        rawBodies.set(request, raw);
        if (raw.length === 0) {
          next(null, undefined);
          return;
        }
        const type = request.headers['content-type'] ?? '';
        if (!type.toLowerCase().includes('json')) {
          next(null, raw);
          return;
        }
        try {
          next(null, JSON.parse(raw.toString('utf8')) as unknown);
        } catch {
          next(new AppError('InvalidParameter', { name: 'body', reason: 'is not valid JSON' }), undefined);
        }
      });
      typed.addHook('preValidation', async (request) => {
        // A route marked `config: { anonymous: true }` proves its caller itself (an agent's activation code).
        if ((request.routeOptions.config as { anonymous?: unknown }).anonymous === true) return;
        await authenticate(request);
      });
      typed.setErrorHandler((err, request, reply) => sendNativeError(reply, classifyError(err, request)));
      for (const group of routes) group(typed, deps);
      done();
    },
    { prefix: '/api/v1' },
  );
}
