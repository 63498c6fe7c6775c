/**
 * Fields a front door adds to a request's one log line, which app.ts writes when the request is
 * answered: a second line per request (say, "action done") would double the logging cost of
 * every call.
 */
import type { FastifyRequest } from 'fastify';

const extraFields = new WeakMap<FastifyRequest, Readonly<Record<string, unknown>>>();

/** Add `fields` to the log line of `request`. */
export function addLogFields(request: FastifyRequest, fields: Readonly<Record<string, unknown>>): void {
  const before = extraFields.get(request);
  extraFields.set(request, before === undefined ? fields : { ...before, ...fields });
}

/** The fields added to the log line of `request`, if any. */
export function logFieldsOf(request: FastifyRequest): Readonly<Record<string, unknown>> | undefined {
  return extraFields.get(request);
}
