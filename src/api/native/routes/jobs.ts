import { Type } from 'typebox';
import type { JobRecord } from '../../../engine/job-store.ts';
import { AppError } from '../../../core/errors.ts';
import type { JobStore } from '../../../engine/job-store.ts';
import type { NativeRoutes } from '../native-door.ts';

/**
 * Jobs started for an account carry `accountId` in their payload; a job of another account,
 * or an internal one, is answered as not found, never shown.
 */
async function ownedJob(jobs: JobStore, jobId: string, accountId: string): Promise<JobRecord> {
  const job = await jobs.get(jobId);
  const owner = (job?.payload as { accountId?: unknown } | null | undefined)?.accountId;
  if (job === undefined || owner !== accountId) throw new AppError('JobNotFound', { jobId });
  return job;
}

const JobView = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  state: Type.String(),
  attempts: Type.Integer(),
  maxAttempts: Type.Integer(),
  runAt: Type.String({ description: 'ISO 8601 UTC' }),
  checkpoint: Type.Unknown(),
  result: Type.Unknown(),
  error: Type.Union([Type.String(), Type.Null()]),
  cancelRequested: Type.Boolean(),
  createdAt: Type.String(),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
});

function view(job: JobRecord) {
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    runAt: new Date(job.runAtMs).toISOString(),
    checkpoint: job.checkpoint,
    result: job.result,
    error: job.error,
    cancelRequested: job.cancelRequested,
    createdAt: new Date(job.createdAtMs).toISOString(),
    finishedAt: job.finishedAtMs === null ? null : new Date(job.finishedAtMs).toISOString(),
  };
}

/** Engine jobs by id: operators look at and cancel the work behind migrations. */
export const jobRoutes: NativeRoutes = (scope, deps) => {
  scope.get('/jobs/:jobId', { schema: { tags: ['jobs'], summary: 'Show a durable job', params: Type.Object({ jobId: Type.String({ maxLength: 64 }) }), response: { 200: JobView } } }, async (request) => {
    deps.authorize(request, 'GetJob');
    return view(await ownedJob(deps.runtime.jobs, request.params.jobId, deps.caller(request).accountId));
  });
  scope.post('/jobs/:jobId/cancel', { schema: { tags: ['jobs'], summary: 'Cancel a job; a running one is aborted through its AbortSignal', params: Type.Object({ jobId: Type.String({ maxLength: 64 }) }), response: { 200: JobView } } }, async (request) => {
    deps.authorize(request, 'CancelJob');
    await ownedJob(deps.runtime.jobs, request.params.jobId, deps.caller(request).accountId);
    return view(await deps.runtime.jobs.cancel(request.params.jobId));
  });
  scope.get('/whoami', { schema: { tags: ['keys'], summary: 'The account and key that signed this request', response: { 200: Type.Object({ accountId: Type.String(), accessKeyId: Type.String() }) } } }, (request) =>
    Promise.resolve(deps.caller(request)),
  );
};
