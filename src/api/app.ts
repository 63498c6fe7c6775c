import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { sql } from 'kysely';
import { AppError } from '../core/errors.ts';
import { newRequestId } from '../core/ids.ts';
import { classifyError, sendNativeError } from './common/errors-http.ts';
import { logFieldsOf } from './common/request-log.ts';
import swagger from '@fastify/swagger';
import { RequestLimiter } from '../identity/rate-limit.ts';
import { nativeRoutes } from './native/all-routes.ts';
import { registerNativeDoor } from './native/native-door.ts';
import { buildActionRegistry } from './alibaba/all-actions.ts';
import { registerPopDoor } from './alibaba/pop-door.ts';
import { registerHuaweiDoor } from './huawei/huawei-door.ts';
import type { Runtime } from './runtime.ts';

/** The HTTP server: health, metrics, and the front doors, all over one runtime. */
export function buildApp(runtime: Runtime): FastifyInstance {
  // Fastify's logger type and pino's Logger differ only in generics; the instance is the same.
  const logger: FastifyBaseLogger = runtime.logger;
  const app: FastifyInstance = Fastify({
    loggerInstance: logger,
    genReqId: () => newRequestId(),
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    // One log line per request, written when it is answered (Fastify's default writes two).
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
  });

  app.addHook('onResponse', (request, reply, done) => {
    request.log.info(
      {
        method: request.method,
        url: request.url,
        remoteAddress: request.ip,
        statusCode: reply.statusCode,
        responseTimeMs: Math.round(reply.elapsedTime * 1000) / 1000,
        ...logFieldsOf(request),
      },
      'request completed',
    );
    runtime.metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });

  app.setErrorHandler((err, request, reply) => sendNativeError(reply, classifyError(err, request)));
  app.setNotFoundHandler((request, reply) =>
    sendNativeError(reply, new AppError('NotFound', { resource: 'path', id: `${request.method} ${request.url.split('?')[0] ?? ''}` })),
  );

  app.get('/healthz', async () => {
    await sql`select 1`.execute(runtime.database.db);
    return { status: 'ok', database: runtime.database.dialect, worker: runtime.worker?.owner ?? null };
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await runtime.metrics.registry.metrics();
    return reply.type(runtime.metrics.registry.contentType).send(text);
  });

  const registry = buildActionRegistry();
  void app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Ferry native API',
        version: '1',
        description:
          'Ferry\'s own REST API under /api/v1, signed with ACS3-HMAC-SHA256 (the Alibaba V3 scheme) and Ferry access keys. ' +
          'The Alibaba POP actions served at / are listed under x-pop-actions with their parameter schemas.',
      },
      components: { securitySchemes: { acs3: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=...,Signature=<hex>' } } },
      security: [{ acs3: [] }],
    },
  });
  registerPopDoor(app, runtime, { registry, limiter: new RequestLimiter(runtime.rateLimits, runtime.clock) });
  registerNativeDoor(app, runtime, nativeRoutes);
  registerHuaweiDoor(app, runtime);

  app.get('/docs', { schema: { hide: true } }, () => {
    const document = app.swagger() as unknown as Record<string, unknown>;
    return {
      ...document,
      'x-pop-actions': registry.all().map((a) => ({ product: a.product, action: a.name, summary: a.summary ?? '', idempotent: a.idempotent === true, params: a.params })),
    };
  });

  return app;
}
