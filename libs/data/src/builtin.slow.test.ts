import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBuiltinData, exportBuiltinDatasets, rankingToPairs } from "./builtin";
import { checkDataFile, readJsonlFile } from "./jsonl";

const tmp = mkdtempSync(join(tmpdir(), "rlhf-data-export-"));
const FILES = ["README.md", "eval-prompts.jsonl", "manifest.json", "pairs.jsonl", "ppo-prompts.jsonl", "pretrain-train.txt", "pretrain-valid.txt", "rankings.jsonl", "sft.jsonl"];

test("same seed, same datasets, byte for byte, in another process too; another seed differs", (t) => {
  const a = join(tmp, "a");
  const started = Date.now();
  const manifest = exportBuiltinDatasets(a);
  t.diagnostic(`export with default sizes: ${Date.now() - started} ms`);
  assert.deepEqual(readdirSync(a).sort(), FILES);
  const script = join(tmp, "export.ts");
  writeFileSync(script, `import { exportBuiltinDatasets } from ${JSON.stringify(join(__dirname, "builtin"))};\nexportBuiltinDatasets(process.argv[2]);\n`);
  const b = join(tmp, "b");
  const r = spawnSync(process.execPath, ["--import", "tsx", script, b], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  for (const f of FILES) assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} differs between processes`);

  const c = join(tmp, "c");
  exportBuiltinDatasets(c, { seed: 1 });
  for (const f of ["sft.jsonl", "rankings.jsonl", "eval-prompts.jsonl"]) assert.ok(!readFileSync(join(a, f)).equals(readFileSync(join(c, f))), `${f} should change with the seed`);
  assert.ok(readFileSync(join(a, "pretrain-train.txt")).equals(readFileSync(join(c, "pretrain-train.txt"))), "the corpus split does not depend on the seed");

  // Every exported file is valid in its format, with the counts the manifest states.
  for (const [name, f] of Object.entries(manifest.files)) {
    const report = checkDataFile(join(a, name));
    assert.deepEqual(report.errors, [], name);
    assert.deepEqual(report.warnings, [], name);
    assert.equal(report.kind, f.kind, name);
    assert.equal(report.records, f.records, name);
  }
  assert.deepEqual(JSON.parse(readFileSync(join(a, "manifest.json"), "utf8")), manifest);
  assert.equal(manifest.files["sft.jsonl"].records, 2000);
  assert.equal(manifest.files["rankings.jsonl"].records, 2000);
  assert.equal(manifest.files["pretrain-valid.txt"].records, 25);
  const rankings = readJsonlFile(join(a, "rankings.jsonl"), "rankings").records;
  assert.ok(rankings.every((x) => x.responses.length === 4));
});

test("pairs are the ranking's non-tied comparisons, better first", () => {
  assert.deepEqual(rankingToPairs({ prompt: "p", responses: ["a", "b", "c"], ranking: [2, 0, 0] }), [
    { prompt: "p", chosen: "b", rejected: "a" },
    { prompt: "p", chosen: "c", rejected: "a" },
  ]);
  const d = buildBuiltinData({ sizes: { sft: 10, rm: 30, ppo: 10, eval: 10 }, k: 5, labelers: 2 });
  assert.equal(d.rankings.length, 30);
  assert.equal(d.pairs.length, d.rankings.reduce((n, r) => n + rankingToPairs(r).length, 0));
  assert.equal(d.pairs.length, 30 * 10, "distinct responses never tie under a noisy labeler: C(5,2) pairs each");
  assert.equal(d.labelers.length, 2);
});
