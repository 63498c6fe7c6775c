/**
 * Statements on the request path, built and compiled by Kysely once per dialect and shape, then
 * run with each call's values. Building a small query and compiling it to SQL costs the node more
 * CPU than SQLite takes to run it; and the SQL text is then the same string on every call, so a
 * statement cache keyed by it finds its prepared statement without hashing a new string.
 *
 * A query's build function gets slots, not values: a slot compiles to a parameter placeholder,
 * and each run puts that call's value in its place. It may branch on the shape of the arguments
 * (which are given, how long each list is) and on the values of the few arguments declared as
 * shape arguments (a state name, say), never on another value, so the compiled text fits every
 * call of the same shape.
 */
import { type Compilable, type CompiledQuery, type QueryResult, type RawBuilder, sql } from 'kysely';
import type { Db } from './database.ts';

/** The slot of a parameter: argument `arg`, or item `item` of it when it is a list (`item` >= 0). */
class Slot {
  constructor(
    readonly arg: string,
    readonly item: number,
  ) {}
}

type ItemOf<T> = T extends readonly (infer E)[] ? E : never;

/** Argument names whose values are lists. */
type ListArgs<A> = { [K in keyof A]-?: NonNullable<A[K]> extends readonly unknown[] ? K : never }[keyof A] & string;

/** What a build gets instead of values: placeholders, and the shape of the arguments, which it may branch on. */
export interface Slots<A> {
  /** A placeholder for argument `name`. */
  value<K extends keyof A & string>(name: K): RawBuilder<NonNullable<A[K]>>;
  /** A placeholder for each item of list argument `name` (none when it is not given). */
  items<K extends ListArgs<A>>(name: K): RawBuilder<ItemOf<NonNullable<A[K]>>>[];
  /** Whether argument `name` is given (not undefined). */
  given(name: keyof A & string): boolean;
  /** The value of `name`, which must be one of the query's shape arguments. */
  shaped<K extends keyof A & string>(name: K): A[K];
}

/** Where each parameter of the compiled query comes from: a slot, or a constant of the query itself. */
type ParamSource = Slot | { readonly constant: unknown };

interface Template {
  readonly query: CompiledQuery;
  readonly sources: readonly ParamSource[];
}

/** Shapes kept per dialect before the cache starts over; lists are short, so real shapes are far fewer. */
const maxShapes = 2_000;

/** A query compiled once per dialect and shape; run it with `execute`. */
export class PreparedQuery<A extends object, O> {
  readonly #build: (db: Db, slots: Slots<A>) => Compilable<O>;
  readonly #shapeArgs: readonly (keyof A & string)[];
  // Keyed by the dialect adapter: a transaction shares its database's adapter, and two databases
  // of one dialect compile alike, while SQLite and PostgreSQL texts differ.
  readonly #templates = new WeakMap<object, Map<string, Template>>();

  /** `shapeArgs`: arguments whose values the build may branch on; keep them to a few short values each. */
  constructor(build: (db: Db, slots: Slots<A>) => Compilable<O>, shapeArgs: readonly (keyof A & string)[] = []) {
    this.#build = build;
    this.#shapeArgs = shapeArgs;
  }

  /** Run the query on `db` (a database or a transaction) with these arguments. */
  async execute(db: Db, args: A): Promise<QueryResult<O>> {
    const template = this.#template(db, args);
    const values = args as Readonly<Record<string, unknown>>;
    const parameters = template.sources.map((source) => (source instanceof Slot ? valueOf(values, source) : source.constant));
    return db.executeQuery<O>({ ...template.query, parameters });
  }

  /** The rows of `execute`. */
  async rows(db: Db, args: A): Promise<O[]> {
    return (await this.execute(db, args)).rows;
  }

  #template(db: Db, args: A): Template {
    const executor = db.getExecutor();
    // A plugin may rewrite a query on each compile; a template would skip that.
    if (executor.plugins.length > 0) throw new Error('PreparedQuery does not support Kysely plugins');
    let templates = this.#templates.get(executor.adapter);
    if (templates === undefined) {
      templates = new Map();
      this.#templates.set(executor.adapter, templates);
    }
    let key = shapeKey(args as Readonly<Record<string, unknown>>);
    for (const name of this.#shapeArgs) key += `|${String(args[name])}`;
    let template = templates.get(key);
    if (template === undefined) {
      template = compileTemplate(this.#build(db, slotsFor(args, this.#shapeArgs)));
      if (templates.size >= maxShapes) templates.clear();
      templates.set(key, template);
    }
    return template;
  }
}

/**
 * Names of the compiled texts, for drivers that prepare a statement once per connection and
 * then run it by name (PostgreSQL): the texts are few, one per query and shape.
 */
const statementNames = new Map<string, string>();

/** The name a compiled prepared query's SQL text is known by, or undefined for any other text. */
export function preparedStatementName(text: string): string | undefined {
  return statementNames.get(text);
}

function compileTemplate(query: Compilable<unknown>): Template {
  const compiled = query.compile();
  // Kept for the process's life: a text is only ever compiled again for the same query and shape.
  if (!statementNames.has(compiled.sql)) statementNames.set(compiled.sql, `ferry_prepared_${statementNames.size + 1}`);
  const sources = compiled.parameters.map((p): ParamSource => (p instanceof Slot ? p : { constant: p }));
  return { query: compiled, sources };
}

function valueOf(args: Readonly<Record<string, unknown>>, slot: Slot): unknown {
  const value = args[slot.arg];
  return slot.item < 0 ? value : (value as readonly unknown[])[slot.item];
}

/** Which arguments are given and how long the lists are, e.g. `accountId=,ids[3],` ; the cache key of a shape. */
function shapeKey(args: Readonly<Record<string, unknown>>): string {
  let key = '';
  for (const name in args) {
    const value = args[name];
    if (value === undefined) continue;
    key += Array.isArray(value) ? `${name}[${value.length}],` : `${name}=,`;
  }
  return key;
}

function slotsFor<A extends object>(args: A, shapeArgs: readonly (keyof A & string)[]): Slots<A> {
  return {
    value: (name) => sql`${new Slot(name, -1)}`,
    items: (name) => {
      const list: unknown = args[name];
      const length = Array.isArray(list) ? list.length : 0;
      return Array.from({ length }, (_, i) => sql`${new Slot(name, i)}`);
    },
    given: (name) => args[name] !== undefined,
    shaped: (name) => {
      if (!shapeArgs.includes(name)) throw new Error(`PreparedQuery: ${name} is not a shape argument; use a slot for it`);
      return args[name];
    },
  };
}
