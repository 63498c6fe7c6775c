import { type Kysely, PostgresAdapter, sql } from 'kysely';

/**
 * The job claim's indexes: queued jobs and running jobs, each by (run_at, id), the order a claim
 * takes them in. Replaces jobs_due (state, run_at) and jobs_lease (state, lease_expires_at).
 *
 * A claim reads due queued jobs and running jobs whose lease expired, earliest run_at first;
 * each is now a range of its own index already in that order, so nothing sorts every due job.
 * Partial indexes hold only live jobs: a finished job leaves them and is written to no index
 * again, so they stay as small as the queue however long the history grows, and a finish
 * deletes one entry instead of moving it. Running jobs are as few as the leases workers hold,
 * so expired leases are found by reading jobs_running; no index holds lease_expires_at, and a
 * lease renewal or a checkpoint writes to no index at all.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('jobs_queued').on('jobs').columns(['run_at', 'id']).where(sql.ref('state'), '=', 'queued').execute();
  await db.schema.createIndex('jobs_running').on('jobs').columns(['run_at', 'id']).where(sql.ref('state'), '=', 'running').execute();
  await db.schema.dropIndex('jobs_due').execute();
  await db.schema.dropIndex('jobs_lease').execute();
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    // Free room on each page lets PostgreSQL write a renewal or a checkpoint as a HOT update
    // (no indexed column changes) and keep a claim's or finish's new row version on the same page.
    await sql`alter table jobs set (fillfactor = 70)`.execute(db);
  }
}
