/** Identity tables beyond accounts and keys: nonces, policies, idempotency records. */

export interface SignatureNonceTable {
  access_key_id: string;
  nonce: string;
  expires_at: number;
}

export interface KeyPolicyTable {
  access_key_id: string;
  /** The policy document as JSON text. */
  document: string;
  updated_at: number;
}

export interface IdempotencyRecordTable {
  account_id: string;
  action: string;
  client_token: string;
  /** sha256 of the canonical request params, without ClientToken and signature params. */
  params_hash: string;
  /** `pending` while the first request runs, `done` once its response is stored. */
  state: string;
  response: string | null;
  created_at: number;
}

export interface IdentityTables {
  signature_nonces: SignatureNonceTable;
  key_policies: KeyPolicyTable;
  idempotency_records: IdempotencyRecordTable;
}
