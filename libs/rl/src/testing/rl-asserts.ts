// Test helpers for the maths tests of this package (excluded from the build).
import assert from "node:assert/strict";
import { InvalidArgumentError } from "@rlhf/errors";

/** Asserts that `fn` throws an InvalidArgumentError whose field is exactly `field`. */
export function assertInvalid(fn: () => unknown, field: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    assert.equal(e.field, field, `error field (message: ${e.message})`);
    return true;
  });
}

/** Asserts |actual - expected| <= tol (default 1e-6, float32 round-off of O(1) values). */
export function assertClose(actual: number, expected: number, tol = 1e-6, what = ""): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} expected ${expected}, got ${actual} (tol ${tol})`);
}

/** Element-wise {@link assertClose}, with equal lengths. */
export function assertAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6, what = ""): void {
  assert.equal(actual.length, expected.length, `${what} length`);
  for (let i = 0; i < expected.length; i++) assertClose(actual[i], expected[i], tol, `${what}[${i}]`);
}

/**
 * A tiny LCG (Numerical Recipes constants) for test data, independent of the library's PRNG:
 * uniform numbers in [lo, hi).
 */
export function testRandom(seed: number): (lo?: number, hi?: number) => number {
  let s = seed >>> 0;
  return (lo = 0, hi = 1) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (hi - lo) * (s / 4294967296);
  };
}
