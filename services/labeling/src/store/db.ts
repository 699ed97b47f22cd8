/**
 * The two databases behind one small async interface: embedded SQLite (better-sqlite3, a file,
 * the default) and PostgreSQL (pg, when DATABASE_URL is set). SQL is written once, with `?`
 * placeholders (turned into `$1, $2, ...` for PostgreSQL) and types both understand (TEXT,
 * INTEGER, BIGINT, DOUBLE PRECISION); the few dialect differences live in the migrations.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";

/** A row as the driver returns it. */
export type Row = Record<string, unknown>;

/** Queries, inside or outside a transaction. */
export interface Queryable {
  all<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  get<T = Row>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  /** Runs a statement; resolves to the number of rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

/** A database connection (pool). */
export interface Db extends Queryable {
  readonly kind: "sqlite" | "postgres";
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. On
   * SQLite transactions (and every other statement) run one at a time.
   */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** Several statements separated by `;` (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

/** Where the data lives. */
export type DbTarget = { kind: "sqlite"; file: string } | { kind: "postgres"; url: string; schema?: string };

/** Opens (and creates, for SQLite) the database. */
export async function openDb(target: DbTarget): Promise<Db> {
  return target.kind === "sqlite" ? openSqlite(target.file) : openPostgres(target.url, target.schema);
}

/** Serialises async work: SQLite has one connection, and a transaction must not interleave with other statements. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

function openSqlite(file: string): Db {
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  // WAL with synchronous=FULL: a committed transaction survives a kill -9 (and a power cut).
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  const cache = new Map<string, Database.Statement>();
  const stmt = (sql: string) => {
    let s = cache.get(sql);
    if (!s) {
      s = db.prepare(sql);
      cache.set(sql, s);
    }
    return s;
  };
  // SQLite has no boolean; undefined is not a value.
  const bind = (params: readonly unknown[]) => params.map((p) => (typeof p === "boolean" ? (p ? 1 : 0) : p === undefined ? null : p));
  const q: Queryable = {
    all: async <T>(sql: string, params: readonly unknown[] = []) => {
      const s = stmt(sql);
      return (s.reader ? s.all(...bind(params)) : (s.run(...bind(params)), [])) as T[];
    },
    get: async <T>(sql: string, params: readonly unknown[] = []) => stmt(sql).get(...bind(params)) as T | undefined,
    run: async (sql: string, params: readonly unknown[] = []) => stmt(sql).run(...bind(params)).changes,
  };
  const lock = new Mutex();
  return {
    kind: "sqlite",
    all: (sql, params) => lock.run(() => q.all(sql, params)),
    get: (sql, params) => lock.run(() => q.get(sql, params)),
    run: (sql, params) => lock.run(() => q.run(sql, params)),
    tx: (fn) =>
      lock.run(async () => {
        db.exec("BEGIN IMMEDIATE");
        try {
          const out = await fn(q);
          db.exec("COMMIT");
          return out;
        } catch (e) {
          if (db.inTransaction) db.exec("ROLLBACK");
          throw e;
        }
      }),
    exec: (sql) => lock.run(async () => void db.exec(sql)),
    close: () => lock.run(async () => void db.close()),
  };
}

/** `?` placeholders to PostgreSQL's `$n` (our SQL has no `?` inside string literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

async function openPostgres(url: string, schema?: string): Promise<Db> {
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`schema "${schema}" must match [a-z_][a-z0-9_]*`);
  // BIGINT (int8) and NUMERIC (sum of integers) as JS numbers: our values are counts and milliseconds.
  const types = {
    getTypeParser: ((oid: number, format?: string) => (oid === 20 || oid === 1700 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as "text"))) as typeof pg.types.getTypeParser,
  };
  const pool = new pg.Pool({ connectionString: url, max: 8, types });
  if (schema) pool.on("connect", (c) => void c.query(`SET search_path TO ${schema}`));
  // A bad URL or an unreachable server fails here, at start, not on the first request.
  const probe = await pool.connect();
  try {
    if (schema) {
      await probe.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await probe.query(`SET search_path TO ${schema}`);
    }
  } finally {
    probe.release();
  }
  const on = (c: pg.Pool | pg.PoolClient): Queryable => ({
    all: async <T>(sql: string, params: readonly unknown[] = []) => (await c.query(numbered(sql), params as unknown[])).rows as T[],
    get: async <T>(sql: string, params: readonly unknown[] = []) => (await c.query(numbered(sql), params as unknown[])).rows[0] as T | undefined,
    run: async (sql: string, params: readonly unknown[] = []) => (await c.query(numbered(sql), params as unknown[])).rowCount ?? 0,
  });
  return {
    kind: "postgres",
    ...on(pool),
    tx: async (fn) => {
      const c = await pool.connect();
      try {
        await c.query("BEGIN");
        const out = await fn(on(c));
        await c.query("COMMIT");
        return out;
      } catch (e) {
        await c.query("ROLLBACK").catch(() => undefined);
        throw e;
      } finally {
        c.release();
      }
    },
    exec: async (sql) => void (await pool.query(sql)),
    close: () => pool.end(),
  };
}
