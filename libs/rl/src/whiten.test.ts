import { test } from "node:test";
import assert from "node:assert/strict";
import { whiten, whitenMasked } from "./whiten";
import { raggedToPadded } from "./layout";
import { assertAllClose, assertClose, assertInvalid, testRandom } from "./testing/rl-asserts";

function meanStd(xs: ArrayLike<number>): { mean: number; std: number } {
  const a = Array.from(xs);
  const mean = a.reduce((s, x) => s + x, 0) / a.length;
  const v = a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length;
  return { mean, std: Math.sqrt(v) };
}

test("worked example: biased (population) variance, not the unbiased one", () => {
  // [1, 2, 3, 4]: mean 2.5; biased var = (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25 (unbiased: 5/3)
  // (1 - 2.5) / sqrt(1.25) = -1.3416408, (2 - 2.5) / sqrt(1.25) = -0.4472136
  // (unbiased would give (1 - 2.5) / sqrt(5/3) = -1.1618950)
  const out = whiten([1, 2, 3, 4], [2, 2]);
  assertAllClose(out, [-1.3416408, -0.4472136, 0.4472136, 1.3416408], 1e-6);
  assert.ok(Math.abs(out[0] - -1.161895) > 0.1, "not the unbiased variance");
});

test("over the whole batch: mean 0, std 1, and different from whitening each sequence", () => {
  const rand = testRandom(3);
  const lengths = [1, 7, 2, 15, 4];
  const total = lengths.reduce((a, b) => a + b, 0);
  const xs = Array.from({ length: total }, (_, i) => rand(-3, 5) + (i < 10 ? 4 : 0));
  const w = whiten(xs, lengths);
  const { mean, std } = meanStd(w);
  assertClose(mean, 0, 1e-6, "mean");
  assertClose(std, 1, 1e-6, "std");

  // Per-sequence whitening of an uneven batch gives another answer (e.g. the one-token sequence
  // would become 0); the batch-wide one must not be that.
  const perSeq: number[] = [];
  let off = 0;
  for (const len of lengths) {
    const seg = xs.slice(off, off + len);
    const m = meanStd(seg);
    for (const x of seg) perSeq.push((x - m.mean) / Math.sqrt(m.std ** 2 + 1e-8));
    off += len;
  }
  assert.equal(perSeq[0], 0);
  assert.ok(Math.abs(w[0]) > 0.01, `batch-wide whitening of token 0 is ${w[0]}`);
  const maxDiff = Math.max(...perSeq.map((p, i) => Math.abs(p - w[i])));
  assert.ok(maxDiff > 0.1, `per-sequence and batch whitening should differ, max diff ${maxDiff}`);

  // The uneven two-sequence case spelled out: [10] and [0, 1, 2]: mean 13/4 = 3.25, deviations
  // 6.75, -3.25, -2.25, -1.25, squares sum 62.75, biased var 15.6875
  // -> token 0 = 6.75/sqrt(15.6875) = 1.7042249, not 0 as per-sequence whitening gives.
  assertClose(whiten([10, 0, 1, 2], [1, 3])[0], 1.7042249, 1e-6);
});

test("shiftMean false keeps the mean: (x - mean)/std + mean", () => {
  const xs = [1, 2, 3, 4];
  const kept = whiten(xs, [4], { shiftMean: false });
  assertAllClose(kept, [-1.3416408 + 2.5, -0.4472136 + 2.5, 0.4472136 + 2.5, 1.3416408 + 2.5], 1e-6);
  const { mean, std } = meanStd(kept);
  assertClose(mean, 2.5, 1e-6);
  assertClose(std, 1, 1e-6);
});

test("a single token or a constant batch whitens to 0; an empty batch to nothing", () => {
  assert.deepEqual(Array.from(whiten([5], [1])), [0]);
  assert.deepEqual(Array.from(whiten([2, 2, 2], [3])), [0, 0, 0]);
  assert.deepEqual(Array.from(whiten([2, 2], [2], { shiftMean: false })), [2, 2]);
  assert.equal(whiten([], []).length, 0);
});

test("padded variant with a mask: same numbers on real tokens, 0 on padding whatever it held", () => {
  const lengths = [3, 1, 2];
  const xs = [0.5, -1, 2, 7, 3, 3.5];
  const ragged = whiten(xs, lengths);
  const p = raggedToPadded(xs, lengths, { maxLen: 4 });
  const values = Float32Array.from(p.values);
  for (let k = 0; k < values.length; k++) if (p.mask[k] === 0) values[k] = k % 2 ? NaN : 1e6;
  const out = whitenMasked(values, p.mask);
  const padded = raggedToPadded(ragged, lengths, { maxLen: 4 });
  assertAllClose(out, padded.values, 1e-6);
  for (let k = 0; k < out.length; k++) if (p.mask[k] === 0) assert.equal(out[k], 0, `pad ${k}`);

  const kept = whitenMasked(values, p.mask, { shiftMean: false });
  for (let k = 0; k < kept.length; k++) if (p.mask[k] === 0) assert.equal(kept[k], 0, `pad ${k} with shiftMean false`);
  assertAllClose(kept, raggedToPadded(whiten(xs, lengths, { shiftMean: false }), lengths, { maxLen: 4 }).values, 1e-6);

  assert.deepEqual(Array.from(whitenMasked([1, 2], [0, 0])), [0, 0]);
});

test("bad inputs are rejected with the field at fault", () => {
  assertInvalid(() => whiten([1, 2, 3], [2]), "values");
  assertInvalid(() => whiten([1, NaN], [2]), "values[1]");
  assertInvalid(() => whiten([1, 2], [2], { epsilon: 0 }), "epsilon");
  assertInvalid(() => whitenMasked([1, 2], [1]), "mask");
  assertInvalid(() => whitenMasked([1, 2, 3], [1, 2, 0]), "mask[1]");
  assertInvalid(() => whitenMasked([1, Infinity, 3], [1, 1, 0]), "values[1]");
});
