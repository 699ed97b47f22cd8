/**
 * The two real databases the tests run against: a SQLite file in a fresh temporary folder, and a
 * fresh schema of the PostgreSQL server on 127.0.0.1:5432 (LABELING_TEST_DATABASE_URL to use
 * another), dropped afterwards. An unreachable PostgreSQL fails the tests that need it (set
 * LABELING_TEST_SKIP_POSTGRES=1 to skip them on a machine without one).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { DbTarget } from "../store/db";

export const TEST_DATABASE_URL = process.env.LABELING_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const SKIP_POSTGRES = process.env.LABELING_TEST_SKIP_POSTGRES === "1";

/** A fresh database of `kind` and its clean-up. */
export interface TestDatabase {
  target: DbTarget;
  /** The environment that points the service at it. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

export async function freshDatabase(kind: "sqlite" | "postgres"): Promise<TestDatabase> {
  if (kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "labeling-test-"));
    const file = join(dir, "labeling.db");
    return { target: { kind, file }, env: { LABELING_DATA_DIR: dir, LABELING_DB: file }, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const schema = `labeling_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), "labeling-test-"));
  return {
    target: { kind, url: TEST_DATABASE_URL, schema },
    env: { LABELING_DATA_DIR: dir, DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema },
    cleanup: async () => {
      rmSync(dir, { recursive: true, force: true });
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

/** The database kinds to test: both, unless PostgreSQL is explicitly skipped. */
export const DATABASE_KINDS: readonly ("sqlite" | "postgres")[] = SKIP_POSTGRES ? ["sqlite"] : ["sqlite", "postgres"];

/** A small batch: `n` comparisons of K responses. */
export function sampleBatch(batchId: string, n: number, k = 3, overlapFraction = 0) {
  return {
    batchId,
    overlapFraction,
    source: "test",
    comparisons: Array.from({ length: n }, (_, i) => ({
      key: `item-${i}`,
      prompt: `Prompt ${i}: list the nouns.`,
      responses: Array.from({ length: k }, (_, j) => `response ${i}.${j}`),
    })),
  };
}
