import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, it } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import { tempDir } from '../../test/support/dialects.ts';
import { openDatabase } from './database.ts';

it('SQLite rows read as better-sqlite3 makes them, through a schema change, with or without named columns', async () => {
  const path = join(tempDir(), 'ferry.db');
  const database = await openDatabase({ url: `sqlite:${path}` });
  after(() => database.close());
  const db = database.db;
  await sql`create table t (id text primary key, n integer, note text)`.execute(db);
  await sql`insert into t values ('a', 1, null), ('b', 2, 'two')`.execute(db);
  const direct = new SqliteDatabase(path, { readonly: true });
  after(() => direct.close());

  const statements = [
    'select id, n, note from t order by id',
    'select id as x, n as x, note from t order by id',
    "select count(*) as n, 'k' as __proto__ from t",
    'select * from t order by id',
  ];
  for (const text of statements) {
    const expected = direct.prepare(text).all();
    for (let run = 0; run < 2; run += 1) assert.deepEqual((await sql.raw(text).execute(db)).rows, expected, text);
  }

  // A cached `select *` picks a new column up; a statement naming its columns keeps them.
  await sql`alter table t add column extra text default 'e'`.execute(db);
  assert.deepEqual((await sql.raw('select * from t order by id').execute(db)).rows[0], { id: 'a', n: 1, note: null, extra: 'e' });
  assert.deepEqual((await sql.raw('select id, n, note from t order by id').execute(db)).rows[1], { id: 'b', n: 2, note: 'two' });
  const inserted = await sql<{ id: string; n: number }>`insert into t (id, n) values ('c', 3) returning id, n`.execute(db);
  assert.deepEqual(inserted.rows, [{ id: 'c', n: 3 }]);
});
