import type { Clock } from '../core/clock.ts';
import type { JobStore } from '../engine/job-store.ts';
import type { Database } from '../store/database.ts';

/**
 * What a domain service needs to serve one caller: the stores, the time, and whose request it is.
 * Front doors build it after authentication; every query a service makes is scoped to `accountId`.
 */
export interface ServiceContext {
  readonly database: Database;
  readonly clock: Clock;
  readonly jobs: JobStore;
  readonly accountId: string;
  readonly requestId: string;
  /** Where the node keeps files (storage pools, image store). */
  readonly dataDir: string;
}
