import type { Kysely } from 'kysely';

/**
 * What the data plane records about a run: bytes of its disks and how far the transfer got
 * (progress, rate), the chunk bytes the server received (a resumed run counts what it sent
 * again), and the whole-image proofs both sides computed (JSON `{diskIndex: hex}`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const column of ['bytes_total', 'bytes_done', 'bytes_received', 'rate_bytes_per_sec'] as const) {
    await db.schema.alterTable('replication_job_runs').addColumn(column, 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  }
  await db.schema.alterTable('replication_job_runs').addColumn('chunks_received', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('replication_job_runs').addColumn('progress_at', 'bigint').execute();
  await db.schema.alterTable('replication_job_runs').addColumn('proofs', 'text').execute();
}

