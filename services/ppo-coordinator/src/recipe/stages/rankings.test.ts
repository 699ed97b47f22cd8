// The labeling path's fold and unfold: the service ranks distinct responses, the reward model
// gets all K samples with the ranks a labeler ranking all K gives (equal samples tie).
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildInstructionDatasets, createLabelers } from "@rlhf/data";
import { EMPTY_RESPONSE_TEXT } from "@rlhf/labeling-client";
import { comparisonOf, foldResponses, unfoldRanking } from "./rankings";

test("unfoldRanking: ranks of the distinct responses become ranks of all K, worked out by hand", () => {
  // Samples a, b, a, c; distinct a (0), b (1), c (2) ranked b best, then a, then c.
  assert.deepEqual(unfoldRanking([1, 0, 2], [0, 1, 0, 2]), [1, 0, 1, 3]);
  // Ties among distinct responses stay ties: a and b tied best, c last.
  assert.deepEqual(unfoldRanking([0, 0, 2], [0, 1, 0, 2]), [0, 0, 0, 3]);
  assert.deepEqual(unfoldRanking([1, 0], [0, 1]), [1, 0]);
});

test("foldResponses: repeats (after trimming and collapsing whitespace) fold, a blank response shows as a placeholder", () => {
  assert.deepEqual(foldResponses(["a b", " a  b ", "", "c", "  "]), { responses: ["a b", EMPTY_RESPONSE_TEXT, "c"], indexOf: [0, 0, 1, 2, 1] });
});

test("fold, rank the distinct responses, unfold = the in-process labeler's ranks of all K samples", () => {
  const { rm } = buildInstructionDatasets({ seed: 3, sizes: { sft: 0, rm: 20, ppo: 0, eval: 0 } });
  const panel = createLabelers(rm, { count: 3, seed: 3, noiseStd: 0.3 });
  let folded = 0;
  rm.forEach((task, i) => {
    const gold = task.completion.trim();
    // K = 5 with repeats, a whitespace variant and a blank one.
    const responses = [gold, gold.split(" ").slice(0, 2).join(" "), ` ${gold} `, "", `${gold} extra`];
    const { comparison, indexOf } = comparisonOf({ group: { task, responses } }, i);
    assert.ok(comparison);
    assert.equal(comparison.key, `${task.id}#${i}`);
    assert.equal(comparison.prompt, task.prompt);
    folded += responses.length - comparison.responses.length;
    const labeler = panel[i % panel.length];
    // What a simulated labeler ranks through the service: the placeholder is the empty response.
    const distinct = comparison.responses.map((r) => (r === EMPTY_RESPONSE_TEXT ? "" : r));
    assert.deepEqual(unfoldRanking(labeler.rank(task, distinct), indexOf), labeler.rank(task, responses), `task ${i}`);
  });
  assert.ok(folded >= rm.length, "every group folded at least its whitespace variant");
});

test("comparisonOf: K equal samples give no comparison (every labeler ties them)", () => {
  const { rm } = buildInstructionDatasets({ seed: 0, sizes: { sft: 0, rm: 1, ppo: 0, eval: 0 } });
  const r = comparisonOf({ group: { task: rm[0], responses: ["x", "x ", " x"] } }, 0);
  assert.equal(r.comparison, undefined);
  assert.deepEqual(r.indexOf, [0, 0, 0]);
});
