import { Gauge, type Registry } from 'prom-client';
import { runningTransfers } from '../../migration/replication-progress.ts';
import type { Database } from '../../store/database.ts';

/**
 * Progress of the replication runs under way, by job, read from the database at scrape time (so
 * every node reports every run, whichever node receives it).
 */
export function registerReplicationMetrics(registry: Registry, database: Database): void {
  const labelNames = ['job_id', 'run_id'] as const;
  const gauges = {
    bytesTotal: new Gauge({ name: 'ferry_replication_bytes_total', help: 'Apparent bytes of the disks of a running replication run', labelNames, registers: [registry], collect: () => refreshOnce() }),
    bytesDone: new Gauge({ name: 'ferry_replication_bytes_done', help: 'Apparent bytes of a running run\'s disks the transfer has covered', labelNames, registers: [registry], collect: () => refreshOnce() }),
    bytesReceived: new Gauge({ name: 'ferry_replication_bytes_received', help: 'Link bytes the server received for a running run, resent chunks included', labelNames, registers: [registry], collect: () => refreshOnce() }),
    rate: new Gauge({ name: 'ferry_replication_rate_bytes_per_second', help: 'Bytes per second the server receives for a running run', labelNames, registers: [registry], collect: () => refreshOnce() }),
    eta: new Gauge({ name: 'ferry_replication_eta_seconds', help: 'Estimated seconds until a running run has sent its disks', labelNames, registers: [registry], collect: () => refreshOnce() }),
  };
  // A scrape collects the five gauges at once: they share one query, and each waits for it.
  let refreshing: Promise<void> | undefined;
  function refreshOnce(): Promise<void> {
    refreshing ??= refresh().finally(() => (refreshing = undefined));
    return refreshing;
  }
  async function refresh(): Promise<void> {
    for (const gauge of Object.values(gauges)) gauge.reset();
    for (const t of await runningTransfers(database.db)) {
      const labels = { job_id: t.jobId, run_id: t.runId };
      gauges.bytesTotal.set(labels, t.bytesTotal);
      gauges.bytesDone.set(labels, t.bytesDone);
      gauges.bytesReceived.set(labels, t.bytesReceived);
      gauges.rate.set(labels, t.rateBytesPerSec);
      if (t.etaSeconds !== null) gauges.eta.set(labels, t.etaSeconds);
    }
  }
}
