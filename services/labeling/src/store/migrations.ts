/**
 * Versioned schema migrations. Each runs once, in its own transaction with the row that records
 * it, in version order; a database newer than this code is refused (FAILED_PRECONDITION at
 * start) rather than written with an older idea of its tables. Never edit a released migration:
 * add the next one.
 */
import { FailedPreconditionError } from "@rlhf/errors";
import type { Db } from "./db";

/** One migration: SQL for both databases, or one per database. */
export interface Migration {
  version: number;
  name: string;
  sql: string | { sqlite: string; postgres: string };
}

/** `{{SERIAL}}`: an auto-incremented integer primary key in each dialect. */
const serial = (kind: Db["kind"]) => (kind === "sqlite" ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY");

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "labelers, batches, comparisons, assignments, rankings, sessions",
    sql: `
CREATE TABLE labelers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  token_hash TEXT NOT NULL UNIQUE,
  simulated INTEGER NOT NULL DEFAULT 0,
  created_at_ms BIGINT NOT NULL
);
CREATE TABLE batches (
  id TEXT PRIMARY KEY,
  seq BIGINT NOT NULL UNIQUE,
  digest TEXT NOT NULL,
  source TEXT NOT NULL,
  overlap_fraction DOUBLE PRECISION NOT NULL,
  comparisons INTEGER NOT NULL,
  created_at_ms BIGINT NOT NULL
);
CREATE TABLE comparisons (
  batch_id TEXT NOT NULL REFERENCES batches(id),
  idx INTEGER NOT NULL,
  item_key TEXT NOT NULL,
  prompt TEXT NOT NULL,
  responses TEXT NOT NULL,
  needed INTEGER NOT NULL,
  PRIMARY KEY (batch_id, idx),
  UNIQUE (batch_id, item_key)
);
CREATE TABLE assignments (
  id TEXT PRIMARY KEY,
  batch_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  labeler_id TEXT NOT NULL REFERENCES labelers(id),
  state TEXT NOT NULL,
  shown_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL,
  UNIQUE (batch_id, idx, labeler_id),
  FOREIGN KEY (batch_id, idx) REFERENCES comparisons(batch_id, idx)
);
CREATE INDEX assignments_labeler ON assignments (labeler_id, state);
CREATE INDEX assignments_item ON assignments (batch_id, idx, state);
CREATE TABLE rankings (
  seq {{SERIAL}},
  assignment_id TEXT NOT NULL UNIQUE REFERENCES assignments(id),
  batch_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  labeler_id TEXT NOT NULL REFERENCES labelers(id),
  ranking TEXT NOT NULL,
  scores TEXT NOT NULL,
  flags TEXT NOT NULL,
  submitted_at_ms BIGINT NOT NULL,
  duration_ms BIGINT NOT NULL
);
CREATE INDEX rankings_item ON rankings (batch_id, idx);
CREATE INDEX rankings_labeler ON rankings (labeler_id, seq);
CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY,
  labeler_id TEXT REFERENCES labelers(id),
  admin INTEGER NOT NULL,
  csrf TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL,
  expires_at_ms BIGINT NOT NULL
)`,
  },
  {
    version: 2,
    name: "labelers can be disabled",
    sql: "ALTER TABLE labelers ADD COLUMN disabled_at_ms BIGINT",
  },
];

/** The newest schema version this code knows. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

function sqlFor(m: Migration, kind: Db["kind"]): string {
  const raw = typeof m.sql === "string" ? m.sql : m.sql[kind];
  return raw.replace(/\{\{SERIAL\}\}/g, serial(kind));
}

/** Applies every migration not applied yet (of `migrations`, default all); returns the schema version now. */
export async function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS): Promise<number> {
  await db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)");
  for (const m of migrations) {
    await db.tx(async (q) => {
      // Two services starting at once on one PostgreSQL database: one migrates, the other waits and sees it done.
      if (db.kind === "postgres") await q.run("SELECT pg_advisory_xact_lock(72150001)");
      if (await q.get("SELECT version FROM schema_migrations WHERE version = ?", [m.version])) return;
      for (const stmt of sqlFor(m, db.kind).split(/;\s*\n/).map((s) => s.trim()).filter(Boolean)) await q.run(stmt);
      await q.run("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)", [m.version, m.name, Date.now()]);
    });
  }
  const row = await db.get<{ v: number | null }>("SELECT max(version) AS v FROM schema_migrations");
  const version = Number(row?.v ?? 0);
  if (version > SCHEMA_VERSION) throw new FailedPreconditionError(`the database is at schema version ${version}, newer than this service's ${SCHEMA_VERSION}: run a newer labeling service`);
  return version;
}
