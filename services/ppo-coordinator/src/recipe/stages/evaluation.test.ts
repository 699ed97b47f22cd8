// The evaluation's per-family figures: each task family's gold measures, and against SFT's
// answers its win rate and how often the answer is SFT's own (a tie for every labeler).
import { test } from "node:test";
import assert from "node:assert/strict";
import { presetRunConfig, resolveRunConfig } from "@rlhf/run-config";
import { renderAnswer, winRate } from "@rlhf/data";
import type { RecipeContext } from "../context";
import { recipeData } from "../data";
import { familyEvals } from "./evaluation";

const ctx = { cfg: resolveRunConfig(presetRunConfig("tiny")) } as RecipeContext;

test("familyEvals: per family, gold answers beat made-up ones, identical answers tie, SFT has no win rate", () => {
  const data = recipeData(ctx);
  const tasks = data.eval.filter((t) => t.gold).map((t) => t.gold!);
  const families = [...new Set(tasks.map((t) => t.family))];
  assert.ok(families.length >= 2, `the tiny preset's evaluation has several families, got ${families.join(",")}`);
  const gold = tasks.map((t) => renderAnswer(t.gold));
  const madeUp = tasks.map(() => "zzqx");
  // A model that answers gold on the first family and SFT's made-up answer elsewhere.
  const first = families[0];
  const mixed = tasks.map((t, i) => (t.family === first ? gold[i] : madeUp[i]));
  const out = familyEvals(tasks, mixed, madeUp, data.labelers);
  assert.deepEqual(Object.keys(out).sort(), [...families].sort());
  const n = (f: string) => tasks.filter((t) => t.family === f).length;
  const { winRateVsSft, ...rest } = out[first];
  assert.deepEqual(rest, { prompts: n(first), sameAsSft: 0, helpfulness: 1, exactMatch: 1, hallucinationRate: 0 });
  // Noisy labelers: gold beats a made-up word almost always.
  assert.ok((winRateVsSft as number) >= 0.8, `win rate ${winRateVsSft}`);
  // The same labeler judges prompt i as in the overall win rate: the families add up to it.
  const overall = winRate(tasks, mixed, madeUp, data.labelers).winRate;
  assert.ok(Math.abs(families.reduce((a, f) => a + (out[f].winRateVsSft as number) * out[f].prompts, 0) / tasks.length - overall) < 1e-12);
  for (const f of families.slice(1)) {
    assert.equal(out[f].prompts, n(f));
    assert.equal(out[f].winRateVsSft, 0.5, "identical answers tie");
    assert.equal(out[f].sameAsSft, 1);
    assert.equal(out[f].exactMatch, 0);
    assert.equal(out[f].hallucinationRate, 1);
  }
  const sft = familyEvals(tasks, madeUp, undefined, data.labelers);
  for (const f of families) assert.deepEqual([sft[f].winRateVsSft, sft[f].sameAsSft], [null, null]);
});
