/**
 * Prepared queries: a Kysely query of fixed shape is built and compiled once per dialect, then
 * run with new values bound into the cached SQL text. On the order path, building and compiling
 * a query (immutable operation nodes, a visitor writing the text) cost more than SQLite running
 * it; a hot statement pays that once.
 *
 * The builder gets a placeholder for every parameter (a marker string); after compiling, each
 * bound value is matched to the parameter it came from by that marker, so values are bound in
 * exactly the order the builder bound them. Only for shapes that do not depend on the values:
 * no `in` lists of varying length, no columns chosen by a value (make one prepared query per
 * choice instead). A marker that ends up in the SQL text itself, or a parameter the builder
 * consumed other than as a bound value, stops the first use with an error.
 */
import type { CompiledQuery, Kysely, QueryResult } from 'kysely';
import { execute } from './store.js';

const MARK = '\u0000concord-param:';

/** Any store's Kysely: a prepared query runs on whichever connection or transaction it is given. */
// biome-ignore lint/suspicious/noExplicitAny: the schema type is the caller's, checked where the query is built
type AnyDb = Kysely<any>;

type Slot = { param: string } | { value: unknown };
interface Compiled {
  sql: string;
  slots: Slot[];
}

export interface PreparedQuery<P extends Record<string, unknown>, O> {
  /** Runs it; `rows` for a select, `numAffectedRows` for a write. */
  run(db: AnyDb, params: P): Promise<QueryResult<O>>;
  /** The first row of a select, or undefined. */
  first(db: AnyDb, params: P): Promise<O | undefined>;
  /** Every row of a select. */
  all(db: AnyDb, params: P): Promise<O[]>;
  /** Rows a write changed. */
  affected(db: AnyDb, params: P): Promise<number>;
}

/**
 * `params` names the parameters; `build` receives a placeholder for each and returns the query
 * (anything with `compile()`).
 */
export function prepared<P extends Record<string, unknown>, O = unknown>(
  params: ReadonlyArray<keyof P & string>,
  build: (db: AnyDb, p: P) => { compile(): CompiledQuery<O> },
): PreparedQuery<P, O> {
  // One compiled text per dialect: the adapter object is the dialect's, shared by a Kysely
  // instance's transactions and connections.
  const byAdapter = new WeakMap<object, Compiled>();

  const compile = (db: AnyDb): Compiled => {
    const adapter = db.getExecutor().adapter as object;
    let c = byAdapter.get(adapter);
    if (c) return c;
    const marks = Object.fromEntries(params.map((name) => [name, `${MARK}${name}`])) as unknown as P;
    const q = build(db, marks).compile();
    if (q.sql.includes(MARK)) throw new Error(`prepared query: a parameter was written into the SQL text itself: ${q.sql}`);
    const slots: Slot[] = q.parameters.map((v) => (typeof v === 'string' && v.startsWith(MARK) ? { param: v.slice(MARK.length) } : { value: v }));
    for (const v of q.parameters) {
      if (typeof v === 'string' && v.includes(MARK) && !v.startsWith(MARK)) throw new Error(`prepared query: a parameter was transformed before binding: ${q.sql}`);
    }
    c = { sql: q.sql, slots };
    byAdapter.set(adapter, c);
    return c;
  };

  const run = (db: AnyDb, p: P): Promise<QueryResult<O>> => {
    const c = compile(db);
    const values = c.slots.map((s) => ('param' in s ? p[s.param] : s.value));
    return execute<O>(db, c.sql, values);
  };

  return {
    run,
    first: async (db, p) => (await run(db, p)).rows[0],
    all: async (db, p) => (await run(db, p)).rows,
    affected: async (db, p) => Number((await run(db, p)).numAffectedRows ?? 0),
  };
}

/** Counts of list items that get a prepared query each; a longer list is built every time. */
export const MAX_PREPARED_LIST_ITEMS = 64;

export interface PreparedList<I extends Record<string, unknown>, O> {
  run(db: AnyDb, items: readonly I[]): Promise<QueryResult<O>>;
  all(db: AnyDb, items: readonly I[]): Promise<O[]>;
}

/**
 * A query whose shape depends only on how many items a list holds — an `in` list, a multi-row
 * insert: one prepared query per count (see `prepared`), made on its first use. `fields` names
 * each item's values; `build` gets a list of that many items whose fields are placeholders.
 * Lists longer than MAX_PREPARED_LIST_ITEMS are built and compiled on every run, which bounds
 * what is kept. An empty list is refused (`in ()` is not SQL).
 */
export function preparedList<I extends Record<string, unknown>, O = unknown>(
  fields: ReadonlyArray<keyof I & string>,
  build: (db: AnyDb, items: I[]) => { compile(): CompiledQuery<O> },
): PreparedList<I, O> {
  const byCount = new Map<number, PreparedQuery<Record<string, unknown>, O>>();
  const name = (i: number, f: string) => `${i}.${f}`;

  const queryFor = (n: number): PreparedQuery<Record<string, unknown>, O> => {
    let q = byCount.get(n);
    if (q) return q;
    const names = Array.from({ length: n }, (_, i) => fields.map((f) => name(i, f))).flat();
    q = prepared<Record<string, unknown>, O>(names, (db, p) => build(db, Array.from({ length: n }, (_, i) => Object.fromEntries(fields.map((f) => [f, p[name(i, f)]])) as I)));
    if (n <= MAX_PREPARED_LIST_ITEMS) byCount.set(n, q);
    return q;
  };

  const run = (db: AnyDb, items: readonly I[]): Promise<QueryResult<O>> => {
    if (items.length === 0) throw new RangeError('preparedList: the list is empty');
    const values: Record<string, unknown> = {};
    for (let i = 0; i < items.length; i++) for (const f of fields) values[name(i, f)] = (items[i] as I)[f];
    return queryFor(items.length).run(db, values);
  };

  return { run, all: async (db, items) => (await run(db, items)).rows };
}
