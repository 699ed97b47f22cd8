import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "@rlhf/errors";
import { ByteTokenizer, Gpt2Tokenizer, TOKENIZER_CONFIG_KEY, getTokenizer, tokenizerConfig, tokenizerFromConfig } from "./tokenizer";

test("byte tokenizer: UTF-8 bytes, EOS 256 and PAD 257 distinct and dropped by decode", () => {
  const t = new ByteTokenizer();
  assert.deepEqual(t.encode("hé"), [104, 0xc3, 0xa9]);
  assert.equal(t.decode([...t.encode("naïve café ✓"), t.eosId, t.padId]), "naïve café ✓");
  assert.notEqual(t.eosId, t.padId);
  assert.equal(t.decode([104, 300]), "h\uFFFD", "ids a larger model has but bytes never use");
  assert.throws(() => t.decode([-1]), (e: unknown) => e instanceof InvalidArgumentError && e.field === "ids[0]");
});

test("GPT-2 BPE from js-tiktoken's shipped ranks: known ids; EOS 50256, PAD 50257", () => {
  const t = new Gpt2Tokenizer();
  assert.deepEqual(t.encode("Hello world"), [15496, 995]);
  assert.deepEqual(t.encode("<|endoftext|>").includes(50256), false, "special text is not the special token");
  assert.equal(t.decode([15496, 995, 50256, 50257]), "Hello world");
  assert.equal(t.eosId, 50256);
  assert.equal(t.padId, 50257);
});

test("config.json records the tokenizer; without the key a folder is GPT-2", () => {
  assert.equal(tokenizerFromConfig({ vocab_size: 50257 }).name, "gpt2");
  assert.equal(tokenizerFromConfig({ vocab_size: 512, ...tokenizerConfig(getTokenizer("byte")) }).name, "byte");
  assert.equal(tokenizerConfig(new ByteTokenizer())[TOKENIZER_CONFIG_KEY], "byte");
  assert.throws(() => tokenizerFromConfig({ vocab_size: 100, [TOKENIZER_CONFIG_KEY]: "byte" }), /too small/);
  assert.throws(() => tokenizerFromConfig({ [TOKENIZER_CONFIG_KEY]: "sentencepiece" }), (e: unknown) => e instanceof InvalidArgumentError && e.field === `config.json.${TOKENIZER_CONFIG_KEY}`);
});
