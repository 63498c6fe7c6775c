/** SMC tables: activation codes (source servers and replication jobs join them). */

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

export interface SmcTables {
  access_tokens: AccessTokenTable;
}
