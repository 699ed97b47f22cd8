// The labeler panel a run judges with: the rankings stage records its σ in the run's state, and a
// resumed run (which skips that stage) rebuilds the same panel from it for the evaluation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mergeRunConfigs, presetRunConfig, resolveRunConfig } from "@rlhf/run-config";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError } from "@rlhf/errors";
import type { RecipeContext } from "./context";
import { loadRecipeData, recipeData, restoreLabelers } from "./data";
import { emptyState, type RecipeData } from "./records";

const ctx = { cfg: resolveRunConfig(presetRunConfig("tiny")) } as RecipeContext;

test("restoreLabelers rebuilds the recorded panel: same labelers and seed, the recorded σ", () => {
  const data = recipeData(ctx);
  const simulated = data.labelers;
  assert.equal(simulated.length, ctx.cfg.data.builtin.labelers);
  restoreLabelers(ctx, data, { ...emptyState(), labelers: { noiseStd: 0.123, calibratedOn: "ranked_samples", agreement: 0.7, pairs: 10 } });
  assert.deepEqual(
    data.labelers.map((l) => [l.id, l.seed, l.noiseStd]),
    simulated.map((l) => [l.id, l.seed, 0.123]),
  );
  assert.notEqual(simulated[0].noiseStd, 0.123);
  const task = data.rm[0];
  assert.notEqual(data.labelers[1].perceivedScore(task, "a b c"), simulated[1].perceivedScore(task, "a b c"), "the noise scales with the restored σ");
});

test("restoreLabelers leaves the panel alone when the run has not ranked yet, and without labelers (users' data)", () => {
  const data = recipeData(ctx);
  const before = data.labelers;
  restoreLabelers(ctx, data, emptyState());
  assert.equal(data.labelers, before);
  const none = { ...data, labelers: [] };
  restoreLabelers(ctx, none, { ...emptyState(), labelers: { noiseStd: 0.1, calibratedOn: "ranked_samples", agreement: 0.7, pairs: 1 } });
  assert.deepEqual(none.labelers, []);
});

test("the run's data built in a worker thread equals the data built in place; a bad data file's error comes back as the same InvalidArgumentError", async () => {
  const inPlace = recipeData(ctx);
  const fromWorker = await loadRecipeData(ctx);
  const plain = (d: RecipeData) => ({ ...d, tok: d.tok.name, labelers: d.labelers.map((l) => [l.id, l.seed, l.noiseStd]) });
  assert.deepEqual(plain(fromWorker), plain(inPlace));
  assert.ok(inPlace.labelers.length > 0 && inPlace.sft.length > 0);

  const dir = mkdtempSync(join(tmpdir(), "data-worker-"));
  writeFileSync(join(dir, "sft.jsonl"), '{"prompt": "a", "completion": "b"}\n{"prompt": 3}\n');
  writeFileSync(join(dir, "prompts.jsonl"), '{"prompt": "a"}\n');
  const files = { sft: join(dir, "sft.jsonl"), prompts: join(dir, "prompts.jsonl"), eval_prompts: join(dir, "prompts.jsonl"), rankings: join(dir, "sft.jsonl") };
  const cfg = resolveRunConfig(mergeRunConfigs(presetRunConfig("tiny"), { data: { source: "files", files }, rankings: { source: "file" } }));
  const err = await loadRecipeData({ cfg }).then(
    () => assert.fail("a bad line must fail"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof InvalidArgumentError, String(err));
  assert.equal(err.field, "data.files.sft");
  assert.match(err.message, new RegExp(`^data\\.files\\.sft: ${join(dir, "sft.jsonl")}:2: prompt: `));
});
