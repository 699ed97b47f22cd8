import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { brownCorpusDir, loadBrownCorpus } from "./brown";
import { Rng } from "./rng";
import { DEFAULT_BLOCKLIST, type InstructionTask, REVERSE_MAX_WORDS, TASK_FAMILIES, buildInstructionDatasets, goldAnswer, makeTask } from "./tasks";

const corpus = loadBrownCorpus();
const sentence = (id: string) => {
  const [doc, idx] = id.split(".");
  const d = corpus.documents.find((x) => x.id === doc);
  assert.ok(d);
  return d.sentences[Number(idx)];
};

test("gold answers of the first sentence of the corpus, worked out by hand", () => {
  const s = sentence("ca01.0");
  assert.deepEqual(goldAnswer("nouns", s), { kind: "list", items: ["County", "Jury", "investigation", "primary", "election", "evidence", "irregularities", "place"] });
  assert.deepEqual(goldAnswer("verbs", s), { kind: "list", items: ["said", "produced", "took"] });
  assert.deepEqual(goldAnswer("adjectives", s), { kind: "list", items: ["Grand", "recent"] });
  assert.deepEqual(goldAnswer("names", s), { kind: "list", items: ["Fulton", "Atlanta's"] });
  assert.deepEqual(goldAnswer("count", s), { kind: "count", value: 22 });
  assert.deepEqual(goldAnswer("longest", s), { kind: "word", word: "irregularities" });
  assert.equal(goldAnswer("reverse", s), undefined, "22 words is too long to reverse");
  const t = makeTask("verbs", s);
  assert.ok(t);
  assert.equal(t.prompt, `List the verbs: ${t.source}\nAnswer:`);
  assert.equal(t.completion, " said, produced, took");
  assert.equal(makeTask("count", s)?.completion, " 22");
});

const ds = buildInstructionDatasets();
const all: InstructionTask[] = [...ds.eval, ...ds.sft, ...ds.rm, ...ds.ppo];

/** The raw `word/tag` items of a sentence, read straight from the corpus file. */
function rawItems(sentenceId: string): { word: string; tag: string }[] {
  const [doc, idx] = sentenceId.split(".");
  const lines = readFileSync(join(brownCorpusDir(), doc), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "");
  return lines[Number(idx)]
    .trim()
    .split(/\s+/)
    .map((it) => {
      const m = /^(.*)\/([^/]+)$/.exec(it);
      assert.ok(m, it);
      return { word: m[1], tag: m[2] };
    });
}
const norm = (w: string) => w.toLowerCase().replace(/[^a-z0-9]/g, "");
const uniq = (xs: string[]) => xs.filter((x, i) => xs.findIndex((y) => norm(y) === norm(x)) === i);
const pieces = (source: string) => source.split(" ").filter((p) => /[A-Za-z0-9]/.test(p));
const TAG_RE: Record<string, RegExp> = {
  nouns: /^nns?\$?(-tl|-nc)*$/,
  verbs: /^vb[dgnz]?(-tl|-nc)*$/,
  adjectives: /^jj[rst]?(-tl|-nc)*$/,
  names: /^nps?\$?(-tl|-nc)*$/,
};

test("gold answers are right: a sample recomputed from the raw tagged files by tag regexes and from the readable text", () => {
  const rng = new Rng(2024);
  const sample = rng.shuffle([...all]).slice(0, 700);
  const seen = new Set<string>();
  for (const t of sample) {
    seen.add(t.family);
    const items = rawItems(t.sentenceId);
    const words = pieces(t.source);
    switch (t.family) {
      case "nouns":
      case "verbs":
      case "adjectives": {
        const want = uniq(items.filter((i) => TAG_RE[t.family].test(i.tag)).map((i) => i.word));
        assert.equal(t.completion, " " + want.join(", "), t.id);
        break;
      }
      case "names": {
        const runs: string[] = [];
        let prevName = false;
        for (const i of items) {
          const isName = TAG_RE.names.test(i.tag);
          if (isName && prevName) runs[runs.length - 1] += " " + i.word;
          else if (isName) runs.push(i.word);
          prevName = isName;
        }
        assert.equal(t.completion, " " + uniq(runs).join(", "), t.id);
        break;
      }
      case "count":
        assert.equal(t.completion, ` ${words.length}`, t.id);
        assert.equal(items.filter((i) => /[A-Za-z0-9]/.test(i.word)).length, words.length, t.id);
        break;
      case "reverse":
        assert.ok(words.length <= REVERSE_MAX_WORDS);
        assert.deepEqual(t.completion.trim().split(" ").map(norm), words.map(norm).reverse(), t.id);
        break;
      case "longest": {
        const lens = words.map((w) => norm(w).length);
        const max = Math.max(...lens);
        const longest = new Set(words.filter((w) => norm(w).length === max).map(norm));
        assert.equal(longest.size, 1, t.id);
        assert.equal(norm(t.completion), [...longest][0], t.id);
        break;
      }
    }
  }
  assert.deepEqual([...seen].sort(), [...TASK_FAMILIES].sort());
});

test("splits: requested sizes, families round-robin, disjoint sentences and texts, short prompts and answers", () => {
  assert.deepEqual([ds.sft.length, ds.rm.length, ds.ppo.length, ds.eval.length], [2000, 2000, 2000, 500]);
  assert.deepEqual(
    ds.sft.slice(0, 7).map((t) => t.family),
    TASK_FAMILIES,
  );
  const ids = new Set(all.map((t) => t.sentenceId));
  assert.equal(ids.size, all.length, "a sentence is used once across all splits");
  const texts = new Set(all.map((t) => t.source.toLowerCase()));
  assert.equal(texts.size, all.length, "no sentence text repeats across splits");
  const block = new Set(DEFAULT_BLOCKLIST);
  for (const t of all) {
    assert.ok(t.prompt.length < 200, t.prompt);
    assert.ok(t.completion.trim().split(/\s+/).length <= 20, t.completion);
    assert.ok(t.completion.startsWith(" ") && t.completion.trim() !== "");
    for (const w of t.source.toLowerCase().split(/\W+/)) assert.ok(!block.has(w), `${t.id} contains blocklisted ${w}`);
  }
});

test("same seed, same tasks; another seed, other tasks; eval does not move when other splits are resized", () => {
  const again = buildInstructionDatasets();
  assert.equal(JSON.stringify(again), JSON.stringify(ds));
  const other = buildInstructionDatasets({ seed: 1, sizes: { sft: 50, rm: 50, ppo: 50, eval: 50 } });
  assert.notDeepEqual(
    other.eval.map((t) => t.id),
    ds.eval.slice(0, 50).map((t) => t.id),
  );
  const resized = buildInstructionDatasets({ sizes: { sft: 10, rm: 3000, ppo: 0 } });
  assert.deepEqual(resized.eval, ds.eval);
  assert.equal(resized.ppo.length, 0);
});

test("options are checked, and asking for more sentences than the corpus has says so", () => {
  assert.throws(() => buildInstructionDatasets({ sizes: { sft: -1 } }), /sizes.sft/);
  assert.throws(() => buildInstructionDatasets({ families: [] }), /families/);
  assert.throws(() => buildInstructionDatasets({ families: ["names"], sizes: { sft: 20000, rm: 0, ppo: 0, eval: 0 } }), /too few suitable sentences/);
  const onlyCount = buildInstructionDatasets({ families: ["count"], sizes: { sft: 5, rm: 5, ppo: 5, eval: 5 } });
  assert.ok(onlyCount.sft.every((t) => t.family === "count"));
});
