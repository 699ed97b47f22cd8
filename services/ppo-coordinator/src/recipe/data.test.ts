// The labeler panel a run judges with: the rankings stage records its σ in the run's state, and a
// resumed run (which skips that stage) rebuilds the same panel from it for the evaluation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { presetRunConfig, resolveRunConfig } from "@rlhf/run-config";
import type { RecipeContext } from "./context";
import { recipeData, restoreLabelers } from "./data";
import { emptyState } from "./records";

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
