import type { Kysely } from 'kysely';

/**
 * One-time tickets for data-plane streams, in the database so that the node that opens a stream
 * need not be the one that issued its ticket (several nodes behind one address). Only a hash of
 * the ticket is stored; the grant is what the redeemed ticket lets its stream do (JSON).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('stream_tickets')
    .addColumn('ticket_hash', 'text', (c) => c.primaryKey())
    .addColumn('grant_json', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('stream_tickets_expiry').on('stream_tickets').column('expires_at').execute();
}
