import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@rlhf/grpc-kit";
import { checkDataFile } from "@rlhf/data";
import { loadConfig, startLabeling } from "@rlhf/labeling";
import { WebSession } from "@rlhf/labeling-client";
import { UsageError, parseArgs } from "../args";
import { label, readSamples } from "./label";

test("rlhf label import / simulate / export against a running labeling service (SQLite)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "rlhf-cli-label-"));
  const cfg = loadConfig({ GRPC_PORT: "0", HTTP_PORT: "0", METRICS_PORT: "0", LABELING_DATA_DIR: dir, LABELING_SEED_SAMPLE: "1" });
  const app = await startLabeling(cfg, createLogger({ service: "labeling", level: "warn" }));
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) if (k.startsWith("RLHF_") || k.startsWith("GRPC_TLS_")) delete process.env[k];
  try {
    const lines: string[] = [];
    const run = (...argv: string[]) => label(parseArgs(["label", ...argv], new Set(["first", "meta"])), (l) => lines.push(l));
    const addr = ["--addr", app.server.address];
    const samples = join(dir, "samples.jsonl");
    writeFileSync(samples, `{"prompt":"Say hi","responses":["hi","hello","<b>hey</b>"]}\n\n{"prompt":"p2","chosen":"a","rejected":"b"}\n`);
    await run("import", samples, ...addr);
    assert.match(lines.pop() ?? "", /^submitted batch samples-[0-9a-f]{12}: 2 comparisons/);
    await run("import", samples, ...addr);
    assert.match(lines.pop() ?? "", /^already there: batch samples-/);
    // A bad record names the file's line (line 3: the second record).
    writeFileSync(samples, `{"prompt":"ok","responses":["a","b"]}\n\n{"prompt":"p","responses":["same","same "]}\n`);
    await assert.rejects(run("import", samples, ...addr), new RegExp(`${samples}:3: responses\\[1\\]: duplicate of responses\\[0\\]`));

    // The seeded sample batch (built-in tasks) is ranked by the simulated labelers through the web API;
    // the 2 imported comparisons are no built-in tasks: each of the 3 labelers skips them (6 skips).
    await run("simulate", "--url", app.http.url, "--admin-token-file", cfg.adminTokenFile, "--labelers", "3");
    assert.match(lines.pop() ?? "", /^simulated labelers ranked 15 comparisons \(skipped 6 that are not built-in tasks\)$/);
    const admin = await WebSession.signIn(app.http.url, readFileSync(cfg.adminTokenFile, "utf8").trim());
    const stats = await admin.stats<{ agreement: { simulated: { pairs: number } } }>();
    assert.ok(stats.agreement.simulated.pairs > 0, "agreement of the simulated labelers on the overlapping comparisons");

    const out = join(dir, "rankings.jsonl");
    await run("export", "--out", out, ...addr);
    assert.equal(lines.pop(), `wrote 15 rankings to ${out}`);
    const report = checkDataFile(out);
    assert.deepEqual([report.kind, report.records, report.errors.length, report.warnings.length], ["rankings", 15, 0, 0]);
    await run("export", "--out", out, "--first", "--batch", "sample", ...addr);
    assert.equal(lines.pop(), `wrote 12 rankings to ${out} (batch sample)`);
    assert.equal(checkDataFile(out).records, 12);

    await assert.rejects(run("export", ...addr), UsageError);
    await assert.rejects(run("bogus"), /unknown label command/);
  } finally {
    process.env = saved;
    await app.stop(200);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("readSamples: a bad line names the file, the line and the field", () => {
  const dir = mkdtempSync(join(tmpdir(), "rlhf-cli-label-"));
  try {
    const f = join(dir, "s.jsonl");
    writeFileSync(f, `{"prompt":"a","responses":["x","y"],"key":"k1"}\n{"prompt":"b","responses":"nope"}\n`);
    assert.throws(() => readSamples(f), new RegExp(`${f}:2: responses: expected an array of strings`));
    writeFileSync(f, `{"prompt":"a","responses":["x","y"],"key":"k1"}\n{"prompt":"b","responses":["x","y"]}\n`);
    assert.deepEqual(readSamples(f).map((c) => [c.key, c.line]), [["k1", 1], ["line-2", 2]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
