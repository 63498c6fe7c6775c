import type { Kysely } from 'kysely';

/** Signature nonces, access policies per key, and ClientToken idempotency records. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('signature_nonces')
    .addColumn('access_key_id', 'text', (c) => c.notNull())
    .addColumn('nonce', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('signature_nonces_pk', ['access_key_id', 'nonce'])
    .execute();
  await db.schema.createIndex('signature_nonces_expiry').on('signature_nonces').column('expires_at').execute();

  await db.schema
    .createTable('key_policies')
    .addColumn('access_key_id', 'text', (c) => c.primaryKey().references('access_keys.id'))
    .addColumn('document', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('idempotency_records')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('client_token', 'text', (c) => c.notNull())
    .addColumn('params_hash', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('response', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_records_pk', ['account_id', 'action', 'client_token'])
    .execute();
  await db.schema.createIndex('idempotency_records_age').on('idempotency_records').column('created_at').execute();
}
