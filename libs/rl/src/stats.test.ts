import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Mulberry32,
  explainedVariance,
  maskedMean,
  maskedStd,
  maskedVar,
  minMax,
  minibatchIndices,
  mixSeed,
  raggedMean,
  sequenceSums,
} from "./stats";
import { assertClose, assertInvalid } from "./testing/rl-asserts";

test("masked mean, variance (biased by default) and std", () => {
  // Selected: 1, 2, 4 (100 is masked out). mean 7/3; deviations -4/3, -1/3, 5/3;
  // squares sum 42/9 -> biased var 14/9, unbiased var 7/3.
  const xs = [1, 2, 100, 4];
  const mask = [1, 1, 0, 1];
  assertClose(maskedMean(xs, mask), 7 / 3, 1e-15);
  assertClose(maskedVar(xs, mask), 14 / 9, 1e-15);
  assertClose(maskedVar(xs, mask, true), 7 / 3, 1e-15);
  assertClose(maskedStd(xs, mask), Math.sqrt(14 / 9), 1e-15);
  assertClose(maskedMean(xs), 107 / 4, 1e-15);
  // A masked-out NaN is ignored; a selected one is an error naming its index.
  assertClose(maskedMean([1, NaN, 3], [1, 0, 1]), 2, 1e-15);
  assertInvalid(() => maskedMean([1, NaN, 3], [1, 1, 1]), "values[1]");
});

test("ragged mean weighs tokens; sequence sums split by lengths", () => {
  // [1] and [3, 3, 3]: token mean 10/4 = 2.5 (a mean of sequence means would be 2).
  assert.equal(raggedMean([1, 3, 3, 3], [1, 3]), 2.5);
  assert.deepEqual(sequenceSums([1, 3, 3, 3, 5], [1, 3, 0, 1]), [1, 9, 0, 5]);
  assertInvalid(() => raggedMean([1, 2], [1, 2]), "values");
  assertInvalid(() => sequenceSums([1, 2, 3], [1, 1]), "values");
});

test("min and max, masked", () => {
  assert.deepEqual(minMax([3, -2, 7, 100, -50], [1, 1, 1, 0, 0]), { min: -2, max: 7 });
  assert.deepEqual(minMax([4]), { min: 4, max: 4 });
});

test("explained variance: hand example, perfect and constant critics, undefined case", () => {
  // returns [1, 2, 3], values [1, 2, 2]: residuals [0, 0, 1], Var = 2/9; Var(returns) = 2/3
  // -> 1 - (2/9)/(2/3) = 2/3
  assertClose(explainedVariance([1, 2, 2], [1, 2, 3]), 2 / 3, 1e-15);
  assert.equal(explainedVariance([1, 2, 3], [1, 2, 3]), 1);
  assertClose(explainedVariance([5, 5, 5], [1, 2, 3]), 0, 1e-15);
  assert.ok(explainedVariance([3, 2, 1], [1, 2, 3]) < 0, "an anti-correlated critic is worse than a constant");
  // The masked-out entry (a wild value) does not count.
  assertClose(explainedVariance([1, 2, 2, 99], [1, 2, 3, -99], [1, 1, 1, 0]), 2 / 3, 1e-15);
  assert.ok(Number.isNaN(explainedVariance([1, 2], [4, 4])));
  assertInvalid(() => explainedVariance([1, 2], [1, 2, 3]), "values");
  assertInvalid(() => explainedVariance([1, NaN, 2], [1, 2, 3]), "values[1]");
});

/** mulberry32 exactly as published by its author (Tommy Ettinger), as the independent reference. */
function referenceMulberry32(a: number): () => number {
  return function () {
    let t = (a += 0x6d2b79f5);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("Mulberry32 reproduces the reference generator and its state restores a position", () => {
  for (const seed of [0, 1, 42, 0xdeadbeef]) {
    const ref = referenceMulberry32(seed);
    const r = new Mulberry32(seed);
    for (let i = 0; i < 1000; i++) assert.equal(r.next(), ref(), `seed ${seed} draw ${i}`);
  }
  const r = new Mulberry32(9);
  r.nextU32();
  const saved = r.state;
  const next = [r.nextU32(), r.int(10), r.next()];
  r.state = saved;
  assert.deepEqual([r.nextU32(), r.int(10), r.next()], next);
  assertInvalid(() => r.int(0), "n");
});

test("mixSeed separates seeds and epochs, high bits included", () => {
  const seen = new Set<number>();
  for (let s = 0; s < 20; s++) for (let e = 0; e < 20; e++) seen.add(mixSeed(s, e));
  assert.equal(seen.size, 400);
  assert.notEqual(mixSeed(2 ** 40, 0), mixSeed(0, 0));
  assert.notEqual(mixSeed(0, 2 ** 33), mixSeed(0, 0));
  assert.notEqual(mixSeed(1, 2), mixSeed(2, 1));
});

test("minibatchIndices: a permutation cut into chunks, deterministic in (seed, epoch)", () => {
  const mb = minibatchIndices(10, 4, 42, 0);
  assert.deepEqual(mb.map((c) => c.length), [4, 4, 2]);
  assert.deepEqual(mb.flat().sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(minibatchIndices(10, 4, 42, 0), mb);
  // Regression pin: changing the generator, the seed mixing or the shuffle would make a resumed
  // run draw other minibatches than the interrupted one.
  assert.deepEqual(mb, [[3, 4, 7, 8], [0, 9, 2, 6], [1, 5]]);
  assert.notDeepEqual(minibatchIndices(10, 4, 42, 1), mb);
  assert.notDeepEqual(minibatchIndices(10, 4, 43, 0), mb);

  const big = minibatchIndices(100, 100, 1, 0);
  assert.equal(big.length, 1);
  assert.notDeepEqual(big[0], Array.from({ length: 100 }, (_, i) => i), "shuffled");
  assert.deepEqual(minibatchIndices(3, 8, 1, 0).map((c) => c.length), [3]);
  assert.deepEqual(minibatchIndices(0, 4, 1, 0), []);
  assert.deepEqual(minibatchIndices(8, 4, 5, 2).map((c) => c.length), [4, 4]);
});

test("minibatchIndices draws every permutation about equally often (an unbiased shuffle)", () => {
  // 3 sequences over 6000 epochs: each of the 6 orders ~1000 times (binomial sd ~29).
  const counts = new Map<string, number>();
  for (let e = 0; e < 6000; e++) {
    const key = minibatchIndices(3, 3, 11, e)[0].join(",");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  assert.equal(counts.size, 6);
  for (const [k, c] of counts) assert.ok(Math.abs(c - 1000) < 150, `order ${k} drawn ${c} times`);
});

test("bad arguments are rejected with the field at fault", () => {
  assertInvalid(() => maskedMean([1, 2], [1, 0.5]), "mask[1]");
  assertInvalid(() => maskedMean([1, 2], [1]), "mask");
  assertInvalid(() => maskedMean([1, 2], [0, 0]), "mask");
  assertInvalid(() => maskedMean([]), "values");
  assertInvalid(() => maskedVar([1], undefined, true), "values");
  assertInvalid(() => minibatchIndices(10, 0, 1, 0), "minibatchSize");
  assertInvalid(() => minibatchIndices(-1, 4, 1, 0), "numSequences");
  assertInvalid(() => minibatchIndices(10, 4, -1, 0), "seed");
  assertInvalid(() => minibatchIndices(10, 4, 1.5, 0), "seed");
  assertInvalid(() => minibatchIndices(10, 4, 1, NaN), "epoch");
});
