/**
 * mulberry32 and its seed mixer: the generator of the RL maths (PPO's minibatch split), a pure
 * function of (seed, epoch).
 */
import { check } from "@rlhf/errors";
import { fmix32 } from "./hash";

/**
 * Combines a seed and an epoch (each a safe integer >= 0, all 53 bits used) into one 32-bit seed
 * for {@link Mulberry32}; nearby inputs give unrelated outputs.
 */
export function mixSeed(seed: number, epoch: number): number {
  for (const [v, field] of [[seed, "seed"], [epoch, "epoch"]] as const) {
    check(Number.isSafeInteger(v) && v >= 0, field, `must be an integer >= 0, got ${String(v)}`);
  }
  const hi = (x: number) => Math.floor(x / 4294967296) >>> 0;
  let h = fmix32((seed >>> 0) ^ 0x9e3779b9);
  h = fmix32(h ^ hi(seed) ^ 0x85ebca6b);
  h = fmix32(h ^ (epoch >>> 0) ^ 0xc2b2ae35);
  return fmix32(h ^ hi(epoch) ^ 0x27d4eb2f);
}

/**
 * mulberry32 (Tommy Ettinger's 32-bit generator): the state is one unsigned 32-bit integer,
 * advanced by 0x6D2B79F5 per draw. Only integer ops (Math.imul, shifts), so the stream is the same
 * on every JS engine and independent of the tfjs backend; never Math.random.
 */
export class Mulberry32 {
  /** The whole generator state, an unsigned 32-bit integer; assign it to restore a position. */
  state: number;

  /** @param seed any number; its low 32 bits (unsigned) become the state. */
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Next uniform unsigned 32-bit integer. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1): nextU32() / 2^32. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n) for an integer 1 <= n <= 2^32, by rejection (no modulo bias). */
  int(n: number): number {
    check(Number.isInteger(n) && n >= 1 && n <= 4294967296, "n", `must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }
}

