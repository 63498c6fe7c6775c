/**
 * SMC tables: activation codes, source servers, replication jobs and their runs, the images runs
 * build, workgroups, tags, and the commands agents fetch. Timestamps are integer ms; lists are JSON text.
 */

export interface AccessTokenTable {
  id: string;
  account_id: string;
  name: string;
  description: string;
  /** sha256 hex of the activation code; the code itself is shown once and never stored. */
  code_hash: string;
  max_count: number;
  registered_count: number;
  ttl_days: number;
  disabled: number;
  created_at: number;
  expires_at: number;
}

/** A machine an agent registered. Its API State is derived (migration/source-server-state.ts), not stored. */
export interface SourceServerTable {
  id: string;
  account_id: string;
  name: string;
  description: string;
  /** 1 once DeleteSourceServer accepted it; the row goes when its cleanup job runs. */
  deleting: number;
  /** The access key registration issued; the agent signs with it. */
  agent_key_id: string;
  access_token_id: string | null;
  workgroup_id: string | null;
  resource_group_id: string;
  agent_version: string;
  hostname: string;
  platform: string;
  architecture: string;
  kernel_level: number;
  /** JSON of the agent's SourceFacts (core/agent-protocol.ts). */
  facts: string;
  last_seen_at: number;
  created_at: number;
  updated_at: number;
}

export interface ReplicationJobTable {
  id: string;
  account_id: string;
  source_id: string;
  name: string;
  description: string;
  region_id: string;
  job_type: number;
  target_type: string;
  /** Composite `Status[/BusinessStatus]`, a state of migration/replication-job-states.ts. */
  state: string;
  /** 0-100. */
  progress: number;
  error_code: string;
  status_info: string;
  created_at: number;
  /** First run's start; null until the job first ran. */
  start_time: number | null;
  end_time: number | null;
  scheduled_start_time: number | null;
  valid_time: number;
  image_name: string;
  instance_id: string;
  instance_type: string;
  instance_ram_role: string;
  launch_template_id: string;
  launch_template_version: string;
  license_type: string;
  net_mode: number;
  vpc_id: string;
  vswitch_id: string;
  replication_parameters: string;
  run_once: number;
  frequency_hours: number | null;
  max_images: number | null;
  system_disk_size_gib: number | null;
  /** JSON `[{device, sizeBytes, block}]`. */
  system_disk_parts: string;
  /** JSON `[{index, sizeGib, parts: [{device, sizeBytes, block}]}]`. */
  data_disks: string;
  container_namespace: string;
  container_repository: string;
  container_tag: string;
  resource_group_id: string;
  /** The newest image a run built. */
  image_id: string;
  current_run_id: string | null;
  /** When an incremental job in Waiting runs next. */
  next_run_at: number | null;
  /** 1 after CutOverReplicationJob: the running run is the last. */
  cut_over: number;
  expired_at: number | null;
  updated_at: number;
}

export interface ReplicationJobRunTable {
  id: string;
  job_id: string;
  account_id: string;
  /** Manual | Schedule. */
  type: string;
  /** 1, 2, … within the job. */
  seq: number;
  start_time: number;
  end_time: number | null;
  image_id: string;
  /** running | succeeded | failed | stopped | expired. */
  outcome: string;
  /** Apparent bytes of the run's disks, and how many of them the transfer has covered. */
  bytes_total: number;
  bytes_done: number;
  /** Chunk bytes the server received (compressed as sent), resent chunks included. */
  bytes_received: number;
  chunks_received: number;
  /** Received bytes per second over the last progress interval. */
  rate_bytes_per_sec: number;
  progress_at: number | null;
  /** JSON `{diskIndex: hex}`: the whole-image proof of each disk, equal on both sides. */
  proofs: string | null;
  /** Server ms when the first disk's stream began, and when the last disk's proof was recorded. */
  transfer_started_at: number | null;
  transfer_ended_at: number | null;
}

/** An image a run built; the file is `<dataDir>/images/<id>.raw` (data disks `<id>.data<N>.raw`). */
export interface SmcImageTable {
  id: string;
  account_id: string;
  job_id: string;
  run_id: string;
  region_id: string;
  name: string;
  size_bytes: number;
  created_at: number;
  /** Set when retention or deletion removed the files. */
  deleted_at: number | null;
}

export interface WorkgroupTable {
  id: string;
  account_id: string;
  name: string;
  description: string;
  created_at: number;
  updated_at: number;
}

/** A tag on a source server, a replication job or a workgroup. */
export interface SmcTagTable {
  account_id: string;
  /** sourceserver | replicationjob | workgroup. */
  resource_type: string;
  resource_id: string;
  tag_key: string;
  tag_value: string;
  created_at: number;
}

/** Work for an agent, fetched by its long poll. */
export interface AgentCommandTable {
  id: string;
  account_id: string;
  source_id: string;
  job_id: string;
  run_id: string;
  kind: string;
  /** JSON of the command as the agent receives it. */
  payload: string;
  /** pending | delivered | done | failed | cancelled. */
  state: string;
  /** JSON of the agent's result (ResultRequest) once it reported one. */
  result: string | null;
  created_at: number;
  updated_at: number;
}

/** A data-plane stream ticket not yet redeemed (migration 0030): sha256 of the ticket, its StreamGrant as JSON. */
export interface StreamTicketTable {
  ticket_hash: string;
  grant_json: string;
  expires_at: number;
}

export interface SmcTables {
  access_tokens: AccessTokenTable;
  source_servers: SourceServerTable;
  replication_jobs: ReplicationJobTable;
  replication_job_runs: ReplicationJobRunTable;
  smc_images: SmcImageTable;
  workgroups: WorkgroupTable;
  smc_tags: SmcTagTable;
  agent_commands: AgentCommandTable;
  stream_tickets: StreamTicketTable;
}
