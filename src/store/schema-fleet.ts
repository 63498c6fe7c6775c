/**
 * Fleet inventory tables (regions, zones, hosts, instances, disks, placement claims).
 * Memory is stored in MiB so capacity arithmetic stays in integers; the fleet file speaks GiB.
 * Timestamps are integer ms; lists are JSON text.
 */

export interface RegionTable {
  id: string;
  created_at: number;
  updated_at: number;
}

export interface ZoneTable {
  id: string;
  region_id: string;
  created_at: number;
  updated_at: number;
}

export interface VswitchTable {
  id: string;
  zone_id: string;
  vpc_id: string;
  cidr: string;
  created_at: number;
  updated_at: number;
}

export interface HostTable {
  id: string;
  zone_id: string;
  /** Available | Maintenance | Failed | Offline. */
  state: string;
  vcpus: number;
  memory_mib: number;
  numa_nodes: number;
  /** Set on a dedicated host (DeH); unique. */
  dedicated_host_id: string | null;
  /** accounts.id of the DeH's owner; null on public-pool hosts. */
  owner_account_id: string | null;
  /** JSON array of instance families a DeH accepts; null accepts every family. */
  allowed_families: string | null;
  created_at: number;
  updated_at: number;
}

/**
 * One NUMA node of a host. `*_used` counts the instances placed on the node plus held claims;
 * a claim is a conditional UPDATE of this row, and CHECK constraints keep used <= total.
 */
export interface HostNumaNodeTable {
  host_id: string;
  node: number;
  vcpus_total: number;
  memory_mib_total: number;
  vcpus_used: number;
  memory_mib_used: number;
}

export interface InstanceTypeTable {
  id: string;
  family: string;
  vcpus: number;
  memory_mib: number;
  created_at: number;
  updated_at: number;
}

export interface InstanceTable {
  id: string;
  account_id: string;
  host_id: string;
  numa_node: number;
  instance_type_id: string;
  vswitch_id: string;
  /** Running | Stopped | Starting | Stopping | Migrating (see fleet/instance-states.ts). */
  status: string;
  /** What the instance holds on its NUMA node: its type's size when it was placed. */
  vcpus: number;
  memory_mib: number;
  created_at: number;
  updated_at: number;
}

export interface DiskTable {
  id: string;
  instance_id: string;
  /** Position in the instance's disk list (system disk first in fleet files). */
  device_index: number;
  /** system | data. */
  kind: string;
  /** cloud_essd | cloud_ssd | cloud_efficiency. */
  category: string;
  /** PL0..PL3. */
  performance_level: string;
  size_gib: number;
  /** MiB of seeded pseudo-random data written when the backing file was created. */
  fill_mib: number;
  /** The host whose storage pool holds the backing file. */
  host_id: string;
  /** Absolute path of the sparse backing file. */
  path: string;
  created_at: number;
  updated_at: number;
}

/** Capacity reserved on one NUMA node for a placement (e.g. the target of a cold migration). */
export interface PlacementClaimTable {
  id: string;
  host_id: string;
  node: number;
  /** The instance that will live there when the claim commits; null for a bare reservation. */
  instance_id: string | null;
  account_id: string;
  vcpus: number;
  memory_mib: number;
  /** held | committed | released. Only held claims count in host_numa_nodes.*_used. */
  state: string;
  expires_at: number;
  created_at: number;
  updated_at: number;
}

export interface FleetTables {
  regions: RegionTable;
  zones: ZoneTable;
  vswitches: VswitchTable;
  hosts: HostTable;
  host_numa_nodes: HostNumaNodeTable;
  instance_types: InstanceTypeTable;
  instances: InstanceTable;
  disks: DiskTable;
  placement_claims: PlacementClaimTable;
}
