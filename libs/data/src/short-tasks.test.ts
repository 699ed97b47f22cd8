import { test } from "node:test";
import assert from "node:assert/strict";
import { SHORT_FAMILIES, shortGold } from "./short-tasks";
import { loadBrownCorpus } from "./brown";
import { buildInstructionDatasets, renderAnswer } from "./tasks";
import { scoreResponse } from "./scoring";

const w = (text: string, noun = false) => ({ text, noun });

test("short gold answers: count, last, reverse, nouns, longest, repeat, sort", () => {
  const words = [w("the"), w("old", false), w("man", true), w("sat")];
  assert.deepEqual(shortGold("count_words", words), { kind: "count", value: 4 });
  assert.deepEqual(shortGold("last_word", words), { kind: "word", word: "sat" });
  assert.deepEqual(shortGold("reverse_words", words), { kind: "sequence", words: ["sat", "man", "old", "the"] });
  assert.deepEqual(shortGold("pick_nouns", words), { kind: "list", items: ["man"] });
  assert.equal(shortGold("pick_nouns", [w("dog", true), w("cat", true)]), undefined, "every word a noun: nothing to filter");
  assert.equal(shortGold("pick_nouns", [w("the"), w("sat")]), undefined, "no noun");
  assert.equal(shortGold("longest_word", words), undefined, "old, man, sat and the tie at 3 letters");
  assert.deepEqual(shortGold("longest_word", [w("a"), w("tall"), w("man")]), { kind: "word", word: "tall" });
  assert.deepEqual(shortGold("repeat_word", [w("Paris")]), { kind: "sequence", words: ["Paris", "Paris", "Paris"] });
  assert.deepEqual(shortGold("sort_words", [w("reception"), w("in"), w("New")]), { kind: "sequence", words: ["in", "New", "reception"] }, "case-insensitive");
  assert.equal(shortGold("sort_words", [w("The"), w("the")]), undefined, "equal words have no order");
});

test("the built-in splits of the short families: disjoint sentences, inputs taken from the sentence, answers that score 1", () => {
  const ds = buildInstructionDatasets({ seed: 3, families: SHORT_FAMILIES, sizes: { sft: 140, rm: 35, ppo: 35, eval: 35 } });
  const all = [...ds.sft, ...ds.rm, ...ds.ppo, ...ds.eval];
  assert.equal(new Set(all.map((t) => t.sentenceId)).size, all.length, "one task per sentence");
  for (const f of SHORT_FAMILIES) assert.equal(ds.sft.filter((t) => t.family === f).length, 20, f);
  for (const t of all) {
    assert.match(t.prompt, /^[A-Z][a-z ]+: [^\n]+\nAnswer:$/);
    assert.ok(t.source.split(" ").length >= 1 && t.source.split(" ").length <= 8, t.source);
    assert.equal(t.completion, " " + renderAnswer(t.gold));
    const s = scoreResponse(t, t.completion);
    assert.equal(s.helpfulness, 1, t.id);
    assert.equal(s.hallucinationRate, 0, t.id);
    assert.equal(s.closeness, 1, t.id);
    assert.equal(s.fabrication, 0, t.id);
  }
  // The same seed gives the same tasks (windows are drawn from the sentence id).
  const again = buildInstructionDatasets({ seed: 3, families: SHORT_FAMILIES, sizes: { sft: 140, rm: 35, ppo: 35, eval: 35 } });
  assert.deepEqual(again.eval.map((t) => t.prompt), ds.eval.map((t) => t.prompt));
});

test("a short task's words are consecutive words of its sentence", () => {
  const ds = buildInstructionDatasets({ seed: 0, families: ["reverse_words", "count_words", "pick_nouns"], sizes: { sft: 30, rm: 0, ppo: 0, eval: 0 } });
  const sentences = new Map(loadBrownCorpus().documents.flatMap((d) => d.sentences.map((x) => [x.id, x] as const)));
  for (const t of ds.sft) {
    const sentence = sentences.get(t.sentenceId);
    assert.ok(sentence, t.sentenceId);
    const plain = sentence.tokens.map((x) => x.word).filter((x) => /^[A-Za-z]+(?:'[a-z]+)?$/.test(x));
    assert.ok(` ${plain.join(" ")} `.includes(` ${t.source} `), `${t.source} in ${plain.join(" ")}`);
  }
});
