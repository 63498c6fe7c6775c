import { type Kysely, sql } from 'kysely';

/**
 * Fleet inventory: regions, zones, vswitches, hosts and their NUMA nodes, instance types,
 * instances, disks, and placement claims. A claim is a conditional UPDATE of host_numa_nodes;
 * the CHECK constraints there are the last line against overcommit, whatever the code does.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('regions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('zones')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('region_id', 'text', (c) => c.notNull().references('regions.id'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('vswitches')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('zone_id', 'text', (c) => c.notNull().references('zones.id'))
    .addColumn('vpc_id', 'text', (c) => c.notNull())
    .addColumn('cidr', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('hosts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('zone_id', 'text', (c) => c.notNull().references('zones.id'))
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('vcpus', 'integer', (c) => c.notNull())
    .addColumn('memory_mib', 'integer', (c) => c.notNull())
    .addColumn('numa_nodes', 'integer', (c) => c.notNull())
    .addColumn('dedicated_host_id', 'text', (c) => c.unique())
    .addColumn('owner_account_id', 'text', (c) => c.references('accounts.id'))
    .addColumn('allowed_families', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('hosts_zone').on('hosts').column('zone_id').execute();

  await db.schema
    .createTable('host_numa_nodes')
    .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id'))
    .addColumn('node', 'integer', (c) => c.notNull())
    .addColumn('vcpus_total', 'integer', (c) => c.notNull())
    .addColumn('memory_mib_total', 'integer', (c) => c.notNull())
    .addColumn('vcpus_used', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('memory_mib_used', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('host_numa_nodes_pk', ['host_id', 'node'])
    .addCheckConstraint('host_numa_nodes_vcpus_fit', sql`vcpus_used >= 0 and vcpus_used <= vcpus_total`)
    .addCheckConstraint('host_numa_nodes_memory_fit', sql`memory_mib_used >= 0 and memory_mib_used <= memory_mib_total`)
    .execute();

  await db.schema
    .createTable('instance_types')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('family', 'text', (c) => c.notNull())
    .addColumn('vcpus', 'integer', (c) => c.notNull())
    .addColumn('memory_mib', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('instances')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id'))
    .addColumn('numa_node', 'integer', (c) => c.notNull())
    .addColumn('instance_type_id', 'text', (c) => c.notNull().references('instance_types.id'))
    .addColumn('vswitch_id', 'text', (c) => c.notNull().references('vswitches.id'))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('vcpus', 'integer', (c) => c.notNull())
    .addColumn('memory_mib', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('instances_host').on('instances').column('host_id').execute();
  await db.schema.createIndex('instances_account').on('instances').column('account_id').execute();

  await db.schema
    .createTable('disks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('instance_id', 'text', (c) => c.notNull().references('instances.id'))
    .addColumn('device_index', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('category', 'text', (c) => c.notNull())
    .addColumn('performance_level', 'text', (c) => c.notNull())
    .addColumn('size_gib', 'integer', (c) => c.notNull())
    .addColumn('fill_mib', 'integer', (c) => c.notNull())
    .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id'))
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('disks_instance').on('disks').columns(['instance_id', 'device_index']).execute();

  await db.schema
    .createTable('placement_claims')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id'))
    .addColumn('node', 'integer', (c) => c.notNull())
    .addColumn('instance_id', 'text', (c) => c.references('instances.id'))
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('vcpus', 'integer', (c) => c.notNull())
    .addColumn('memory_mib', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('placement_claims_expiry').on('placement_claims').columns(['state', 'expires_at']).execute();
  await db.schema.createIndex('placement_claims_host').on('placement_claims').columns(['host_id', 'state']).execute();
  // One move at a time per instance: a second held claim for it is refused by the database.
  await db.schema
    .createIndex('placement_claims_one_held')
    .on('placement_claims')
    .column('instance_id')
    .unique()
    .where(sql.ref('state'), '=', sql.lit('held'))
    .execute();
}
