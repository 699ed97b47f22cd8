// run-tests: own process (the compute backend is chosen once per process)
// No leaks on the torch backend: 1,250 training steps and 1,250 generations leave tf.memory(),
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
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

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

test("1,250 training steps and 1,250 generations leak no tensor and no memory", { skip, timeout: testDeadlineMs(600_000) }, () => {
  const m = GPT2.random(cfg, 1);
  const trainer = new Trainer(m.parameters(), { maxGradNorm: 1 });
  const batch = makeLmBatch([{ tokens: [1, 5, 7, 9, 11, 2, 3, 4], lossStart: 2 }, { tokens: [4, 4, 8, 3], lossStart: 1 }]);
  const step = () => {
    trainer.accumulate(() => lmLoss(m, batch.tokens, batch.lossMask));
    trainer.update();
  };
  const gen = (i: number) => void generate(m, [[1, 2, 3], [5]], { maxNewTokens: 6, seed: i, temperature: 0.9 });
  // Warm-up: allocator pools, JIT, the first moments. RSS climbs for the first few hundred
  // iterations (about 50 MiB, to a plateau) before it holds: the readings start after 500.
  for (let i = 0; i < 500; i++) {
    step();
    gen(i);
  }
  gc();
  const start = counts();
  // Ten readings, 125 iterations apart: a leak grows with every one. glibc's arenas make single
  // readings jump by tens of MiB either way (CI runs of 2026-12-04: a step of 28 MiB up just after
  // the warm-up, and 435.0, 383.5, 428.1, 427.3, 428.5 MiB: one reading 45 MiB below the rest),
  // so the growth is from the median of the first three readings to the median of the last three:
  // one wild reading in either group moves neither, and their middles are 875 iterations apart.
  const rss: number[] = [];
  for (let i = 0; i < 1250; i++) {
    step();
    gen(i);
    if ((i + 1) % 125 === 0) {
      gc();
      rss.push(counts().rssMiB);
    }
  }
  const end = counts();
  const median3 = (xs: number[]) => [...xs].sort((a, b) => a - b)[1];
  const grew = median3(rss.slice(-3)) - median3(rss.slice(0, 3));
  assert.equal(end.tensors, start.tensors, "tf.memory().numTensors");
  assert.equal(end.native, start.native, "the addon's tensor count");
  // Flat within allocator noise. A leaked tensor shows in the two counts above; RSS catches memory
  // lost outside them (host copies, addon buffers): 16 MiB over 875 iterations is 19 KB each.
  assert.ok(grew < 16, `RSS grew by ${grew.toFixed(1)} MiB over 875 iterations (after the warm-up ${start.rssMiB.toFixed(1)}, then ${rss.map((r) => r.toFixed(1)).join(", ")} MiB; median of the last three minus median of the first three)`);
  console.log(`after 1,250 steps + 1,250 generations: tensors ${start.tensors} -> ${end.tensors}, addon ${start.native} -> ${end.native}, RSS ${start.rssMiB.toFixed(1)} then ${rss.map((r) => r.toFixed(1)).join(", ")} MiB`);
  tf.dispose([batch.tokens, batch.lossMask]);
  trainer.dispose();
  m.dispose();
});
