import { type Kysely, PostgresAdapter, sql } from 'kysely';

/**
 * The job claim's indexes, one per live state, replacing jobs_due (state, run_at) and jobs_lease
 * (state, lease_expires_at): queued jobs by (run_at, id), running jobs by lease_expires_at.
 *
 * A claim takes due queued jobs earliest run_at first: a range of jobs_queued already in that
 * order, where jobs_due made it sort every due job. It also takes running jobs whose lease
 * expired: a range of jobs_running that is empty while every worker is alive.
 * Partial indexes hold only live jobs: a finished job leaves them and is written to no index
 * again, so they stay as small as the queue however long the history grows, and a finish
 * deletes one entry instead of moving it. A checkpoint writes to no index at all.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('jobs_queued').on('jobs').columns(['run_at', 'id']).where(sql.ref('state'), '=', 'queued').execute();
  await db.schema.createIndex('jobs_running').on('jobs').column('lease_expires_at').where(sql.ref('state'), '=', 'running').execute();
  await db.schema.dropIndex('jobs_due').execute();
  await db.schema.dropIndex('jobs_lease').execute();
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    // Free room on each page lets PostgreSQL write a checkpoint as a HOT update (no indexed
    // column changes) and keep the new row version of a claim, renewal or finish on the same page.
    await sql`alter table jobs set (fillfactor = 70)`.execute(db);
  }
}
