// No leaks on the torch backend: 1,000 training steps and 1,000 generations leave tf.memory(),
// the addon's own tensor count and the process's resident memory flat. Skipped where the torch
// addon is not built.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import { loadAddon, nativeTensorCount } from "@rlhf/torch-backend";
import type { GPT2Config } from "./config";
import { GPT2 } from "./gpt2";
import { generate } from "./generate";
import { Trainer, lmLoss, makeLmBatch } from "./train";

const addon = loadAddon();
const skip = addon.ok ? false : `torch addon unavailable: ${addon.reason}`;

before(async () => {
  if (addon.ok) await initBackend({ backend: "torch" });
});

// A collection before each reading, so that RSS shows memory held, not garbage not yet collected.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const cfg: GPT2Config = { vocabSize: 40, nPositions: 32, nEmbd: 16, nLayer: 2, nHead: 2, layerNormEpsilon: 1e-5 };

function counts(): { tensors: number; native: number; rssMiB: number } {
  return { tensors: tf.memory().numTensors, native: nativeTensorCount(), rssMiB: process.memoryUsage().rss / 2 ** 20 };
}

test("1,000 training steps and 1,000 generations leak no tensor and no memory", { skip, timeout: 600_000 }, () => {
  const m = GPT2.random(cfg, 1);
  const trainer = new Trainer(m.parameters(), { maxGradNorm: 1 });
  const batch = makeLmBatch([{ tokens: [1, 5, 7, 9, 11, 2, 3, 4], lossStart: 2 }, { tokens: [4, 4, 8, 3], lossStart: 1 }]);
  const step = () => {
    trainer.accumulate(() => lmLoss(m, batch.tokens, batch.lossMask));
    trainer.update();
  };
  const gen = (i: number) => void generate(m, [[1, 2, 3], [5]], { maxNewTokens: 6, seed: i, temperature: 0.9 });
  // Warm-up: allocator pools, JIT, the first moments.
  for (let i = 0; i < 100; i++) {
    step();
    gen(i);
  }
  gc();
  const start = counts();
  for (let i = 0; i < 1000; i++) {
    step();
    gen(i);
  }
  gc();
  const end = counts();
  assert.equal(end.tensors, start.tensors, "tf.memory().numTensors");
  assert.equal(end.native, start.native, "the addon's tensor count");
  // Flat within allocator noise: a leak of one [2, 8, 40] logits tensor per step alone would be 2.5 MiB.
  assert.ok(end.rssMiB - start.rssMiB < 16, `RSS grew from ${start.rssMiB.toFixed(1)} to ${end.rssMiB.toFixed(1)} MiB`);
  console.log(`after 1,000 steps + 1,000 generations: tensors ${start.tensors} -> ${end.tensors}, addon ${start.native} -> ${end.native}, RSS ${start.rssMiB.toFixed(1)} -> ${end.rssMiB.toFixed(1)} MiB`);
  tf.dispose([batch.tokens, batch.lossMask]);
  trainer.dispose();
  m.dispose();
});
