import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import { entropyFromLogits, ppoPolicyLoss, ppoValueLoss } from "./ppo-loss";

before(async () => {
  await initBackend();
});

const near = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
const t1 = (x: number[]) => tf.tensor1d(x);

test("policy loss, clip fraction and k3 KL against hand-worked values", () => {
  // Three tokens, e = 0.2:
  //  t0: log-ratio ln 1.5 (ratio 1.5), A = +1: -A r = -1.5, -A clip = -1.2 -> max = -1.2, clipped
  //  t1: log-ratio ln 0.5 (ratio 0.5), A = +2: -1.0 vs -1.6            -> max = -1.0, clipped (|r-1| = 0.5)
  //  t2: log-ratio ln 1.1 (ratio 1.1), A = -1: +1.1 vs +1.1            -> 1.1, not clipped
  // loss = (-1.2 - 1.0 + 1.1) / 3 = -0.366667; clip fraction 2/3
  // k3 = mean((r - 1) - ln r) = ((0.5 - ln 1.5) + (-0.5 - ln 0.5) + (0.1 - ln 1.1)) / 3
  const old = [0, 0, 0];
  const lp = [Math.log(1.5), Math.log(0.5), Math.log(1.1)];
  const r = ppoPolicyLoss(t1(lp), t1(old), t1([1, 2, -1]), 0.2);
  near(r.loss.dataSync()[0], (-1.2 - 1.0 + 1.1) / 3);
  near(r.clipFraction.dataSync()[0], 2 / 3);
  near(r.approxKl.dataSync()[0], (0.5 - Math.log(1.5) + (-0.5 - Math.log(0.5)) + (0.1 - Math.log(1.1))) / 3);
  tf.dispose([r.loss, r.clipFraction, r.approxKl]);
});

test("policy gradient flows only through unclipped tokens", () => {
  // t0 is clipped (ratio 1.5 > 1.2 with A > 0): zero gradient. t1 is not (ratio 1.1, A = 1):
  // d/dlp of mean(-A e^lp) = -A r / N = -1.1 / 2.
  const lp = tf.variable(t1([Math.log(1.5), Math.log(1.1)]));
  const g = tf.grad((x: tf.Tensor) => ppoPolicyLoss(x as tf.Tensor1D, t1([0, 0]), t1([1, 1]), 0.2).loss)(lp);
  const v = g.dataSync();
  near(v[0], 0);
  near(v[1], -1.1 / 2, 1e-5);
  tf.dispose([lp, g]);
});

test("no movement: ratio 1, zero KL, nothing clipped, loss = -mean(A)", () => {
  const r = ppoPolicyLoss(t1([-1, -2, -3]), t1([-1, -2, -3]), t1([0.5, -1.5, 4]), 0.2);
  near(r.loss.dataSync()[0], -(0.5 - 1.5 + 4) / 3);
  near(r.approxKl.dataSync()[0], 0);
  near(r.clipFraction.dataSync()[0], 0);
  tf.dispose([r.loss, r.clipFraction, r.approxKl]);
});

test("value loss is clipped relative to the old values", () => {
  // c = 0.5. t0: V = 2, old = 0, R = 3: (2-3)^2 = 1; V_clip = 0.5 -> (0.5-3)^2 = 6.25 -> 6.25, clipped term larger
  //          t1: V = 1, old = 1, R = 0: 1 vs 1 -> 1, not strictly larger
  // loss = 0.5 * (6.25 + 1) / 2 = 1.8125; clip fraction 1/2
  const r = ppoValueLoss(t1([2, 1]), t1([0, 1]), t1([3, 0]), 0.5);
  near(r.loss.dataSync()[0], 1.8125);
  near(r.clipFraction.dataSync()[0], 0.5);
  // Without clipping: 0.5 * (1 + 1) / 2 = 0.5 (an implementation clipping around the returns would differ).
  const p = ppoValueLoss(t1([2, 1]), t1([0, 1]), t1([3, 0]), 0);
  near(p.loss.dataSync()[0], 0.5);
  tf.dispose([r.loss, r.clipFraction, p.loss, p.clipFraction]);
});

test("entropy of logits at a temperature", () => {
  // Uniform over 4: ln 4. Logits [0, ln 3] at T = 1: p = [1/4, 3/4]; at T = 2 the logits halve.
  const e = entropyFromLogits(tf.tensor2d([[0, 0, 0, 0]]));
  near(e.dataSync()[0], Math.log(4));
  const h = (ps: number[]) => -ps.reduce((a, p) => a + p * Math.log(p), 0);
  const e1 = entropyFromLogits(tf.tensor2d([[0, Math.log(3)]]));
  near(e1.dataSync()[0], h([0.25, 0.75]));
  const e2 = entropyFromLogits(tf.tensor2d([[0, Math.log(3)]]), 2);
  const s = 1 + Math.sqrt(3);
  near(e2.dataSync()[0], h([1 / s, Math.sqrt(3) / s]));
  tf.dispose([e, e1, e2]);
});

test("shape mismatches are errors naming the field", () => {
  assert.throws(() => ppoPolicyLoss(t1([0, 0]), t1([0]), t1([0, 0]), 0.2), /oldLogprobs/);
  assert.throws(() => ppoPolicyLoss(t1([0]), t1([0]), t1([0]), 0), /clipRange/);
  assert.throws(() => ppoValueLoss(t1([0]), t1([0]), t1([0, 1]), 0.2), /returns/);
});
