/**
 * Small statistics for the coordinator's metrics and minibatching: masked and ragged means and
 * variances, min/max, explained variance, and a seeded minibatch split. Everything is computed in
 * double precision; selecting no entries is an error, since a metric over nothing is a bug upstream.
 */
import { InvalidArgumentError, check } from "@rlhf/errors";
import { checkLengths, sequenceOffsets } from "./layout";
import { checkFiniteArray, checkInteger } from "./validate";
import { Mulberry32, mixSeed } from "@rlhf/random";

export { Mulberry32, mixSeed } from "@rlhf/random";

/** Indices i with mask[i] === 1 after validating the mask (0/1, same length as `values`, finite selected values). */
function selected(values: ArrayLike<number>, mask: ArrayLike<number> | undefined, field = "values"): number[] {
  const out: number[] = [];
  if (mask === undefined) {
    checkFiniteArray(values, field);
    for (let i = 0; i < values.length; i++) out.push(i);
  } else {
    check(mask.length === values.length, "mask", `has length ${mask.length} but ${field} has ${values.length}`);
    for (let i = 0; i < mask.length; i++) {
      const m = mask[i];
      if (m !== 0 && m !== 1) throw new InvalidArgumentError(`mask[${i}]`, `must be 0 or 1, got ${String(m)}`);
      if (m === 0) continue;
      const v = values[i];
      if (typeof v !== "number" || !Number.isFinite(v)) throw new InvalidArgumentError(`${field}[${i}]`, `must be a finite number, got ${String(v)}`);
      out.push(i);
    }
  }
  check(out.length > 0, mask === undefined ? field : "mask", "selects no entries");
  return out;
}

function meanAt(values: ArrayLike<number>, idx: readonly number[]): number {
  let s = 0;
  for (const i of idx) s += values[i];
  return s / idx.length;
}

function varAt(values: ArrayLike<number>, idx: readonly number[], unbiased: boolean): number {
  const m = meanAt(values, idx);
  let ss = 0;
  for (const i of idx) ss += (values[i] - m) ** 2;
  const denom = unbiased ? idx.length - 1 : idx.length;
  check(denom > 0, "values", "unbiased variance needs at least 2 selected entries");
  return ss / denom;
}

/** Mean of `values` where `mask` is 1 (all entries when `mask` is omitted). */
export function maskedMean(values: ArrayLike<number>, mask?: ArrayLike<number>): number {
  return meanAt(values, selected(values, mask));
}

/**
 * Variance of `values` where `mask` is 1 (all when omitted). `unbiased` default false: divides by
 * n (population variance, as `whiten` uses); true divides by n - 1.
 */
export function maskedVar(values: ArrayLike<number>, mask?: ArrayLike<number>, unbiased = false): number {
  return varAt(values, selected(values, mask), unbiased);
}

/** Square root of {@link maskedVar}; `unbiased` default false. */
export function maskedStd(values: ArrayLike<number>, mask?: ArrayLike<number>, unbiased = false): number {
  return Math.sqrt(maskedVar(values, mask, unbiased));
}

/** Mean over every token of a ragged batch (token-weighted, not a mean of sequence means). */
export function raggedMean(values: ArrayLike<number>, lengths: ArrayLike<number>): number {
  const total = checkLengths(lengths);
  check(values.length === total, "values", `has length ${values.length} but sum(lengths) is ${total}`);
  return maskedMean(values);
}

/** Per-sequence sums of a ragged batch, e.g. a sequence's total reward or KL (nats). */
export function sequenceSums(values: ArrayLike<number>, lengths: ArrayLike<number>): number[] {
  const offsets = sequenceOffsets(lengths);
  check(values.length === offsets[lengths.length], "values", `has length ${values.length} but sum(lengths) is ${offsets[lengths.length]}`);
  checkFiniteArray(values, "values");
  const sums = new Array<number>(lengths.length);
  for (let i = 0; i < lengths.length; i++) {
    let s = 0;
    for (let t = offsets[i]; t < offsets[i + 1]; t++) s += values[t];
    sums[i] = s;
  }
  return sums;
}

/** Smallest and largest of `values` where `mask` is 1 (all when omitted). */
export function minMax(values: ArrayLike<number>, mask?: ArrayLike<number>): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const i of selected(values, mask)) {
    min = Math.min(min, values[i]);
    max = Math.max(max, values[i]);
  }
  return { min, max };
}

/**
 * Explained variance of the critic, 1 - Var(returns - values) / Var(returns), over the entries
 * where `mask` is 1 (all when omitted): 1 is a perfect critic, 0 no better than a constant, < 0
 * worse. NaN when Var(returns) is 0 (undefined), as in stable-baselines.
 */
export function explainedVariance(values: ArrayLike<number>, returns: ArrayLike<number>, mask?: ArrayLike<number>): number {
  check(values.length === returns.length, "values", `has length ${values.length} but returns has ${returns.length}`);
  const idx = selected(returns, mask, "returns");
  for (const i of idx) {
    const v = values[i];
    if (typeof v !== "number" || !Number.isFinite(v)) throw new InvalidArgumentError(`values[${i}]`, `must be a finite number, got ${String(v)}`);
  }
  const varReturns = varAt(returns, idx, false);
  if (varReturns === 0) return NaN;
  const diff = new Float64Array(returns.length);
  for (const i of idx) diff[i] = returns[i] - values[i];
  return 1 - varAt(diff, idx, false) / varReturns;
}

/**
 * Seeded minibatch split of the sequence indices 0..numSequences-1: a Fisher–Yates permutation
 * drawn from `new Mulberry32(mixSeed(seed, epoch))`, cut in order into chunks of `minibatchSize`
 * (the last one smaller when it does not divide). Deterministic and backend-independent, and a
 * function of its arguments only, so a resumed run needs to save nothing but seed and epoch.
 * Pass a global epoch counter (e.g. iteration * ppoEpochs + epoch) so every pass differs.
 *
 * @param numSequences integer >= 0 (0 gives []).
 * @param minibatchSize integer >= 1, in sequences.
 * @param seed integer >= 0 (the run seed).
 * @param epoch integer >= 0.
 */
export function minibatchIndices(numSequences: number, minibatchSize: number, seed: number, epoch: number): number[][] {
  checkInteger(numSequences, 0, "numSequences");
  checkInteger(minibatchSize, 1, "minibatchSize");
  const rng = new Mulberry32(mixSeed(seed, epoch));
  const perm = Array.from({ length: numSequences }, (_, i) => i);
  for (let i = numSequences - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
  const chunks: number[][] = [];
  for (let start = 0; start < numSequences; start += minibatchSize) chunks.push(perm.slice(start, start + minibatchSize));
  return chunks;
}
