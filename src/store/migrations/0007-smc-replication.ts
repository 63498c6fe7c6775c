import { type Kysely, sql } from 'kysely';

/**
 * The job states, as of this migration, in which a replication job holds its source server
 * (smc-api.md §3: Ready, Running, Stopped, Waiting, InError, Expired). A snapshot on purpose:
 * a migration never changes; migration/replication-job-states.test.ts checks it against the table.
 */
export const activeJobStatesAt0007 = ['Ready', 'Running/Preparing', 'Running/Syncing', 'Running/Processing', 'Stopped', 'Waiting', 'InError', 'Expired'] as const;

/**
 * SMC source servers, replication jobs and runs, images, workgroups, tags and agent commands.
 * The database itself refuses a second active job for one source (a unique partial index),
 * so two racing CreateReplicationJob calls cannot both win on either dialect.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('source_servers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('deleting', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('agent_key_id', 'text', (c) => c.notNull().unique())
    .addColumn('access_token_id', 'text')
    .addColumn('workgroup_id', 'text')
    .addColumn('resource_group_id', 'text', (c) => c.notNull())
    .addColumn('agent_version', 'text', (c) => c.notNull())
    .addColumn('hostname', 'text', (c) => c.notNull())
    .addColumn('platform', 'text', (c) => c.notNull())
    .addColumn('architecture', 'text', (c) => c.notNull())
    .addColumn('kernel_level', 'integer', (c) => c.notNull())
    .addColumn('facts', 'text', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('source_servers_name').on('source_servers').columns(['account_id', 'name']).unique().execute();
  await db.schema.createIndex('source_servers_account').on('source_servers').columns(['account_id', 'created_at']).execute();
  await db.schema.createIndex('source_servers_workgroup').on('source_servers').column('workgroup_id').execute();

  await db.schema
    .createTable('replication_jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('source_id', 'text', (c) => c.notNull().references('source_servers.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('region_id', 'text', (c) => c.notNull())
    .addColumn('job_type', 'integer', (c) => c.notNull())
    .addColumn('target_type', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('progress', 'double precision', (c) => c.notNull())
    .addColumn('error_code', 'text', (c) => c.notNull())
    .addColumn('status_info', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('start_time', 'bigint')
    .addColumn('end_time', 'bigint')
    .addColumn('scheduled_start_time', 'bigint')
    .addColumn('valid_time', 'bigint', (c) => c.notNull())
    .addColumn('image_name', 'text', (c) => c.notNull())
    .addColumn('instance_id', 'text', (c) => c.notNull())
    .addColumn('instance_type', 'text', (c) => c.notNull())
    .addColumn('instance_ram_role', 'text', (c) => c.notNull())
    .addColumn('launch_template_id', 'text', (c) => c.notNull())
    .addColumn('launch_template_version', 'text', (c) => c.notNull())
    .addColumn('license_type', 'text', (c) => c.notNull())
    .addColumn('net_mode', 'integer', (c) => c.notNull())
    .addColumn('vpc_id', 'text', (c) => c.notNull())
    .addColumn('vswitch_id', 'text', (c) => c.notNull())
    .addColumn('replication_parameters', 'text', (c) => c.notNull())
    .addColumn('run_once', 'integer', (c) => c.notNull())
    .addColumn('frequency_hours', 'integer')
    .addColumn('max_images', 'integer')
    .addColumn('system_disk_size_gib', 'integer')
    .addColumn('system_disk_parts', 'text', (c) => c.notNull())
    .addColumn('data_disks', 'text', (c) => c.notNull())
    .addColumn('container_namespace', 'text', (c) => c.notNull())
    .addColumn('container_repository', 'text', (c) => c.notNull())
    .addColumn('container_tag', 'text', (c) => c.notNull())
    .addColumn('resource_group_id', 'text', (c) => c.notNull())
    .addColumn('image_id', 'text', (c) => c.notNull())
    .addColumn('current_run_id', 'text')
    .addColumn('next_run_at', 'bigint')
    .addColumn('cut_over', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expired_at', 'bigint')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('replication_jobs_name').on('replication_jobs').columns(['account_id', 'name']).unique().execute();
  await db.schema.createIndex('replication_jobs_account').on('replication_jobs').columns(['account_id', 'created_at']).execute();
  await db.schema.createIndex('replication_jobs_source').on('replication_jobs').columns(['source_id', 'created_at']).execute();
  await db.schema
    .createIndex('replication_jobs_one_active')
    .on('replication_jobs')
    .column('source_id')
    .unique()
    .where(sql<boolean>`state in (${sql.join(activeJobStatesAt0007.map((s) => sql.lit(s)))})`)
    .execute();

  await db.schema
    .createTable('replication_job_runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('start_time', 'bigint', (c) => c.notNull())
    .addColumn('end_time', 'bigint')
    .addColumn('image_id', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('replication_job_runs_job').on('replication_job_runs').columns(['job_id', 'seq']).unique().execute();

  await db.schema
    .createTable('smc_images')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('region_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('size_bytes', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('deleted_at', 'bigint')
    .execute();
  await db.schema.createIndex('smc_images_job').on('smc_images').columns(['job_id', 'created_at']).execute();
  // Image names are unique per account and region among images that still exist.
  await db.schema
    .createIndex('smc_images_name')
    .on('smc_images')
    .columns(['account_id', 'region_id', 'name'])
    .unique()
    .where(sql.ref('deleted_at'), 'is', null)
    .execute();

  await db.schema
    .createTable('workgroups')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('workgroups_account').on('workgroups').columns(['account_id', 'created_at']).execute();

  await db.schema
    .createTable('smc_tags')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('resource_type', 'text', (c) => c.notNull())
    .addColumn('resource_id', 'text', (c) => c.notNull())
    .addColumn('tag_key', 'text', (c) => c.notNull())
    .addColumn('tag_value', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('smc_tags_pk', ['resource_type', 'resource_id', 'tag_key'])
    .execute();
  await db.schema.createIndex('smc_tags_account').on('smc_tags').columns(['account_id', 'resource_type', 'resource_id']).execute();

  await db.schema
    .createTable('agent_commands')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('source_id', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('result', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('agent_commands_source').on('agent_commands').columns(['source_id', 'state']).execute();
  await db.schema.createIndex('agent_commands_run').on('agent_commands').column('run_id').execute();
}
