import assert from 'node:assert/strict';
import { before, it } from 'node:test';
import { sql } from 'kysely';
import { forEachDialect } from '../../test/support/dialects.ts';
import type { Database, Db } from './database.ts';
import { PreparedQuery, type Slots } from './prepared-query.ts';

interface NonceArgs {
  readonly keyIds: readonly string[];
  readonly before: number | undefined;
  readonly limit: number;
}

/** The same statement built by Kysely on every call, to compare with. */
function builtEachTime(db: Db, args: NonceArgs) {
  let query = db.selectFrom('signature_nonces').select(['access_key_id', 'nonce', 'expires_at']).where('access_key_id', 'in', [...args.keyIds]);
  if (args.before !== undefined) query = query.where('expires_at', '<', args.before);
  return query.orderBy('expires_at').orderBy('nonce').limit(args.limit);
}

const prepared = new PreparedQuery((db, slot: Slots<NonceArgs>) => {
  let query = db.selectFrom('signature_nonces').select(['access_key_id', 'nonce', 'expires_at']).where('access_key_id', 'in', slot.items('keyIds'));
  if (slot.given('before')) query = query.where('expires_at', '<', slot.value('before'));
  return query.orderBy('expires_at').orderBy('nonce').limit(slot.value('limit'));
});

const insert = new PreparedQuery((db, slot: Slots<{ keyId: string; nonces: readonly string[]; expiresAt: number }>) =>
  db
    .insertInto('signature_nonces')
    .values(slot.items('nonces').map((nonce) => ({ access_key_id: slot.value('keyId'), nonce, expires_at: slot.value('expiresAt') })))
    .onConflict((oc) => oc.columns(['access_key_id', 'nonce']).doNothing())
    .returning('nonce'),
);

const byOrder = new PreparedQuery(
  (db, slot: Slots<{ keyId: string; newestFirst: boolean }>) =>
    db
      .selectFrom('signature_nonces')
      .select('nonce')
      .where('access_key_id', '=', slot.value('keyId'))
      .orderBy('expires_at', slot.shaped('newestFirst') ? 'desc' : 'asc'),
  ['newestFirst'],
);

forEachDialect('prepared queries', (ctx) => {
  let database: Database;
  before(async () => {
    database = await ctx.open();
    const rows = ['a', 'b', 'c'].flatMap((key, k) => Array.from({ length: 5 }, (_, i) => ({ access_key_id: `key-${key}`, nonce: `n-${i}`, expires_at: 1_000 + k * 10 + i })));
    await database.db.insertInto('signature_nonces').values(rows).execute();
  });

  it('answers what the same query built on every call answers, for every shape of its arguments', async () => {
    const calls: NonceArgs[] = [
      { keyIds: ['key-a'], before: undefined, limit: 10 },
      { keyIds: ['key-b'], before: undefined, limit: 2 },
      { keyIds: ['key-a', 'key-c'], before: 1_022, limit: 10 },
      { keyIds: ['key-c', 'key-b', 'key-a'], before: 1_013, limit: 4 },
      { keyIds: ['key-a', 'key-b'], before: undefined, limit: 3 },
      { keyIds: ['key-nobody'], before: 5_000, limit: 10 },
    ];
    for (const args of calls) {
      const expected = await builtEachTime(database.db, args).execute();
      assert.deepEqual(await prepared.rows(database.db, args), expected, JSON.stringify(args));
    }
    // A shape seen before still answers for the new values, not for the first call's.
    assert.deepEqual(
      (await prepared.rows(database.db, { keyIds: ['key-c'], before: undefined, limit: 1 })).map((r) => [r.access_key_id, r.nonce]),
      [['key-c', 'n-0']],
    );
  });

  it('runs inside a transaction, on its connection, and rolls back with it', async () => {
    await database.db
      .transaction()
      .execute(async (trx) => {
        assert.deepEqual(
          (await insert.rows(trx, { keyId: 'key-t', nonces: ['t-1', 't-2'], expiresAt: 9 })).map((r) => r.nonce),
          ['t-1', 't-2'],
        );
        assert.deepEqual((await insert.rows(trx, { keyId: 'key-t', nonces: ['t-2', 't-3'], expiresAt: 9 })).map((r) => r.nonce), ['t-3'], 'a nonce stored already is not returned');
        assert.equal((await prepared.rows(trx, { keyIds: ['key-t'], before: undefined, limit: 10 })).length, 3, 'sees its own writes');
        throw new Error('roll back');
      })
      .catch((err: unknown) => assert.equal((err as Error).message, 'roll back'));
    assert.deepEqual(await prepared.rows(database.db, { keyIds: ['key-t'], before: undefined, limit: 10 }), []);
  });

  it('compiles a query per value of a shape argument, and refuses a build that reads any other value', async () => {
    const oldest = await byOrder.rows(database.db, { keyId: 'key-b', newestFirst: false });
    const newest = await byOrder.rows(database.db, { keyId: 'key-b', newestFirst: true });
    assert.deepEqual(
      oldest.map((r) => r.nonce),
      ['n-0', 'n-1', 'n-2', 'n-3', 'n-4'],
    );
    assert.deepEqual(
      newest.map((r) => r.nonce),
      ['n-4', 'n-3', 'n-2', 'n-1', 'n-0'],
    );
    const misuse = new PreparedQuery((db, slot: Slots<{ keyId: string }>) => db.selectFrom('signature_nonces').select('nonce').where('access_key_id', '=', slot.shaped('keyId')));
    await assert.rejects(misuse.rows(database.db, { keyId: 'key-a' }), /keyId is not a shape argument/);
  });

  // SQLite keeps its prepared statements in the driver: there is nothing of this to see there.
  if (ctx.dialect === 'postgres') {
    it('on PostgreSQL runs as a statement its connection prepared once, by name', async () => {
      await database.db.connection().execute(async (conn) => {
        await prepared.rows(conn, { keyIds: ['key-a'], before: undefined, limit: 1 });
        await prepared.rows(conn, { keyIds: ['key-b'], before: undefined, limit: 2 });
        const statements = await sql<{ name: string; statement: string }>`select name, statement from pg_prepared_statements`.execute(conn);
        const mine = statements.rows.filter((s) => s.statement.includes('from "signature_nonces"') && s.statement.includes('"access_key_id" in ($1) order by'));
        assert.equal(mine.length, 1, 'one named statement for the shape, reused by the second call');
        assert.match(mine[0]?.name ?? '', /^ferry_prepared_\d+$/);
      });
    });
  }
});
