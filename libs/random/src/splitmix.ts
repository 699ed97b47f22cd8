/**
 * Deterministic randomness for data: a seeded 32-bit PRNG whose whole state is one integer (so a
 * data cursor can save it), shuffles and normals. Never Math.random.
 */
import { InvalidArgumentError } from "@rlhf/errors";
import { hashString, mix32 } from "./hash";

/**
 * Combines a seed and any number of parts (numbers or strings) into one 32-bit value, e.g.
 * `seedOf(seed, "epoch", 3)`; used to derive independent streams without shared state.
 */
export function seedOf(seed: number, ...parts: (number | string)[]): number {
  if (!Number.isSafeInteger(seed)) throw new InvalidArgumentError("seed", `must be a safe integer, got ${seed}`);
  let h = mix32((seed >>> 0) ^ mix32(Math.floor(seed / 4294967296) >>> 0));
  for (const p of parts) {
    const v = typeof p === "number" ? mix32((p >>> 0) ^ mix32(Math.floor(p / 4294967296) >>> 0)) : hashString(p);
    h = mix32(h ^ v);
  }
  return h;
}

/**
 * splitmix32: the state is one unsigned 32-bit integer (`state`), advanced by a Weyl step and
 * mixed on output. Period 2^32, ample for shuffling and noise; the state can be saved and set.
 */
export class Rng {
  /** The whole generator state; assigning it restores a saved position. */
  state: number;

  /** @param seed a safe integer; `parts` derive an independent stream (see {@link seedOf}). */
  constructor(seed: number, ...parts: (number | string)[]) {
    this.state = seedOf(seed, ...parts);
  }

  /** Next uniform unsigned 32-bit integer. */
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform in the open interval (0, 1). */
  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  /** Uniform integer in [0, n), n >= 1 (rejection sampling, no modulo bias). */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) throw new InvalidArgumentError("n", `must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Standard normal by Box–Muller (uses two uniforms; keeps no spare, so `state` is everything). */
  normal(): number {
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    return r * Math.cos(2 * Math.PI * this.uniform());
  }

  /** An element chosen uniformly. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new InvalidArgumentError("items", "cannot pick from an empty list");
    return items[this.int(items.length)];
  }

  /** Fisher–Yates shuffle in place; returns `items`. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }
}

/** A seeded random permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  return rng.shuffle(p);
}

/**
 * A standard normal determined by a key alone (same key, same value, whatever the call order):
 * used for labeler noise so that rankings do not depend on which replica asked first.
 */
export function hashedNormal(seed: number, ...parts: (number | string)[]): number {
  return new Rng(seed, ...parts).normal();
}
