import { table } from '../core/state-machine.ts';

export const jobStates = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobState = (typeof jobStates)[number];

export const jobEvents = ['claim', 'takeover', 'complete', 'retry', 'fail', 'release', 'cancel'] as const;
export type JobEvent = (typeof jobEvents)[number];

/**
 * The whole life of a durable job. `takeover` is a claim of a running job whose lease
 * expired; `release` hands a job back on graceful shutdown without spending an attempt.
 */
export const jobMachine = table(jobStates, jobEvents, [
  ['queued', 'claim', 'running'],
  ['queued', 'cancel', 'cancelled'],
  ['running', 'takeover', 'running'],
  ['running', 'complete', 'succeeded'],
  ['running', 'retry', 'queued'],
  ['running', 'fail', 'failed'],
  ['running', 'release', 'queued'],
  ['running', 'cancel', 'cancelled'],
]);

export const terminalJobStates: readonly JobState[] = jobStates.filter((s) =>
  jobEvents.every((e) => !jobMachine.can(s, e)),
);
