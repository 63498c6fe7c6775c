/** Instance moves (src/migration/instance-move.ts): one row per move, whatever front door asked for it. Timestamps are integer ms. */

export interface InstanceMoveTable {
  /** Chosen by the front door: SMC `j-…`, Huawei 32 hex, ENS and native `mv-…`. */
  id: string;
  account_id: string;
  instance_id: string;
  /** Who asked: smc-cross-zone | ecs-cold-migration | ens-event | … (a door lists only its own). */
  origin: string;
  /** The engine job that runs the move. */
  job_id: string;
  /** queued | running | succeeded | failed. */
  state: string;
  /** preparing | stopping | copying | switching | starting | rolling-back | done. */
  phase: string;
  /** Progress in basis points (0–10000) of the bytes to copy. */
  progress_bp: number;
  /** JSON of the resolved MovePlan. */
  plan: string;
  from_host_id: string;
  to_host_id: string | null;
  claim_id: string | null;
  /** 1 when the instance was running when the move began (it is started again at the end). */
  was_running: number | null;
  /** A code of core/errors.ts's catalogue; each door answers it in its own words. */
  error_code: string | null;
  error_message: string | null;
  /** JSON of the MoveOutcome once the move ends. */
  result: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

export interface MoveTables {
  instance_moves: InstanceMoveTable;
}
