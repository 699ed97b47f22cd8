/**
 * Whitening over the whole rollout batch (never per sequence): x -> (x - mean) / sqrt(var + eps),
 * with mean and variance taken over every real response token of the batch.
 *
 * Variance is the BIASED (population) variance, sum((x - mean)^2) / n, as in lm-human-preferences'
 * `whiten` (tf.nn.moments) and OpenRLHF; TRL's `masked_whiten` uses the unbiased one (n - 1). With
 * the biased variance the whitened batch has population std sqrt(var / (var + eps)) ~ 1, and a
 * batch of one token whitens to 0 instead of dividing by zero.
 */
import { check } from "@rlhf/errors";
import { checkLengths } from "./layout";
import { checkFinite, checkFiniteArray } from "./validate";

/** Options of {@link whiten} and {@link whitenMasked}. */
export interface WhitenOptions {
  /**
   * Default true: subtract the mean. False adds the mean back after scaling, so the result is
   * (x - mean) / std + mean: rescaled but not centred (some implementations do this for rewards).
   */
  readonly shiftMean?: boolean;
  /** Added to the variance before the square root, > 0; default 1e-8. */
  readonly epsilon?: number;
}

function moments(values: ArrayLike<number>, mask: ArrayLike<number> | undefined): { mean: number; variance: number } {
  let n = 0;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    if (mask && mask[i] === 0) continue;
    sum += values[i];
    n++;
  }
  const mean = n > 0 ? sum / n : 0;
  // Two-pass variance: no cancellation when |mean| >> std.
  let ss = 0;
  for (let i = 0; i < values.length; i++) {
    if (mask && mask[i] === 0) continue;
    const d = values[i] - mean;
    ss += d * d;
  }
  return { mean, variance: n > 0 ? ss / n : 0 };
}

function epsilonOf(options: WhitenOptions): number {
  const eps = options.epsilon ?? 1e-8;
  checkFinite(eps, "epsilon");
  check(eps > 0, "epsilon", `must be > 0, got ${eps}`);
  return eps;
}

/**
 * Whitens a ragged per-token array (see `layout.ts`) over all its entries at once; `lengths`
 * only validates that the array is sum(lengths) long. Biased variance (see the file comment).
 * Computed in double precision, returned as float32. An empty batch gives an empty array.
 */
export function whiten(values: ArrayLike<number>, lengths: ArrayLike<number>, options: WhitenOptions = {}): Float32Array {
  const eps = epsilonOf(options);
  const total = checkLengths(lengths);
  check(values.length === total, "values", `has length ${values.length} but sum(lengths) is ${total}`);
  checkFiniteArray(values, "values");
  const { mean, variance } = moments(values, undefined);
  const scale = 1 / Math.sqrt(variance + eps);
  const add = options.shiftMean === false ? mean : 0;
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = (values[i] - mean) * scale + add;
  return out;
}

/**
 * Whitens a padded [B, T] array (any flat array) over the entries where `mask` is 1; entries where
 * the mask is 0 are ignored (whatever they hold) and come out as 0. Mask entries must be 0 or 1.
 * Biased variance (see the file comment). A mask of all zeros gives all zeros.
 */
export function whitenMasked(values: ArrayLike<number>, mask: ArrayLike<number>, options: WhitenOptions = {}): Float32Array {
  const eps = epsilonOf(options);
  check(mask.length === values.length, "mask", `has length ${mask.length} but values has ${values.length}`);
  for (let i = 0; i < mask.length; i++) {
    check(mask[i] === 0 || mask[i] === 1, `mask[${i}]`, `must be 0 or 1, got ${String(mask[i])}`);
    if (mask[i] === 1) checkFinite(values[i], `values[${i}]`);
  }
  const { mean, variance } = moments(values, mask);
  const scale = 1 / Math.sqrt(variance + eps);
  const add = options.shiftMean === false ? mean : 0;
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) if (mask[i] === 1) out[i] = (values[i] - mean) * scale + add;
  return out;
}
