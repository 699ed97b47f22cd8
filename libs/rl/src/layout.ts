/**
 * The response-token layout and its conversion to and from a padded [B, T] layout.
 *
 * Ragged ("response-token") layout: sequence i of a batch has R_i response tokens; the per-token
 * values of all sequences are concatenated in batch order into one array of length sum(R_i), and
 * `lengths[i] = R_i` describes the split. Token k of sequence i is its k-th response token; a
 * sequence ends at its EOS (included) or is cut at max_new_tokens, and nothing after that exists.
 *
 * Padded layout: a row-major [B, T] array with T >= max(R_i) and a 0/1 mask of the same shape;
 * row i holds the R_i response tokens of sequence i left-aligned (mask 1), then padding (mask 0).
 */
import { InvalidArgumentError, check } from "@rlhf/errors";
import { checkFinite, checkFiniteArray, checkInteger } from "./validate";

/** A [batchSize, maxLen] row-major batch with its 0/1 mask (1 = a real response token). */
export interface PaddedBatch {
  /** Values, row-major [batchSize, maxLen]; 0 (or the chosen pad value) where mask is 0. */
  readonly values: Float32Array;
  /** 1 on real response tokens, 0 on padding; [batchSize, maxLen], each row 1...1 0...0. */
  readonly mask: Float32Array;
  /** B: number of sequences (rows). */
  readonly batchSize: number;
  /** T: row length, >= every sequence length. */
  readonly maxLen: number;
}

/** A ragged batch: values concatenated in batch order, split by `lengths`. */
export interface RaggedBatch {
  /** Per-token values, length sum(lengths). */
  readonly values: Float32Array;
  /** R_i: response tokens per sequence. */
  readonly lengths: number[];
}

/**
 * Validates `lengths` (each a non-negative integer; `minLength` raises the floor, default 0) and
 * returns their sum, the number of tokens of the batch. Errors name `field[i]`.
 */
export function checkLengths(lengths: ArrayLike<number>, field = "lengths", minLength = 0): number {
  let total = 0;
  for (let i = 0; i < lengths.length; i++) {
    checkInteger(lengths[i], minLength, `${field}[${i}]`);
    total += lengths[i];
  }
  return total;
}

/**
 * Start offset of every sequence in the ragged layout, plus the total at the end:
 * `offsets[i]` is the index of token 0 of sequence i and `offsets[B]` = sum(lengths).
 * Lengths are validated as by {@link checkLengths}.
 */
export function sequenceOffsets(lengths: ArrayLike<number>, field = "lengths"): number[] {
  checkLengths(lengths, field);
  const offsets = new Array<number>(lengths.length + 1);
  offsets[0] = 0;
  for (let i = 0; i < lengths.length; i++) offsets[i + 1] = offsets[i] + lengths[i];
  return offsets;
}

/** Options of {@link raggedToPadded}. */
export interface RaggedToPaddedOptions {
  /** Row length T; default max(lengths) (0 for an empty batch). Must be >= every length. */
  maxLen?: number;
  /** Value written where the mask is 0; default 0 (rewards/values/advantages after EOS are 0). */
  padValue?: number;
}

/**
 * Ragged -> padded: row i gets the `lengths[i]` values of sequence i, left-aligned, then
 * `padValue` (default 0); the mask is 1 exactly on the copied entries.
 */
export function raggedToPadded(
  values: ArrayLike<number>,
  lengths: ArrayLike<number>,
  options: RaggedToPaddedOptions = {},
): PaddedBatch {
  const total = checkLengths(lengths);
  check(values.length === total, "values", `has length ${values.length} but sum(lengths) is ${total}`);
  let longest = 0;
  for (let i = 0; i < lengths.length; i++) longest = Math.max(longest, lengths[i]);
  const maxLen = options.maxLen ?? longest;
  checkInteger(maxLen, 0, "maxLen");
  check(maxLen >= longest, "maxLen", `is ${maxLen} but the longest sequence has ${longest} tokens`);
  const padValue = options.padValue ?? 0;
  checkFinite(padValue, "padValue");
  const batchSize = lengths.length;
  const out = new Float32Array(batchSize * maxLen);
  const mask = new Float32Array(batchSize * maxLen);
  if (padValue !== 0) out.fill(padValue);
  let src = 0;
  for (let i = 0; i < batchSize; i++) {
    const row = i * maxLen;
    for (let t = 0; t < lengths[i]; t++) {
      out[row + t] = values[src++];
      mask[row + t] = 1;
    }
  }
  return { values: out, mask, batchSize, maxLen };
}

/**
 * Sequence lengths of a padded [batchSize, maxLen] mask. Every mask entry must be 0 or 1 and every
 * row of the form 1...1 0...0 (response tokens are left-aligned and nothing exists after EOS);
 * otherwise the error names the first offending `mask[index]`.
 */
export function lengthsFromMask(mask: ArrayLike<number>, batchSize: number, maxLen: number): number[] {
  checkInteger(batchSize, 0, "batchSize");
  checkInteger(maxLen, 0, "maxLen");
  check(mask.length === batchSize * maxLen, "mask", `has length ${mask.length} but batchSize*maxLen is ${batchSize * maxLen}`);
  const lengths = new Array<number>(batchSize);
  for (let i = 0; i < batchSize; i++) {
    let len = 0;
    for (let t = 0; t < maxLen; t++) {
      const k = i * maxLen + t;
      const m = mask[k];
      if (m !== 0 && m !== 1) throw new InvalidArgumentError(`mask[${k}]`, `must be 0 or 1, got ${String(m)}`);
      if (m === 1) {
        if (len !== t) throw new InvalidArgumentError(`mask[${k}]`, `row ${i} has a 1 after a 0: rows must be 1...1 0...0`);
        len++;
      }
    }
    lengths[i] = len;
  }
  return lengths;
}

/**
 * Padded -> ragged: keeps the entries where the mask is 1, in batch order, and returns them with
 * the row lengths. The mask is checked as by {@link lengthsFromMask}; kept values must be finite
 * (padding is ignored, whatever it holds).
 */
export function paddedToRagged(
  values: ArrayLike<number>,
  mask: ArrayLike<number>,
  batchSize: number,
  maxLen: number,
): RaggedBatch {
  const lengths = lengthsFromMask(mask, batchSize, maxLen);
  check(values.length === mask.length, "values", `has length ${values.length} but mask has ${mask.length}`);
  let total = 0;
  for (const len of lengths) total += len;
  const out = new Float32Array(total);
  let dst = 0;
  for (let i = 0; i < batchSize; i++) {
    for (let t = 0; t < lengths[i]; t++) {
      const k = i * maxLen + t;
      const v = values[k];
      if (typeof v !== "number" || !Number.isFinite(v)) throw new InvalidArgumentError(`values[${k}]`, `must be a finite number, got ${String(v)}`);
      out[dst++] = v;
    }
  }
  return { values: out, lengths };
}

/**
 * Checks a ragged per-token array against `lengths`: its length must be sum(lengths) and every
 * entry finite. Returns the sequence offsets (see {@link sequenceOffsets}).
 */
export function checkRagged(values: ArrayLike<number>, lengths: ArrayLike<number>, field: string): number[] {
  const offsets = sequenceOffsets(lengths);
  const total = offsets[offsets.length - 1];
  check(values.length === total, field, `has length ${values.length} but sum(lengths) is ${total}`);
  checkFiniteArray(values, field);
  return offsets;
}
