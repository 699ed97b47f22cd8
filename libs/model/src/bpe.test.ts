import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "@rlhf/errors";
import { BPE_EOS, BPE_FIRST_MERGE, BPE_PAD, BpeCodec, bpePieces, trainBpe, validateMerges } from "./bpe";
import { BPE_MERGES_CONFIG_KEY, BpeTokenizer, builtinMerges, getTokenizer, tokenizerConfig, tokenizerFromConfig } from "./tokenizer";

const b = (s: string) => s.charCodeAt(0);

test("pieces: a word with its leading space, single digits, punctuation runs, whitespace", () => {
  assert.deepEqual(bpePieces("Count the words: 12 cats!\nAnswer: it's"), ["Count", " the", " words", ":", " 1", "2", " cats", "!", "\n", "Answer", ":", " it", "'s"]);
  assert.equal(bpePieces("a  b").join(""), "a  b");
});

test("training takes the most frequent pair first, ties by the smaller ids; the same texts give the same merges", () => {
  // "ab" occurs 4 times, "bc" 2 times.
  const merges = trainBpe(["ab ab ab abc"], BPE_FIRST_MERGE + 2);
  assert.deepEqual(merges[0], [b("a"), b("b")]);
  assert.deepEqual(merges[1], [b(" "), BPE_FIRST_MERGE], "' ab' (3) beats 'ab'+'c' (1)");
  assert.deepEqual(trainBpe(["ab ab ab abc"], BPE_FIRST_MERGE + 2), merges);
  // Nothing left that occurs twice: training stops early.
  assert.equal(trainBpe(["xyz"], BPE_FIRST_MERGE + 10).length, 0);
  assert.throws(() => trainBpe(["x"], 10), InvalidArgumentError);
});

test("encoding merges by rank, decoding gives the text back; EOS and PAD decode to nothing", () => {
  const codec = new BpeCodec(trainBpe(["the cat sat on the mat; the hat"], 300));
  for (const text of ["the cat", "thermal hats!", "naïve café 123", "", "  spaces  ", "\u{1F600} emoji"]) assert.equal(codec.decode(codec.encode(text)), text);
  const ids = codec.encode(" the");
  assert.equal(ids.length, 1, "a frequent word is one token");
  assert.equal(codec.decode([...ids, BPE_EOS, BPE_PAD]), " the");
  assert.equal(codec.decode([5000]), "\uFFFD", "an id past the vocabulary");
  assert.throws(() => codec.decode([-1]), /ids\[0\]: must be an integer >= 0/);
});

test("the built-in vocabulary: 2048 ids, about 3 characters a token on English, recorded in and read from config.json", () => {
  const tok = getTokenizer("bpe") as BpeTokenizer;
  assert.equal(tok.vocabSize, 2048);
  assert.deepEqual([tok.eosId, tok.padId], [256, 257]);
  const text = "Count the words: the old man sat by the river\nAnswer: 7";
  const ids = tok.encode(text);
  assert.ok(ids.length < text.length / 2.5, `${ids.length} tokens for ${text.length} characters`);
  assert.equal(tok.decode(ids), text);
  const config: Record<string, unknown> = { ...tokenizerConfig(tok), vocab_size: 2048 };
  assert.equal((config[BPE_MERGES_CONFIG_KEY] as unknown[]).length, 1790);
  const back = tokenizerFromConfig(JSON.parse(JSON.stringify(config)));
  assert.equal(back.name, "bpe");
  assert.deepEqual(back.encode(text), ids);
  // A checkpoint's own merges win over the built-in ones.
  const small = tokenizerFromConfig({ rlhf_tokenizer: "bpe", [BPE_MERGES_CONFIG_KEY]: [[b("a"), b("b")]], vocab_size: 259 });
  assert.deepEqual(small.encode("ab"), [258]);
  assert.equal(builtinMerges().length, 1790);
});

test("bad merges are InvalidArgumentErrors naming the entry", () => {
  assert.throws(() => validateMerges("x", "m"), (e: unknown) => e instanceof InvalidArgumentError && e.field === "m");
  assert.throws(() => validateMerges([[1, 2], [258, 300]], "m"), (e: unknown) => e instanceof InvalidArgumentError && e.field === "m[1]", "300 is not made yet");
  assert.throws(() => validateMerges([[256, 1]], "m"), /not 256 or 257/);
  assert.throws(() => tokenizerFromConfig({ rlhf_tokenizer: "bpe", [BPE_MERGES_CONFIG_KEY]: [[1]], vocab_size: 300 }, "c"), (e: unknown) => e instanceof InvalidArgumentError && e.field === `c.${BPE_MERGES_CONFIG_KEY}[0]`);
  assert.throws(() => tokenizerFromConfig({ rlhf_tokenizer: "bpe", vocab_size: 1000 }, "c"), /c\.vocab_size: 1000 is too small for the bpe tokenizer \(needs 2048\)/);
});
