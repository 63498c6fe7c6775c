/** Identity tables beyond accounts and keys: policies, nonces, idempotency records. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface IdentityTables {}
