import { type Kysely, sql } from 'kysely';

/**
 * Instance moves: the record every front door reports a move from. The partial unique index
 * keeps one unfinished move per instance, whichever node or door started it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('instance_moves')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('instance_id', 'text', (c) => c.notNull())
    .addColumn('origin', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('phase', 'text', (c) => c.notNull())
    .addColumn('progress_bp', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('plan', 'text', (c) => c.notNull())
    .addColumn('from_host_id', 'text', (c) => c.notNull())
    .addColumn('to_host_id', 'text')
    .addColumn('claim_id', 'text')
    .addColumn('was_running', 'integer')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('result', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('started_at', 'bigint')
    .addColumn('finished_at', 'bigint')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('instance_moves_account').on('instance_moves').columns(['account_id', 'origin', 'created_at']).execute();
  await db.schema
    .createIndex('instance_moves_one_open')
    .on('instance_moves')
    .column('instance_id')
    .unique()
    .where(sql.ref('state'), 'in', [sql.lit('queued'), sql.lit('running')])
    .execute();
}
