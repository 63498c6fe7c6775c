import Fastify from 'fastify';
import { sql } from 'kysely';
import { AppError } from '../core/errors.ts';
import { newRequestId } from '../core/ids.ts';
import { classifyError, sendNativeError } from './common/errors-http.ts';
import type { Runtime } from './runtime.ts';

/** The HTTP server: health, metrics, and the front doors, all over one runtime. */
export async function buildApp(runtime: Runtime) {
  const app = Fastify({
    loggerInstance: runtime.logger,
    genReqId: () => newRequestId(),
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
  });

  app.addHook('onResponse', (request, reply, done) => {
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

  return app;
}
