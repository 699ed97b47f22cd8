import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "@rlhf/errors";
import { DEFAULT_DEMONSTRATORS, FLAW_KINDS, applicableFlaws, demonstrate, demonstratorFlawRate, flawedAnswer } from "./demonstrators";
import { Rng } from "./rng";
import { goldScore, scoreResponse } from "./scoring";
import { SHORT_FAMILIES } from "./short-tasks";
import { DEFAULT_BLOCKLIST, buildInstructionDatasets, type GoldAnswer, type InstructionTask, renderAnswer, renderPrompt } from "./tasks";
import { normalizeWord, wordsOf } from "./words";

const SOURCE = "the old man sat";
function task(family: InstructionTask["family"], gold: GoldAnswer): InstructionTask {
  return { id: `${family}:x.0`, family, sentenceId: "x.0", source: SOURCE, prompt: renderPrompt(family, SOURCE), completion: " " + renderAnswer(gold), gold };
}
const reverse = task("reverse_words", { kind: "sequence", words: ["sat", "man", "old", "the"] });
const count = task("count_words", { kind: "count", value: 4 });
const last = task("last_word", { kind: "word", word: "sat" });
const nouns = task("pick_nouns", { kind: "list", items: ["man"] });

test("flaw rates spread around the share: the best demonstrator half, the worst one and a half times", () => {
  assert.equal(demonstratorFlawRate(0.3, 0, 4), 0.15);
  assert.ok(Math.abs(demonstratorFlawRate(0.3, 3, 4) - 0.45) < 1e-12);
  const mean = [0, 1, 2, 3].reduce((a, d) => a + demonstratorFlawRate(0.3, d, 4), 0) / 4;
  assert.ok(Math.abs(mean - 0.3) < 1e-12);
  assert.equal(demonstratorFlawRate(0.3, 0, 1), 0.3);
  assert.equal(demonstratorFlawRate(0.9, 3, 4), 1, "capped at 1");
});

test("which flaws suit which task", () => {
  assert.deepEqual(applicableFlaws(count), ["wrong_count", "made_up_word", "blocklisted_word", "rambling"]);
  assert.deepEqual(applicableFlaws(last), ["extra_item", "wrong_item", "made_up_word", "blocklisted_word", "rambling"]);
  assert.deepEqual(applicableFlaws(reverse), ["missing_item", "wrong_order", "made_up_word", "blocklisted_word", "rambling"], "every input word is in the answer: nothing extra to add");
  assert.deepEqual(applicableFlaws(nouns), ["extra_item", "made_up_word", "blocklisted_word", "rambling"], "one item cannot lose one or change order");
});

test("each flaw makes the answer worse in the gold scorer's eyes, as a labeler would see it", () => {
  const rng = new Rng(5);
  for (const t of [reverse, count, last, nouns]) {
    const gold = goldScore(t, t.completion);
    for (const kind of applicableFlaws(t)) {
      for (let i = 0; i < 5; i++) {
        const bad = flawedAnswer(t, kind, rng);
        assert.ok(goldScore(t, ` ${bad}`) < gold, `${t.family} ${kind}: "${bad}" scores ${goldScore(t, ` ${bad}`)} vs gold ${gold}`);
      }
    }
  }
  // What each flaw looks like.
  assert.match(flawedAnswer(count, "wrong_count", new Rng(1)), /^[2356]$/);
  const bad = flawedAnswer(reverse, "blocklisted_word", new Rng(1));
  assert.ok(DEFAULT_BLOCKLIST.includes(bad.split(" ").at(-1)!), bad);
  assert.ok(scoreResponse(reverse, ` ${flawedAnswer(reverse, "made_up_word", new Rng(2))}`).hallucinationRate > 0);
  const ramble = flawedAnswer(last, "rambling", new Rng(1), { ramblingWords: 7 });
  assert.equal(ramble, "sat the old man sat the old man");
  assert.deepEqual(wordsOf(flawedAnswer(reverse, "missing_item", new Rng(3))).length, 3);
  const order = flawedAnswer(reverse, "wrong_order", new Rng(4));
  assert.deepEqual([...wordsOf(order)].sort(), ["man", "old", "sat", "the"]);
  assert.notEqual(order, "sat man old the");
});

test("demonstrate: the configured share is flawed, rambling ones have no EOS, the rest is gold; deterministic", () => {
  const ds = buildInstructionDatasets({ seed: 1, families: SHORT_FAMILIES, sizes: { sft: 1400, rm: 0, ppo: 0, eval: 0 } });
  const demos = demonstrate(ds.sft, { ...DEFAULT_DEMONSTRATORS, flawShare: 0.3 }, 7);
  const flawed = demos.filter((d) => d.flaw !== null);
  assert.ok(Math.abs(flawed.length / demos.length - 0.3) < 0.04, `${flawed.length} of ${demos.length}`);
  for (const [i, d] of demos.entries()) {
    assert.equal(d.demonstrator, i % 4);
    assert.equal(d.eos, d.flaw !== "rambling");
    if (d.flaw === null) assert.equal(d.completion, ds.sft[i].completion);
    else assert.ok(d.completion.startsWith(" ") && d.completion !== ds.sft[i].completion, `${d.flaw}: ${d.completion}`);
  }
  // The worst demonstrator flaws about three times as often as the best.
  const rate = (k: number) => demos.filter((d) => d.demonstrator === k && d.flaw).length / demos.filter((d) => d.demonstrator === k).length;
  assert.ok(rate(3) > 2 * rate(0), `${rate(0)} vs ${rate(3)}`);
  assert.ok(new Set(flawed.map((d) => d.flaw)).size >= 6, "most kinds occur");
  assert.deepEqual(demonstrate(ds.sft, { ...DEFAULT_DEMONSTRATORS, flawShare: 0.3 }, 7), demos);
  assert.ok(demonstrate(ds.sft, { ...DEFAULT_DEMONSTRATORS, flawShare: 0 }).every((d) => d.flaw === null && d.eos));
  // Only the kinds asked for (at share 1 the two worst demonstrators flaw everything).
  const some = demonstrate(ds.sft, { ...DEFAULT_DEMONSTRATORS, flawShare: 1, flaws: ["blocklisted_word"] });
  assert.ok(some.every((d) => d.flaw === null || d.flaw === "blocklisted_word"));
  assert.ok(some.filter((d) => d.demonstrator >= 2).every((d) => d.flaw === "blocklisted_word"));
  assert.ok(some.filter((d) => d.flaw).every((d) => wordsOf(d.completion).some((x) => DEFAULT_BLOCKLIST.map(normalizeWord).includes(x))));
});

test("bad demonstrator options are errors naming the option", () => {
  const t = [count];
  assert.throws(() => demonstrate(t, { ...DEFAULT_DEMONSTRATORS, flawShare: 1.5 }), (e: unknown) => e instanceof InvalidArgumentError && e.field === "flawShare");
  assert.throws(() => demonstrate(t, { ...DEFAULT_DEMONSTRATORS, count: 0 }), (e: unknown) => e instanceof InvalidArgumentError && e.field === "count");
  assert.throws(() => demonstrate(t, { ...DEFAULT_DEMONSTRATORS, flaws: ["typo" as never] }), /unknown flaw "typo"/);
  assert.equal(FLAW_KINDS.length, 8);
});
