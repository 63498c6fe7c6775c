import type { Kysely } from 'kysely';

/** When a run's first disk stream began and its last disk's proof was recorded: the transfer's own duration. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('replication_job_runs').addColumn('transfer_started_at', 'bigint').execute();
  await db.schema.alterTable('replication_job_runs').addColumn('transfer_ended_at', 'bigint').execute();
}
