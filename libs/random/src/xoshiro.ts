/**
 * Deterministic random numbers in plain JS, so initial weights are bit-identical on every backend,
 * platform and run: xoshiro128** seeded through splitmix32, normals by Box–Muller.
 * (V8's Math.log/cos/sin/sqrt are fdlibm ports, identical everywhere.)
 */
import { InvalidArgumentError } from "@rlhf/errors";
import { fnv1a32, mix32 } from "./hash";

/** xoshiro128** (Blackman & Vigna): 32-bit outputs, period 2^128 - 1. */
export class Xoshiro128ss {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | undefined;

  /**
   * @param seed a safe integer (negative allowed)
   * @param stream a name giving an independent stream for the same seed (e.g. a parameter name)
   */
  constructor(seed: number, stream = "") {
    if (!Number.isSafeInteger(seed)) throw new InvalidArgumentError("seed", `must be a safe integer, got ${seed}`);
    const lo = seed >>> 0; // low 32 bits (two's complement for negatives)
    const hi = Math.floor(seed / 4294967296) >>> 0;
    let x = mix32(lo ^ mix32(hi ^ mix32(fnv1a32(stream))));
    const next = (): number => (x = mix32(x));
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in the open interval (0, 1), 32-bit resolution. */
  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  /** Standard normal (Box–Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== undefined) {
      const z = this.spare;
      this.spare = undefined;
      return z;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Fills `out` with normal(0, std) values rounded to float32. */
  fillNormal(out: Float32Array, std: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = std * this.normal();
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
