import { before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import type { GPT2Config } from "./config";
import { GPT2 } from "./gpt2";
import { saveCheckpoint } from "./checkpoint";
import { SCORE_BIAS, SCORE_WEIGHT, ScalarHeadModel } from "./heads";
import { Trainer } from "./train";

before(async () => {
  await initBackend();
});

const cfg: GPT2Config = { vocabSize: 31, nPositions: 12, nEmbd: 16, nLayer: 1, nHead: 2, layerNormEpsilon: 1e-5 };
const tmp = mkdtempSync(join(tmpdir(), "rlhf-model-heads-"));

test("reward model from an LM checkpoint: body copied, new score head; critic from the RM copies everything", async () => {
  const lm = GPT2.random(cfg, 4);
  await saveCheckpoint(lm, join(tmp, "lm"));
  const rm = await ScalarHeadModel.load(join(tmp, "lm"), { headSeed: 1 });
  const lmT = lm.toHostTensors();
  const rmT = rm.toHostTensors();
  for (const [name, t] of lmT) assert.deepEqual(rmT.get(name)?.data, t.data, name);
  assert.deepEqual(rmT.get(SCORE_WEIGHT)?.shape, [16, 1]);
  assert.deepEqual(rmT.get(SCORE_BIAS)?.shape, [1]);
  assert.ok([...(rmT.get(SCORE_WEIGHT)?.data ?? [])].some((x) => x !== 0));
  await rm.save(join(tmp, "rm"));
  const again = await ScalarHeadModel.load(join(tmp, "rm"), { headSeed: 99 }); // saved head wins over the seed
  assert.deepEqual(again.toHostTensors().get(SCORE_WEIGHT)?.data, rmT.get(SCORE_WEIGHT)?.data);
  const critic = ScalarHeadModel.fromScalarModel(rm);
  for (const [name, t] of rmT) assert.deepEqual(critic.toHostTensors().get(name)?.data, t.data, name);
  assert.notDeepEqual(ScalarHeadModel.fromLanguageModel(lm, 2).toHostTensors().get(SCORE_WEIGHT)?.data, rmT.get(SCORE_WEIGHT)?.data);
  for (const m of [again, critic]) m.dispose();
  lm.dispose();
  rm.dispose();
});

test("scoresAt reads the per-token values at the given positions; padding after the position changes nothing", () => {
  const lm = GPT2.random(cfg, 5);
  const rm = ScalarHeadModel.fromLanguageModel(lm, 3);
  try {
    const before = tf.memory().numTensors;
    const tokens = tf.tensor2d([[1, 2, 3, 4, 0, 0], [5, 6, 7, 8, 9, 10]], [2, 6], "int32");
    const values = tf.tidy(() => rm.values(tokens).arraySync());
    const scores = tf.tidy(() => rm.scoresAt(tokens, [3, 5]).arraySync());
    assert.ok(Math.abs(scores[0] - values[0][3]) < 1e-6 && Math.abs(scores[1] - values[1][5]) < 1e-6);
    // Independent check of the head: hidden state . w + b.
    const h = tf.tidy(() => lm.hiddenStates(tokens).arraySync());
    const t = rm.toHostTensors();
    const w = t.get(SCORE_WEIGHT)?.data as Float32Array;
    const expect = h[1][2].reduce((s, x, i) => s + x * w[i], 0);
    assert.ok(Math.abs(values[1][2] - expect) < 1e-5);
    const other = tf.tensor2d([[1, 2, 3, 4, 30, 17]], [1, 6], "int32");
    assert.ok(Math.abs(tf.tidy(() => rm.scoresAt(other, [3]).arraySync())[0] - scores[0]) < 1e-6);
    tf.dispose([tokens, other]);
    assert.equal(tf.memory().numTensors, before);
    assert.throws(() => rm.scoresAt(tokens, [6, 0]), /positions\[0\]/);
  } finally {
    rm.dispose();
    lm.dispose();
  }
});

test("the scalar head trains: a few steps move two scores apart", () => {
  const lm = GPT2.random(cfg, 6);
  const rm = ScalarHeadModel.fromLanguageModel(lm, 0);
  lm.dispose();
  const tokens = tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], "int32");
  const trainer = new Trainer(rm.parameters(), { schedule: { kind: "constant", lr: 1e-2 } });
  try {
    const gap = () => tf.tidy(() => rm.scoresAt(tokens, [2, 2]).arraySync()).reduce((a, b) => a - b);
    const g0 = gap();
    for (let i = 0; i < 10; i++) {
      trainer.accumulate(() => tf.sum(tf.neg(tf.sub(tf.slice(rm.scoresAt(tokens, [2, 2]), 0, 1), tf.slice(rm.scoresAt(tokens, [2, 2]), 1, 1)))) as tf.Scalar);
      trainer.update();
    }
    assert.ok(gap() > g0 + 0.5, `${g0} -> ${gap()}`);
    const grads = trainer.exportGradients();
    assert.ok(grads.has(SCORE_WEIGHT) && grads.has("h.0.attn.c_attn.weight"));
  } finally {
    tokens.dispose();
    trainer.dispose();
    rm.dispose();
  }
});
