import { type Kysely, sql } from 'kysely';

/**
 * ENS instance system events. The partial unique index keeps one open event per instance, so
 * two nodes reacting to the same host state change cannot raise it twice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('ens_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('instance_id', 'text', (c) => c.notNull())
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('level', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('host_id', 'text', (c) => c.notNull())
    .addColumn('published_at', 'bigint', (c) => c.notNull())
    .addColumn('not_before', 'bigint', (c) => c.notNull())
    .addColumn('deadline_at', 'bigint', (c) => c.notNull())
    .addColumn('ops_type', 'text')
    .addColumn('data_policy', 'text')
    .addColumn('password_hash', 'text')
    .addColumn('executed_by', 'text')
    .addColumn('job_id', 'text')
    .addColumn('move_id', 'text')
    .addColumn('result', 'text')
    .addColumn('error', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .execute();
  await db.schema.createIndex('ens_events_account_published').on('ens_events').columns(['account_id', 'published_at', 'id']).execute();
  await db.schema.createIndex('ens_events_account_instance').on('ens_events').columns(['account_id', 'instance_id']).execute();
  await db.schema.createIndex('ens_events_host_status').on('ens_events').columns(['host_id', 'status']).execute();
  await db.schema
    .createIndex('ens_events_open_instance')
    .unique()
    .on('ens_events')
    .column('instance_id')
    .where(sql.ref('status'), 'in', ['Inquiring', 'Scheduled', 'Executing'])
    .execute();
}
