import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, toAppError } from '../../core/errors.ts';

/** Ferry's own error body, used by the native API and by routes outside the cloud front doors. */
export interface NativeErrorBody {
  readonly code: string;
  readonly message: string;
  readonly requestId: string;
}

/**
 * Map anything thrown to an AppError: AppErrors keep their code; Fastify's own validation and
 * body-parsing errors become InvalidParameter; anything else is logged with its stack and
 * becomes InternalError carrying the request id, with no stack trace on the wire.
 */
export function classifyError(err: unknown, request: FastifyRequest): AppError {
  const fastifyError = err as { statusCode?: number; code?: string; message?: string; validation?: unknown };
  const isClientError =
    fastifyError.validation !== undefined ||
    (typeof fastifyError.code === 'string' && fastifyError.code.startsWith('FST_ERR_CTP')) ||
    (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500 && !(err instanceof AppError));
  if (isClientError) {
    return new AppError('InvalidParameter', { name: 'request', reason: fastifyError.message ?? 'malformed request' });
  }
  const appError = toAppError(err, String(request.id));
  if (appError.httpStatus >= 500) request.log.error({ err }, 'request failed');
  return appError;
}

export function sendNativeError(reply: FastifyReply, err: AppError): FastifyReply {
  const body: NativeErrorBody = { code: err.code, message: err.message, requestId: String(reply.request.id) };
  return reply.code(err.httpStatus).send(body);
}
