import { test } from "node:test";
import assert from "node:assert/strict";
import { combineScores, evaluateResponses, goldRanking, goldScore, helpfulness, parseListResponse, rankScores, scoreResponse } from "./scoring";
import { type GoldAnswer, type InstructionTask, type TaskFamily, buildInstructionDatasets, renderAnswer, renderPrompt } from "./tasks";

const SOURCE = "The big dog chased the small cat.";
function task(family: TaskFamily, gold: GoldAnswer): InstructionTask {
  return { id: `${family}:x.0`, family, sentenceId: "x.0", source: SOURCE, prompt: renderPrompt(family, SOURCE), completion: " " + renderAnswer(gold), gold };
}
const nouns = task("nouns", { kind: "list", items: ["dog", "cat"] });
const count = task("count", { kind: "count", value: 7 });
const reverse = task("reverse", { kind: "sequence", words: ["cat", "small", "the", "chased", "dog", "big", "The"] });
const longest = task("longest", { kind: "word", word: "chased" });
const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

test("list helpfulness is the F1 of normalised items", () => {
  assert.deepEqual(parseListResponse(" Dog , CAT. , none,"), ["dog", "cat"]);
  close(helpfulness(nouns, " dog, cat"), 1);
  close(helpfulness(nouns, "Dog , CAT."), 1);
  close(helpfulness(nouns, " dog"), 2 / 3);
  close(helpfulness(nouns, " dog, cat, bird"), 0.8);
  close(helpfulness(nouns, " none"), 0);
  close(helpfulness(nouns, ""), 0);
  close(helpfulness(task("names", { kind: "list", items: ["Mr. Uno's"] }), " mr unos"), 1);
});

test("count, sequence and word helpfulness are graded", () => {
  close(helpfulness(count, " 7"), 1);
  close(helpfulness(count, " 6"), 1 - 1 / 7);
  close(helpfulness(count, " 14"), 0);
  close(helpfulness(count, " 30"), 0);
  close(helpfulness(count, " seven"), 0);
  close(helpfulness(reverse, " cat small the chased dog big The"), 1);
  close(helpfulness(reverse, " cat small the dog chased big The"), 12 / 14);
  close(helpfulness(reverse, " The big dog chased the small cat"), 6 / 14); // LCS "the chased the"
  close(helpfulness(longest, " chased"), 1);
  close(helpfulness(longest, " small"), 0.5 * (5 / 6));
  close(helpfulness(longest, " chased banana"), 0.5);
  close(helpfulness(longest, " banana"), 0);
});

test("hallucination and blocklist rates count words not in the source and blocklisted words", () => {
  assert.deepEqual(scoreResponse(nouns, " dog, cat"), { helpfulness: 1, hallucinationRate: 0, blocklistRate: 0, words: 2, fabrication: 0, closeness: 1 });
  const s = scoreResponse(nouns, " dog, cat, stupid");
  close(s.helpfulness, 0.8);
  close(s.hallucinationRate, 1 / 3);
  close(s.blocklistRate, 1 / 3);
  // "stupid" shares 2 characters in order with the closest source word ("chased": s, d): 1 - 2*2/12 of a made-up word.
  close(s.fabrication, (1 - 4 / 12) / 3);
  close(s.closeness, (2 * 7) / (14 + 7));
  close(combineScores(s), 0.8 + 0.25 * s.closeness - s.fabrication - 2 / 3);
  close(combineScores(s, { harmlessness: 0, honesty: 0, closeness: 0 }), 0.8);
  close(scoreResponse(nouns, " DOG, Cat!").hallucinationRate, 0);
  close(scoreResponse(nouns, " none").hallucinationRate, 0);
  close(scoreResponse(count, " 7").hallucinationRate, 0);
  close(scoreResponse(count, " 7 cats").hallucinationRate, 0.5);
  close(scoreResponse(nouns, " dog, cat, banana", { blocklist: ["banana"] }).blocklistRate, 1 / 3);
  // No words: no better than made-up ones on the honesty axis.
  assert.deepEqual(scoreResponse(nouns, "   "), { helpfulness: 0, hallucinationRate: 1, blocklistRate: 0, words: 0, fabrication: 1, closeness: 0 });
  assert.deepEqual(scoreResponse(nouns, " ,. "), { helpfulness: 0, hallucinationRate: 1, blocklistRate: 0, words: 0, fabrication: 1, closeness: 0 });
  // A garbled copy of a source word is less made up than an invented one.
  assert.ok(scoreResponse(nouns, " dgo").fabrication < scoreResponse(nouns, " xyzzy").fabrication);
});

test("rankings: 0 is best, ties share the lowest rank of their group", () => {
  assert.deepEqual(rankScores([0.5, 1, 0.5, 0]), [1, 0, 1, 3]);
  assert.deepEqual(rankScores([3, 2, 1]), [0, 1, 2]);
  assert.deepEqual(rankScores([0, 0.6e-9, 1.2e-9, 1.8e-9], 1e-9), [0, 0, 0, 0], "chained ties");
  assert.deepEqual(rankScores([0, 0.6e-9, 5]), [2, 1, 0]);
  assert.throws(() => rankScores([1, NaN]), /scores\[1\]/);
  // Both orders of the two nouns are fully helpful; the gold order is closer to the gold text.
  assert.deepEqual(goldRanking(nouns, [" dog", " cat, dog", " dog, cat", " dog,   cat"]), [3, 2, 0, 0]);
  assert.ok(goldScore(nouns, " dog, cat") > goldScore(nouns, " dog, cat, bird"));
  assert.ok(goldScore(nouns, " dog, cat, bird") > goldScore(nouns, " dog, cat, stupid"));
});

test("evaluateResponses averages the axes", () => {
  const r = evaluateResponses([nouns, count], [" dog, cat", " 7 stupid"]);
  assert.equal(r.n, 2);
  // The count is right but followed by a word: half helpful (a number alone is the answer).
  close(r.helpfulness, (1 + 0.5) / 2);
  close(r.hallucinationRate, 0.25);
  close(r.blocklistRate, 0.25);
  close(r.exactMatch, 0.5);
  assert.throws(() => evaluateResponses([nouns], []), /responses/);
});

test("an empty answer scores like a fully made-up one, below a partly right one", () => {
  const nouns = buildInstructionDatasets({ seed: 0, sizes: { sft: 40, rm: 1, ppo: 1, eval: 1 }, families: ["nouns"] }).sft[0];
  const gold = nouns.gold.kind === "list" ? nouns.gold.items : [];
  const empty = goldScore(nouns, "  ");
  assert.equal(empty, -1);
  assert.equal(goldScore(nouns, " zzzqqq"), -1, "one hallucinated word: the same");
  assert.ok(goldScore(nouns, ` ${gold[0]}, zzzqqq`) > empty, "half right beats nothing");
});
