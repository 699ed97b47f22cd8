import { test } from "node:test";
import assert from "node:assert/strict";
import { computeGae } from "./gae";
import { assertAllClose, assertInvalid, testRandom } from "./testing/rl-asserts";

/**
 * Independent formulation: A_t = sum_{l >= 0} (gamma*lambda)^l * delta_{t+l} with the deltas of
 * one terminal episode (V after the last token = 0), by the explicit double sum.
 */
function gaeBySum(rewards: number[], values: number[], gamma: number, lambda: number): number[] {
  const n = rewards.length;
  const delta = rewards.map((r, t) => r + gamma * (t + 1 < n ? values[t + 1] : 0) - values[t]);
  return delta.map((_, t) => {
    let a = 0;
    for (let l = 0; t + l < n; l++) a += (gamma * lambda) ** l * delta[t + l];
    return a;
  });
}

test("worked example: 3 tokens, gamma 1, lambda 0.95", () => {
  // rewards [0, 0, 1], values [0.5, 0.6, 0.7]
  // t=2: delta = 1 + 1*0   - 0.7 = 0.3;  A2 = 0.3
  // t=1: delta = 0 + 1*0.7 - 0.6 = 0.1;  A1 = 0.1 + 0.95*0.3   = 0.385
  // t=0: delta = 0 + 1*0.6 - 0.5 = 0.1;  A0 = 0.1 + 0.95*0.385 = 0.46575
  // returns = A + V = [0.96575, 0.985, 1.0]
  const out = computeGae({ rewards: [0, 0, 1], values: [0.5, 0.6, 0.7], lengths: [3] }, { gamma: 1, lambda: 0.95 });
  assertAllClose(out.advantages, [0.46575, 0.385, 0.3]);
  assertAllClose(out.returns, [0.96575, 0.985, 1.0]);
});

test("worked example: 2 tokens, gamma 0.9, lambda 0.5", () => {
  // rewards [1, -1], values [2, 1]
  // t=1: delta = -1 + 0.9*0 - 1 = -2;   A1 = -2
  // t=0: delta = 1 + 0.9*1 - 2  = -0.1; A0 = -0.1 + 0.45*(-2) = -1
  // returns = [-1 + 2, -2 + 1] = [1, -1]
  const out = computeGae({ rewards: [1, -1], values: [2, 1], lengths: [2] }, { gamma: 0.9, lambda: 0.5 });
  assertAllClose(out.advantages, [-1, -2]);
  assertAllClose(out.returns, [1, -1]);
});

test("matches the explicit sum over future deltas on a random uneven batch", () => {
  const rand = testRandom(7);
  const lengths = [5, 1, 9, 3, 12];
  const total = lengths.reduce((a, b) => a + b, 0);
  const rewards = Array.from({ length: total }, () => rand(-1, 1));
  const values = Array.from({ length: total }, () => rand(-2, 2));
  for (const [gamma, lambda] of [[1, 0.95], [0.99, 0.9], [0.5, 0.3], [1, 1], [0, 0.7]]) {
    const out = computeGae({ rewards, values, lengths }, { gamma, lambda });
    let off = 0;
    for (const len of lengths) {
      const expected = gaeBySum(rewards.slice(off, off + len), values.slice(off, off + len), gamma, lambda);
      assertAllClose(out.advantages.subarray(off, off + len), expected, 1e-5, `gamma ${gamma} lambda ${lambda}`);
      assertAllClose(out.returns.subarray(off, off + len), expected.map((a, k) => a + values[off + k]), 1e-5);
      off += len;
    }
  }
});

test("lambda 1 gives Monte Carlo returns; lambda 0 gives one-step TD errors", () => {
  const rewards = [0.5, -1, 2];
  const values = [0.3, 0.1, -0.4];
  const mc = computeGae({ rewards, values, lengths: [3] }, { gamma: 0.9, lambda: 1 });
  // G = [0.5 + 0.9*(-1) + 0.81*2, -1 + 0.9*2, 2] = [1.22, 0.8, 2]
  assertAllClose(mc.returns, [1.22, 0.8, 2], 1e-6);
  const td = computeGae({ rewards, values, lengths: [3] }, { gamma: 0.9, lambda: 0 });
  // delta = [0.5 + 0.9*0.1 - 0.3, -1 + 0.9*(-0.4) - 0.1, 2 - (-0.4)] = [0.29, -1.46, 2.4]
  assertAllClose(td.advantages, [0.29, -1.46, 2.4], 1e-6);
});

test("each sequence is its own terminal episode: nothing leaks across a sequence boundary", () => {
  const a = computeGae({ rewards: [0, 1], values: [0.2, 0.4], lengths: [2] });
  const ab = computeGae({ rewards: [0, 1, 5, 5], values: [0.2, 0.4, 9, 9], lengths: [2, 2] });
  assert.deepEqual(Array.from(ab.advantages.subarray(0, 2)), Array.from(a.advantages));
  // The last token's advantage is r - V: no bootstrap from the next sequence's first value.
  assertAllClose([ab.advantages[1]], [1 - 0.4]);
  // Defaults are gamma 1, lambda 0.95: A0 = (0 + 0.4 - 0.2) + 0.95*0.6 = 0.77
  assertAllClose([a.advantages[0]], [0.77]);
});

test("bad inputs are rejected with the field at fault", () => {
  const ok = { rewards: [0, 1], values: [0.2, 0.4], lengths: [2] };
  assertInvalid(() => computeGae(ok, { gamma: 1.1 }), "gamma");
  assertInvalid(() => computeGae(ok, { lambda: -0.1 }), "lambda");
  assertInvalid(() => computeGae(ok, { lambda: NaN }), "lambda");
  assertInvalid(() => computeGae({ ...ok, values: [0.2] }, {}), "values");
  assertInvalid(() => computeGae({ ...ok, rewards: [0, 1, 2] }, {}), "rewards");
  assertInvalid(() => computeGae({ ...ok, values: [0.2, NaN] }, {}), "values[1]");
  assertInvalid(() => computeGae({ ...ok, rewards: [Infinity, 1] }, {}), "rewards[0]");
  assertInvalid(() => computeGae({ ...ok, lengths: [1, -1] }, {}), "lengths[1]");
});
