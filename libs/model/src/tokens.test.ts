// run-tests: own process (it checks that no TensorFlow.js module is loaded; other files load it)
// The tfjs-free entry point (`@rlhf/model/tokens`): tokenizers and shapes without TensorFlow.js.
import { test } from "node:test";
import assert from "node:assert/strict";
import { getTokenizer, presetConfig } from "./tokens";

test("tokens loads no TensorFlow.js module", () => {
  assert.deepEqual(getTokenizer("gpt2").encode("hello world"), [31373, 995]);
  assert.equal(presetConfig("tiny").nLayer > 0, true);
  const tfjs = Object.keys(require.cache).filter((k) => k.includes("@tensorflow"));
  assert.deepEqual(tfjs, []);
});
