/** Rows SMC tests need, written straight into a server's database: fleet rows the rules refer to, finished jobs for the quota, keys of other accounts. */
import { systemClock } from '../../src/core/clock.ts';
import { createAccessKey } from '../../src/identity/access-keys.ts';
import { ensureAccount } from '../../src/identity/accounts.ts';
import { loadMasterKey, openSecretBox } from '../../src/identity/master-key.ts';
import { type Db, openDatabase } from '../../src/store/database.ts';
import type { ReplicationJobTable } from '../../src/store/schema-smc.ts';
import type { CreatedKey } from './api.ts';

export interface SeededFleet {
  readonly regionId: string;
  readonly vSwitchId: string;
  readonly vpcId: string;
  readonly instanceType: string;
  readonly instanceId: string;
}

/** Seed the fleet of `dbUrl` (`sqlite:<file>` or `postgres://…`), with the instance owned by `accountId`. */
export async function seedFleet(dbUrl: string, accountId: string): Promise<SeededFleet> {
  const database = await openDatabase({ url: dbUrl, migrate: false });
  const now = Date.now();
  const fleet = { regionId: 'cn-hangzhou', vSwitchId: 'vsw-h1', vpcId: 'vpc-h1', instanceType: 'ecs.g7.large', instanceId: 'i-target1' };
  try {
    const db = database.db;
    await db.insertInto('regions').values({ id: fleet.regionId, created_at: now, updated_at: now }).execute();
    await db.insertInto('zones').values({ id: 'cn-hangzhou-h', region_id: fleet.regionId, created_at: now, updated_at: now }).execute();
    await db.insertInto('vswitches').values({ id: fleet.vSwitchId, zone_id: 'cn-hangzhou-h', vpc_id: fleet.vpcId, cidr: '192.168.1.0/24', created_at: now, updated_at: now }).execute();
    await db.insertInto('instance_types').values({ id: fleet.instanceType, family: 'ecs.g7', vcpus: 2, memory_mib: 8192, created_at: now, updated_at: now }).execute();
    await db
      .insertInto('hosts')
      .values({ id: 'host-h1', zone_id: 'cn-hangzhou-h', state: 'Available', vcpus: 64, memory_mib: 262_144, numa_nodes: 1, dedicated_host_id: null, owner_account_id: null, allowed_families: null, created_at: now, updated_at: now })
      .execute();
    await db.insertInto('host_numa_nodes').values({ host_id: 'host-h1', node: 0, vcpus_total: 64, memory_mib_total: 262_144, vcpus_used: 2, memory_mib_used: 8192 }).execute();
    await db
      .insertInto('instances')
      .values({ id: fleet.instanceId, account_id: accountId, host_id: 'host-h1', numa_node: 0, instance_type_id: fleet.instanceType, vswitch_id: fleet.vSwitchId, status: 'Running', vcpus: 2, memory_mib: 8192, created_at: now, updated_at: now })
      .execute();
    // A system disk that holds a 30 GiB source disk; no data disks. Its file is never written by these tests.
    await db
      .insertInto('disks')
      .values({ id: 'd-target1-sys', instance_id: fleet.instanceId, device_index: 0, kind: 'system', category: 'cloud_essd', performance_level: 'PL1', size_gib: 40, fill_mib: 0, host_id: 'host-h1', path: '/nonexistent/d-target1-sys.img', created_at: now, updated_at: now })
      .execute();
  } finally {
    await database.close();
  }
  return fleet;
}

/** Rows of `count` Finished jobs of `accountId` on `sourceId`: they count toward the quota but hold no source. */
export function finishedJobRows(accountId: string, sourceId: string, count: number, nowMs: number): ReplicationJobTable[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `j-seed${i}x${sourceId.slice(-6)}`, account_id: accountId, source_id: sourceId, name: `seed-${i}-${sourceId.slice(-6)}`, description: '', region_id: 'cn-hangzhou', job_type: 0, target_type: 'Image',
    state: 'Finished', progress: 100, error_code: '', status_info: '', created_at: nowMs, start_time: nowMs, end_time: nowMs, scheduled_start_time: null, valid_time: nowMs + 30 * 86_400_000,
    image_name: '', instance_id: '', instance_type: '', instance_ram_role: '', launch_template_id: '', launch_template_version: '', license_type: '', net_mode: 0, vpc_id: '',
    vswitch_id: '', replication_parameters: '', run_once: 1, frequency_hours: null, max_images: null, system_disk_size_gib: 20, system_disk_parts: '[]', data_disks: '[]',
    container_namespace: '', container_repository: '', container_tag: '', resource_group_id: '', image_id: '', current_run_id: null, next_run_at: null, cut_over: 0, expired_at: null, updated_at: nowMs,
  }));
}

/** Insert `rows` a hundred at a time. */
export async function insertJobs(db: Db, rows: readonly ReplicationJobTable[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 100) await db.insertInto('replication_jobs').values(rows.slice(i, i + 100)).execute();
}

/** Give `accountId` `count` Finished jobs on `sourceId` in the database at `dbUrl`. */
export async function seedFinishedJobs(dbUrl: string, accountId: string, sourceId: string, count: number): Promise<void> {
  const database = await openDatabase({ url: dbUrl, migrate: false });
  try {
    await insertJobs(database.db, finishedJobRows(accountId, sourceId, count, Date.now()));
  } finally {
    await database.close();
  }
}

/** What `ferry admin create-key` does, in this process: a key of account `name` in the server's database (no process start). */
export async function createKeyIn(dataDir: string, dbUrl: string, name: string): Promise<CreatedKey> {
  const database = await openDatabase({ url: dbUrl, migrate: false });
  try {
    const box = await openSecretBox(database.db, loadMasterKey(dataDir));
    const account = await ensureAccount(database.db, systemClock, name);
    const key = await createAccessKey(database.db, box, systemClock, account.id);
    return { accountId: account.id, projectId: account.projectId, accessKeyId: key.id, accessKeySecret: key.secret };
  } finally {
    await database.close();
  }
}
