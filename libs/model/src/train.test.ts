import { before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import { InvalidArgumentError } from "@rlhf/errors";
import type { GPT2Config } from "./config";
import { GPT2 } from "./gpt2";
import { loadCheckpoint, loadCheckpointConfig, saveCheckpoint } from "./checkpoint";
import { AdamW, Trainer, learningRate, lmLoss, makeLmBatch } from "./train";
import { ByteTokenizer, tokenizerConfig } from "./tokenizer";

before(async () => {
  await initBackend();
});

const tmp = mkdtempSync(join(tmpdir(), "rlhf-model-train-"));
const cfg: GPT2Config = { vocabSize: 29, nPositions: 16, nEmbd: 16, nLayer: 2, nHead: 2, layerNormEpsilon: 1e-5 };
const seqs = [
  { tokens: [1, 5, 7, 9, 11, 2], lossStart: 3 },
  { tokens: [4, 4, 8, 3], lossStart: 1 },
  { tokens: [6, 10, 12, 14, 16, 18, 20, 22], lossStart: 5 },
];

function bits(m: GPT2): Map<string, Float32Array> {
  return new Map([...m.toHostTensors()].map(([k, v]) => [k, v.data as Float32Array]));
}

test("lmLoss is the masked mean of -log p over completion tokens (checked against tokenLogProbs)", () => {
  const m = GPT2.random(cfg, 1);
  const batch = makeLmBatch(seqs);
  try {
    assert.equal(batch.numTargets, 3 + 3 + 3);
    const loss = lmLoss(m, batch.tokens, batch.lossMask, { temperature: 0.8 });
    const lp = m.tokenLogProbs({ tokens: Int32Array.from(seqs.flatMap((s) => s.tokens)), lengths: seqs.map((s) => s.tokens.length) }, 0.8);
    let sum = 0;
    seqs.forEach((s, b) => {
      for (let j = s.lossStart; j < s.tokens.length; j++) sum -= lp[b][j - 1];
    });
    assert.ok(Math.abs(loss.dataSync()[0] - sum / 9) < 1e-5, `${loss.dataSync()[0]} vs ${sum / 9}`);
    const half = lmLoss(m, batch.tokens, batch.lossMask, { temperature: 0.8, normalizer: 18 });
    assert.ok(Math.abs(half.dataSync()[0] - sum / 18) < 1e-5);
    tf.dispose([loss, half]);
  } finally {
    tf.dispose([batch.tokens, batch.lossMask]);
    m.dispose();
  }
});

test("AdamW update matches the formula (decoupled decay on matrices only); schedules", () => {
  const w = tf.variable(tf.tensor2d([[1, -2]]));
  const b = tf.variable(tf.tensor1d([0.5]));
  const opt = new AdamW(new Map<string, tf.Variable>([["w", w], ["b", b]]), { beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.1 });
  const g1 = new Map<string, tf.Tensor>([["w", tf.tensor2d([[0.3, -0.1]])], ["b", tf.tensor1d([2])]]);
  const g2 = new Map<string, tf.Tensor>([["w", tf.tensor2d([[-0.2, 0.4]])], ["b", tf.tensor1d([-1])]]);
  opt.apply(g1, 0.01);
  opt.apply(g2, 0.02);
  // By hand, in float64.
  const run = (p0: number, gs: number[], lrs: number[], decay: boolean): number => {
    let p = p0,
      m = 0,
      v = 0;
    gs.forEach((g, i) => {
      const t = i + 1;
      m = 0.9 * m + 0.1 * g;
      v = 0.99 * v + 0.01 * g * g;
      const upd = m / (1 - 0.9 ** t) / (Math.sqrt(v / (1 - 0.99 ** t)) + 1e-8);
      p = p * (decay ? 1 - lrs[i] * 0.1 : 1) - lrs[i] * upd;
    });
    return p;
  };
  const wv = w.dataSync();
  assert.ok(Math.abs(wv[0] - run(1, [0.3, -0.2], [0.01, 0.02], true)) < 1e-6);
  assert.ok(Math.abs(wv[1] - run(-2, [-0.1, 0.4], [0.01, 0.02], true)) < 1e-6);
  assert.ok(Math.abs(b.dataSync()[0] - run(0.5, [2, -1], [0.01, 0.02], false)) < 1e-6);
  assert.equal(opt.step, 2);
  tf.dispose([...g1.values(), ...g2.values(), w, b]);
  opt.dispose();

  const c = { kind: "cosine" as const, lr: 1, warmupSteps: 4, totalSteps: 14, minLr: 0.1 };
  assert.deepEqual([0, 1, 3].map((s) => learningRate(c, s)), [0.25, 0.5, 1]);
  assert.equal(learningRate(c, 4), 1);
  assert.ok(Math.abs(learningRate(c, 9) - 0.55) < 1e-12);
  assert.ok(Math.abs(learningRate(c, 14) - 0.1) < 1e-12);
  assert.ok(Math.abs(learningRate(c, 100) - 0.1) < 1e-12);
  assert.deepEqual([0, 1, 2, 50].map((s) => learningRate({ kind: "constant", lr: 0.3, warmupSteps: 2 }, s)), [0.15, 0.3, 0.3, 0.3]);
});

test("gradient accumulation equals one big batch; external gradients add; clipping scales to maxGradNorm", () => {
  const m = GPT2.random(cfg, 2);
  const all = makeLmBatch(seqs);
  const parts = [makeLmBatch(seqs.slice(0, 2)), makeLmBatch(seqs.slice(2))];
  const big = new Trainer(m.parameters());
  const acc = new Trainer(m.parameters());
  try {
    big.accumulate(() => lmLoss(m, all.tokens, all.lossMask));
    for (const p of parts) acc.accumulate(() => lmLoss(m, p.tokens, p.lossMask, { normalizer: all.numTargets }));
    assert.equal(acc.pending, 2);
    const gBig = big.exportGradients();
    const gAcc = acc.exportGradients();
    let nonzero = 0;
    for (const [name, t] of gBig) {
      const u = gAcc.get(name)?.data as Float32Array;
      t.data.forEach((x, i) => {
        if (x !== 0) nonzero++;
        assert.ok(Math.abs(x - u[i]) < 1e-6, `${name}[${i}]: ${x} vs ${u[i]}`);
      });
    }
    assert.ok(nonzero > 1000);

    // External gradients (PPO-ptx): accumulated = own + 0.5 * external.
    acc.addGradients(gBig, 0.5);
    const sum = acc.exportGradients();
    const wte = sum.get("wte.weight")?.data as Float32Array;
    const own = gBig.get("wte.weight")?.data as Float32Array;
    wte.forEach((x, i) => assert.ok(Math.abs(x - 1.5 * own[i]) < 1e-6));
    assert.throws(() => acc.addGradients(new Map([["nope", gBig.get("ln_f.bias")!]])), (e: unknown) => e instanceof InvalidArgumentError && e.field === "gradients[nope]");

    // Clipping: with maxGradNorm tiny, the first moment is (1 - beta1) * g * maxNorm / |g|.
    let sq = 0;
    for (const t of sum.values()) for (const x of t.data) sq += x * x;
    acc.zeroGradients();
    const clip = new Trainer(m.parameters(), { maxGradNorm: 1e-3, schedule: { kind: "constant", lr: 0 } });
    clip.addGradients(sum);
    const r = clip.update();
    assert.ok(Math.abs(r.gradNorm - Math.sqrt(sq)) < 1e-4 * Math.sqrt(sq));
    const m1 = clip.optimizer.getState().tensors.get("exp_avg.wte.weight")?.data as Float32Array;
    const scale = 1e-3 / (Math.sqrt(sq) + 1e-6);
    wte.forEach((x, i) => assert.ok(Math.abs(m1[i] - 0.1 * x * scale) < 1e-9, `${m1[i]} vs ${0.1 * x * scale}`));
    clip.dispose();
  } finally {
    tf.dispose([all.tokens, all.lossMask, ...parts.flatMap((p) => [p.tokens, p.lossMask])]);
    big.dispose();
    acc.dispose();
    m.dispose();
  }
});

test("saving and restoring in the middle of training continues bit-identically (CPU backend); no tensor leaks", async () => {
  const batches = [seqs.slice(0, 2), seqs.slice(1), seqs].map((s) => makeLmBatch(s));
  const options = { schedule: { kind: "cosine" as const, lr: 3e-3, warmupSteps: 2, totalSteps: 10 }, maxGradNorm: 0.5 };
  const trainSteps = (m: GPT2, t: Trainer, from: number, to: number): void => {
    for (let i = from; i < to; i++) {
      const b = batches[i % batches.length];
      t.accumulate(() => lmLoss(m, b.tokens, b.lossMask));
      t.update();
    }
  };
  const a = GPT2.random(cfg, 3);
  const ta = new Trainer(a.parameters(), options);
  trainSteps(a, ta, 0, 4);
  const dir = join(tmp, "mid");
  await saveCheckpoint(a, dir, tokenizerConfig(new ByteTokenizer()));
  await ta.save(dir);
  const before = tf.memory().numTensors;
  trainSteps(a, ta, 4, 8);
  assert.equal(tf.memory().numTensors, before, "training steps leak no tensors");

  const b = await loadCheckpoint(dir);
  const tb = new Trainer(b.parameters(), options);
  await tb.load(dir);
  assert.equal(tb.step, 4);
  trainSteps(b, tb, 4, 8);
  // Control: same weights but fresh optimiser state gives different weights (the test can fail).
  const c = await loadCheckpoint(dir);
  const tc = new Trainer(c.parameters(), options);
  trainSteps(c, tc, 4, 8);
  try {
    const wa = bits(a);
    const wb = bits(b);
    for (const [name, x] of wa) assert.deepEqual(Buffer.from(x.buffer), Buffer.from((wb.get(name) as Float32Array).buffer), name);
    assert.notDeepEqual(Buffer.from((bits(c).get("wte.weight") as Float32Array).buffer), Buffer.from((wa.get("wte.weight") as Float32Array).buffer));
    assert.deepEqual(
      [...ta.optimizer.getState().tensors.get("exp_avg_sq.h.1.mlp.c_fc.weight")!.data],
      [...tb.optimizer.getState().tensors.get("exp_avg_sq.h.1.mlp.c_fc.weight")!.data],
    );
    assert.equal((await loadCheckpointConfig(dir)).hfConfig.rlhf_tokenizer, "byte");
    await assert.rejects(tb.load(join(tmp, "missing")), /no such file/);
    const other = new Trainer(c.parameters(), { ...options, maxGradNorm: 2 });
    await assert.rejects(other.load(dir), /differ/);
    other.dispose();
  } finally {
    tf.dispose(batches.flatMap((x) => [x.tokens, x.lossMask]));
    for (const t of [ta, tb, tc]) t.dispose();
    for (const m of [a, b, c]) m.dispose();
  }
});

test("AdamW holds exactly two moment tensors per parameter and frees them on dispose", () => {
  const model = GPT2.random({ vocabSize: 20, nPositions: 8, nEmbd: 8, nLayer: 1, nHead: 2, layerNormEpsilon: 1e-5 }, 4);
  const before = tf.memory().numTensors;
  const opt = new AdamW(model.parameters());
  assert.equal(tf.memory().numTensors - before, 2 * model.parameters().size, "nothing but m and v per parameter");
  opt.dispose();
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});

test("weight decay spares the embeddings, biases and gains, and decays other matrices", () => {
  const mk = (v: number, shape: number[]) => tf.variable(tf.fill(shape, v));
  const params = new Map<string, tf.Variable>([
    ["wte.weight", mk(1, [3, 2])],
    ["wpe.weight", mk(1, [2, 2])],
    ["h.0.mlp.c_fc.weight", mk(1, [2, 2])],
    ["h.0.mlp.c_fc.bias", mk(1, [2])],
  ]);
  const opt = new AdamW(params, { weightDecay: 0.1 });
  const zeros = new Map([...params].map(([n, p]) => [n, tf.zerosLike(p)] as const));
  opt.apply(zeros, 0.5); // zero gradients: only the decay moves anything
  const first = (n: string) => (params.get(n) as tf.Variable).dataSync()[0];
  assert.equal(first("wte.weight"), 1);
  assert.equal(first("wpe.weight"), 1);
  assert.equal(first("h.0.mlp.c_fc.bias"), 1);
  assert.ok(Math.abs(first("h.0.mlp.c_fc.weight") - 0.95) < 1e-7);
  tf.dispose([...zeros.values(), ...params.values()]);
  opt.dispose();
});
