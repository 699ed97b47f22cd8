import { test } from "node:test";
import assert from "node:assert/strict";
import { distinctResponses, firstRankingPerComparison, rankingsToJsonl, type LabeledRanking } from "./jsonl";
import { rankingToGroups } from "./web";

const r = (key: string, labeler: string, ranking: number[]): LabeledRanking => ({
  batchId: "b",
  key,
  prompt: `p ${key}`,
  responses: ranking.map((_, i) => `r${i}`),
  ranking,
  scores: ranking.map(() => null),
  flags: ranking.map(() => ({ failsInstruction: false, madeUpFacts: false, harmful: false })),
  labeler,
  simulated: false,
  submittedAtMs: 0,
  durationMs: 0,
});

test("rankings JSONL: exactly prompt, responses, ranking per line; meta adds the labeler's details", () => {
  assert.equal(rankingsToJsonl([r("a", "ann", [1, 0, 1])]), `{"prompt":"p a","responses":["r0","r1","r2"],"ranking":[1,0,1]}\n`);
  const meta = JSON.parse(rankingsToJsonl([r("a", "ann", [0, 1])], { meta: true }));
  assert.deepEqual(Object.keys(meta), ["prompt", "responses", "ranking", "batch_id", "key", "labeler", "simulated", "scores", "flags"]);
  assert.equal(rankingsToJsonl([]), "");
});

test("first ranking per comparison, in the batch's order; unranked comparisons left out", () => {
  const all = [r("b", "ann", [0, 1]), r("a", "ann", [1, 0]), r("b", "bob", [1, 0])];
  assert.deepEqual(firstRankingPerComparison(["a", "b", "c"], all).map((x) => `${x.key}:${x.labeler}`), ["a:ann", "b:ann"]);
});

test("distinct responses (trimmed, whitespace collapsed) and where each original went", () => {
  assert.deepEqual(distinctResponses([" a b", "c", "a  b ", "c", "d"]), { responses: [" a b", "c", "d"], indexOf: [0, 1, 0, 1, 2] });
});

test("a ranking as groups of indices, best first, ties together", () => {
  assert.deepEqual(rankingToGroups([2, 0, 2, 1]), [[1], [3], [0, 2]]);
  assert.deepEqual(rankingToGroups([0, 1]), [[0], [1]]);
});
