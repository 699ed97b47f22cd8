// run-tests: own process (the compute backend is chosen once per process)
// The paths the recipe runs on a model — a training step (forward, gradients, clipping, AdamW),
// generation with and without the key/value cache, evaluation (packed log-probabilities), the
// scalar heads (values, scores and their gradients) and a pairwise reward-model loss — dispatch
// only kernels that the torch backend runs natively: none falls back to the host. The list is
// printed so that a change in what the model dispatches is visible. Skipped where the torch addon
// is not built.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend, logSigmoid } from "@rlhf/compute";
import { kernelCoverage, loadAddon } from "@rlhf/torch-backend";
import type { GPT2Config } from "./config";
import { GPT2 } from "./gpt2";
import { generate } from "./generate";
import { ScalarHeadModel } from "./heads";
import { Trainer, lmLoss, makeLmBatch } from "./train";

const addon = loadAddon();
const skip = addon.ok ? false : `torch addon unavailable: ${addon.reason}`;

before(async () => {
  if (addon.ok) await initBackend({ backend: "torch" });
});

const cfg: GPT2Config = { vocabSize: 40, nPositions: 24, nEmbd: 16, nLayer: 2, nHead: 2, layerNormEpsilon: 1e-5 };
const seqs = [
  { tokens: [1, 5, 7, 9, 11, 2], lossStart: 3 },
  { tokens: [4, 4, 8, 3], lossStart: 1 },
];

test("training, generation, evaluation, heads and losses dispatch only native kernels", { skip }, async () => {
  const m = GPT2.random(cfg, 1);
  const trainer = new Trainer(m.parameters(), { maxGradNorm: 0.1 });
  const critic = ScalarHeadModel.fromLanguageModel(m, 1);
  const criticTrainer = new Trainer(critic.parameters(), {});
  const paths: [string, () => void][] = [
    ["training step", () => {
      const batch = makeLmBatch(seqs);
      trainer.accumulate(() => lmLoss(m, batch.tokens, batch.lossMask, { temperature: 0.7 }));
      trainer.update();
      tf.dispose([batch.tokens, batch.lossMask]);
    }],
    ["generation (cache, top-k, top-p, eos)", () => void generate(m, [[1, 2], [3]], { maxNewTokens: 5, topK: 5, topP: 0.9, eosId: 2, temperature: 0.8 })],
    ["generation (no cache)", () => void generate(m, [[1, 2], [3]], { maxNewTokens: 3, useCache: false })],
    ["evaluation", () => void m.tokenLogProbs({ tokens: Int32Array.from([1, 5, 7, 4, 4]), lengths: [3, 2] }, 0.9)],
    ["scalar heads: values, scores, pairwise loss, training step", () => {
      const tokens = tf.tensor2d([1, 5, 7, 9, 4, 4, 8, 3], [2, 4], "int32");
      tf.dispose([critic.values(tokens)]);
      criticTrainer.accumulate(() => {
        const s = critic.scoresAt(tokens, [3, 2]);
        const diff = tf.sub(tf.gather(s, tf.tensor1d([0], "int32")), tf.gather(s, tf.tensor1d([1], "int32")));
        return tf.neg(tf.sum(tf.mul(logSigmoid(diff), tf.tensor1d([1])))) as tf.Scalar;
      });
      criticTrainer.update();
      tokens.dispose();
    }],
  ];
  const all = new Set<string>();
  for (const [what, fn] of paths) {
    const { dispatched, notNative } = await kernelCoverage(fn);
    dispatched.forEach((k) => all.add(k));
    assert.deepEqual(notNative, [], `${what} dispatched kernels the torch backend runs on the host`);
  }
  console.log(`kernels dispatched: ${[...all].sort().join(", ")}`);
  assert.ok(all.has("RlhfCausalAttention") && all.has("RlhfAdamW") && all.has("BatchMatMul"));
  critic.dispose();
  criticTrainer.dispose();
  trainer.dispose();
  m.dispose();
});
