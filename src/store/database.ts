import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { inspect } from 'node:util';
import SqliteDatabase from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  Kysely,
  Migrator,
  PostgresDialect,
  type PostgresCursor,
  type PostgresPool,
  type PostgresPoolClient,
  type PostgresQueryResult,
  type QueryResult,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  SqliteQueryCompiler,
} from 'kysely';
import pg from 'pg';
import { migrationProvider } from './migrations/index.ts';
import { preparedStatementName } from './prepared-query.ts';
import type { DatabaseSchema } from './schema.ts';

export type DialectName = 'sqlite' | 'postgres';

export type Db = Kysely<DatabaseSchema>;

/** An open database: the Kysely handle, which dialect it speaks, and how to close it. */
export interface Database {
  readonly db: Db;
  readonly dialect: DialectName;
  /** Where it lives: a file path for SQLite, the URL without password for PostgreSQL. */
  readonly location: string;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** `postgres://...`, `sqlite:/path/file.db`, or undefined for `<dataDir>/ferry.db`. */
  readonly url?: string | undefined;
  readonly dataDir?: string | undefined;
  /** Connections in the PostgreSQL pool. */
  readonly poolSize?: number;
  /** Apply pending migrations before returning (default true). */
  readonly migrate?: boolean;
}

const sqliteBusyTimeoutMs = 10_000;

/** Prepared statements one SQLite connection keeps; the engine's hot path uses about a dozen. */
const sqliteStatementCacheSize = 200;

/** A prepared statement, and for one read in rows of arrays the names of its columns. */
interface CachedStatement {
  readonly statement: SqliteDatabase.Statement;
  readonly columns: readonly string[] | undefined;
}

/**
 * Kysely's SQLite connection prepares every statement anew, which costs about as much as running
 * a small one; the job engine runs the same few statements thousands of times a second. This
 * connection keeps the most recently used prepared statements, keyed by their SQL text.
 *
 * It also reads rows as arrays and makes the row objects itself: better-sqlite3 builds each row
 * object through the V8 API one property at a time, which costs more than a plain loop (a page of
 * 5 source rows of 13 columns: 22 us as objects, 17 us as arrays turned into the same objects).
 * Only for statements that name their columns: SQLite re-prepares a statement when the schema
 * changes, and the columns of a `*` could change with it, while names written out cannot.
 */
class CachingSqliteConnection implements DatabaseConnection {
  readonly #handle: SqliteDatabase.Database;
  readonly #uncached: DatabaseConnection;
  // A Map iterates in insertion order: re-inserting on each use keeps the least recent first.
  readonly #statements = new Map<string, CachedStatement>();

  /** `uncached` is Kysely's own connection to the same handle. */
  constructor(handle: SqliteDatabase.Database, uncached: DatabaseConnection) {
    this.#handle = handle;
    this.#uncached = uncached;
  }

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const { statement, columns } = this.#prepare(compiledQuery.sql);
    if (columns !== undefined) return Promise.resolve({ rows: rowObjects(statement.all(compiledQuery.parameters) as unknown[][], columns) as R[] });
    if (statement.reader) return Promise.resolve({ rows: statement.all(compiledQuery.parameters) as R[] });
    const { changes, lastInsertRowid } = statement.run(compiledQuery.parameters);
    return Promise.resolve({ numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] });
  }

  streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    // An open iterator keeps its statement busy, so a stream must not use a cached one.
    return this.#uncached.streamQuery(compiledQuery, chunkSize);
  }

  #prepare(text: string): CachedStatement {
    let cached = this.#statements.get(text);
    if (cached === undefined) {
      const statement = this.#handle.prepare(text);
      const names = statement.reader && !text.includes('*') ? statement.columns().map((c) => c.name) : undefined;
      // An object literal's `__proto__` property would set its prototype instead.
      const columns = names?.includes('__proto__') === true ? undefined : names;
      if (columns !== undefined) statement.raw(true);
      cached = { statement, columns };
      if (this.#statements.size >= sqliteStatementCacheSize) {
        const oldest = this.#statements.keys().next();
        if (oldest.done !== true) this.#statements.delete(oldest.value);
      }
    } else {
      this.#statements.delete(text);
    }
    this.#statements.set(text, cached);
    return cached;
  }
}

/** Rows of arrays as the objects better-sqlite3 would make: one property per column, in order, a later column of the same name winning. */
function rowObjects(rows: readonly unknown[][], columns: readonly string[]): Record<string, unknown>[] {
  const objects = new Array<Record<string, unknown>>(rows.length);
  for (let r = 0; r < rows.length; r += 1) {
    const row = rows[r] ?? [];
    const object: Record<string, unknown> = {};
    for (let c = 0; c < columns.length; c += 1) object[columns[c] ?? ''] = row[c];
    objects[r] = object;
  }
  return objects;
}

/**
 * Kysely's SQLite driver, which serialises use of its one connection, with two changes.
 * Transactions start with BEGIN IMMEDIATE: SQLite's deferred BEGIN takes its write lock late,
 * so two processes that both read and then write can deadlock with SQLITE_BUSY that no busy
 * timeout resolves; BEGIN IMMEDIATE takes the write lock first, so writers queue instead of
 * failing. And the connection it lends out keeps prepared statements.
 */
class FerrySqliteDriver extends SqliteDriver {
  readonly #opened: { handle?: SqliteDatabase.Database };
  #connection: CachingSqliteConnection | undefined;

  constructor(open: () => SqliteDatabase.Database) {
    const opened: { handle?: SqliteDatabase.Database } = {};
    super({ database: () => Promise.resolve((opened.handle = open())) });
    this.#opened = opened;
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    // The base driver waits for the lock on its one connection; ours wraps it, under that lock.
    const uncached = await super.acquireConnection();
    if (this.#opened.handle === undefined) throw new Error('SQLite driver used before init');
    this.#connection ??= new CachingSqliteConnection(this.#opened.handle, uncached);
    return this.#connection;
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

function sqliteDialect(path: string): Dialect {
  mkdirSync(dirname(path), { recursive: true });
  const open = (): SqliteDatabase.Database => {
    const handle = new SqliteDatabase(path, { timeout: sqliteBusyTimeoutMs });
    handle.pragma('journal_mode = WAL');
    handle.pragma('synchronous = NORMAL');
    handle.pragma('foreign_keys = ON');
    handle.pragma(`busy_timeout = ${sqliteBusyTimeoutMs}`);
    return handle;
  };
  // Reuse Kysely's SQLite pieces; only the driver differs.
  const base = new SqliteDialect({ database: () => Promise.resolve(open()) });
  return {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new FerrySqliteDriver(open),
    createQueryCompiler: () => new SqliteQueryCompiler(),
    createIntrospector: (db) => base.createIntrospector(db),
  };
}

const int8Oid = 20;
const numericOid = 1700;
// pg-types declares its parsers as returning `any`; each takes the column's wire text.
const builtinTypeParser = pg.types.getTypeParser as (oid: number, format: 'text' | 'binary') => (value: string) => unknown;

/**
 * A node frozen mid-transaction (SIGSTOP, a VM pause) would hold its row locks forever, and
 * FOR UPDATE SKIP LOCKED would skip those jobs on every other node. PostgreSQL ends such
 * sessions after this long, so their jobs can be taken over once the lease expires.
 */
function idleInTransactionTimeoutMs(): number {
  const fromEnv = Number(process.env['FERRY_PG_IDLE_TX_TIMEOUT_MS']);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : 10_000;
}

function postgresDialect(url: string, poolSize: number): Dialect {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    options: `-c idle_in_transaction_session_timeout=${idleInTransactionTimeoutMs()}`,
    types: {
      // Timestamps and counters are bigint columns; they fit a JS number for our ranges.
      getTypeParser: (oid: number, format?: 'text' | 'binary') =>
        oid === int8Oid || oid === numericOid
          ? (value: string) => Number(value)
          : builtinTypeParser(oid, format ?? 'text'),
    },
  });
  // A connection the server ended while idle in the pool (restart, idle-transaction timeout)
  // is dropped and replaced; without a listener the 'error' event would kill the process.
  pool.on('error', (err) => {
    process.emitWarning(`PostgreSQL connection lost: ${err.message}`, { code: 'FERRY_PG_CONNECTION_LOST' });
  });
  return new PostgresDialect({ pool: namingPool(pool) });
}

/**
 * The pool as Kysely sees it, running the statements of prepared queries (store/prepared-query.ts)
 * as named statements: each connection parses and plans one once, then only binds and runs it.
 * Only statements that name their columns: a `*` plan would fail with "cached plan must not
 * change result type" once another node's migration added a column.
 */
function namingPool(pool: pg.Pool): PostgresPool {
  const clients = new WeakMap<pg.PoolClient, NamingClient>();
  return {
    connect: async () => {
      const client = await pool.connect();
      let wrapped = clients.get(client);
      if (wrapped === undefined) {
        wrapped = new NamingClient(client);
        clients.set(client, wrapped);
      }
      return wrapped;
    },
    end: () => pool.end(),
  };
}

class NamingClient implements PostgresPoolClient {
  readonly #client: pg.PoolClient;

  constructor(client: pg.PoolClient) {
    this.#client = client;
  }

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(sqlOrCursor: string | PostgresCursor<R>, parameters: ReadonlyArray<unknown> = []): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    // Ferry configures no cursor, so Kysely never streams; pass one through unchanged all the same.
    if (typeof sqlOrCursor !== 'string') return this.#client.query(sqlOrCursor as unknown as pg.Submittable) as unknown as PostgresCursor<R>;
    const name = sqlOrCursor.includes('*') ? undefined : preparedStatementName(sqlOrCursor);
    const values = [...parameters];
    const result = name === undefined ? this.#client.query(sqlOrCursor, values) : this.#client.query({ name, text: sqlOrCursor, values });
    return result as unknown as Promise<PostgresQueryResult<R>>;
  }

  release(): void {
    this.#client.release();
  }
}

/** Resolve where the database lives from an explicit URL or the data dir. */
export function resolveLocation(options: OpenOptions): { dialect: DialectName; target: string } {
  const url = options.url;
  if (url !== undefined && /^postgres(ql)?:\/\//.test(url)) return { dialect: 'postgres', target: url };
  if (url !== undefined && url.startsWith('sqlite:')) return { dialect: 'sqlite', target: resolve(url.slice('sqlite:'.length)) };
  if (url !== undefined && url !== '') return { dialect: 'sqlite', target: resolve(url) };
  const dataDir = options.dataDir ?? './data';
  return { dialect: 'sqlite', target: resolve(join(dataDir, 'ferry.db')) };
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

/** Open the database and bring its schema up to date. */
export async function openDatabase(options: OpenOptions): Promise<Database> {
  const { dialect, target } = resolveLocation(options);
  const db = new Kysely<DatabaseSchema>({
    dialect: dialect === 'postgres' ? postgresDialect(target, options.poolSize ?? 10) : sqliteDialect(target),
  });
  const database: Database = {
    db,
    dialect,
    location: dialect === 'postgres' ? redact(target) : target,
    close: () => db.destroy(),
  };
  if (options.migrate ?? true) {
    try {
      await migrateToLatest(db);
    } catch (err) {
      await db.destroy();
      throw err;
    }
  }
  return database;
}

/** Apply every pending numbered migration; concurrent starters are serialised by Kysely's lock table. */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) throw error instanceof Error ? error : new Error(`migration failed: ${inspect(error)}`, { cause: error });
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
