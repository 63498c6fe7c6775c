import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { JobStore } from '../../engine/job-store.ts';

/** The server's Prometheus metrics, on a registry of its own so several servers can share a process. */
export interface ServerMetrics {
  readonly registry: Registry;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly leaseTakeovers: Counter<'kind'>;
  readonly jobsFinished: Counter<'kind' | 'outcome'>;
}

export function createMetrics(jobs: JobStore): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ferry_' });
  const httpDuration = new Histogram({
    name: 'ferry_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  new Gauge({
    name: 'ferry_jobs',
    help: 'Durable jobs by kind and state, read from the database at scrape time',
    labelNames: ['kind', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await jobs.countByKindAndState()) this.set({ kind: row.kind, state: row.state }, row.count);
    },
  });
  const leaseTakeovers = new Counter({
    name: 'ferry_job_lease_takeovers_total',
    help: 'Jobs this node claimed after another worker lost its lease',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const jobsFinished = new Counter({
    name: 'ferry_jobs_finished_total',
    help: 'Job attempts this node finished, by outcome',
    labelNames: ['kind', 'outcome'] as const,
    registers: [registry],
  });
  return { registry, httpDuration, leaseTakeovers, jobsFinished };
}
