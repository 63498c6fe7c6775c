import type { Kysely } from 'kysely';

/**
 * Instance moves by instance. Starting a move looks for an unfinished one of its instance; the
 * partial unique index instance_moves_one_open cannot answer it (SQLite uses a partial index only
 * when the query names the same literal states, and the states are bound values), so every start
 * read the whole table: a cost that grew with every move ever made.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('instance_moves_instance').on('instance_moves').columns(['instance_id', 'state']).execute();
}
