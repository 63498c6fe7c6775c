/** ENS tables: instance system events (src/migration/events*.ts). Timestamps are integer ms. */

export interface EnsEventTable {
  /** `e-<32 hex>`. */
  id: string;
  /** The instance owner's account: only it sees and handles the event. */
  account_id: string;
  /** ResourceId: the instance the event concerns. */
  instance_id: string;
  event_type: string;
  /** Inquiring | Scheduled | Executing | Executed | Failed | Canceled | Avoided (migration/events-model.ts). */
  status: string;
  /** CRITICAL | WARN | INFO. */
  level: string;
  reason: string;
  /** host (an operator changed the host's state) | inject (`ferry events inject`). */
  source: string;
  /** The host the instance was on when the event was published. */
  host_id: string;
  published_at: number;
  /** NotBefore: when the event runs; the deadline while Inquiring, the planned time once Scheduled. */
  not_before: number;
  /** When the system executes the event itself if its owner has not. */
  deadline_at: number;
  /** immediate | scheduled, once the owner answered. */
  ops_type: string | null;
  /** abandon | force_transfer | try_transfer (migrate events). */
  data_policy: string | null;
  /** scrypt of the new instance password (migrate events), `scrypt:<salt>:<hash>` in base64. */
  password_hash: string | null;
  /** owner | system: who started the execution. */
  executed_by: string | null;
  /** The engine job that will act on the event next; a job whose id differs is stale and does nothing. */
  job_id: string | null;
  /** The instance move (src/migration/instance-move.ts) a migrate or redeploy runs. */
  move_id: string | null;
  /** JSON: what the execution did (target host, disks copied or recreated). */
  result: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface EnsTables {
  ens_events: EnsEventTable;
}
