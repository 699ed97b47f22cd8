/**
 * The reward model's ranking loss, free of gRPC: a group is one prompt with K responses and
 * their ranks (lower is better). Every response of every group in a batch is scored in ONE
 * forward (sum of K rows), and every untied pair of a group is read from those scores:
 *
 *   loss(group) = -1/N * sum over untied pairs (w better than l) of log sigmoid(r_w - r_l)
 *
 * N = number of untied pairs (C(K,2) without ties); the batch loss is the mean over groups.
 */
import * as tf from "@tensorflow/tfjs-core";
import { logSigmoid } from "@rlhf/compute";

/** One prompt with K >= 2 responses (response tokens only) and one rank per response. */
export interface RankedGroup {
  prompt: readonly number[];
  responses: readonly (readonly number[])[];
  /** Lower is better; equal ranks tie (that pair is skipped). */
  ranks: readonly number[];
}

/** What scores right-padded rows [B, T] at one position each: `ScalarHeadModel.scoresAt`. */
export interface Scorer {
  scoresAt(tokens: tf.Tensor2D, positions: readonly number[]): tf.Tensor1D;
}

/** Untied pairs of a ranking as [winner, loser] indices (winner has the lower rank). */
export function rankingPairs(ranks: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < ranks.length; i++) {
    for (let j = i + 1; j < ranks.length; j++) {
      if (ranks[i] < ranks[j]) out.push([i, j]);
      else if (ranks[j] < ranks[i]) out.push([j, i]);
    }
  }
  return out;
}

/** Packed sequences (prompt + response) of a list of groups, in group order. */
export function groupSequences(groups: readonly RankedGroup[]): number[][] {
  return groups.flatMap((g) => g.responses.map((r) => [...g.prompt, ...r]));
}

/**
 * Right-pads sequences to the longest and scores each at its last real token (length - 1):
 * causal attention means the pads after it cannot change it. One `scoresAt` call. Returns [B].
 */
export function scoreSequences(scorer: Scorer, seqs: readonly (readonly number[])[], padId = 0): tf.Tensor1D {
  const T = Math.max(...seqs.map((s) => s.length));
  const flat = new Int32Array(seqs.length * T).fill(padId);
  seqs.forEach((s, b) => flat.set(s, b * T));
  return tf.tidy(() => scorer.scoresAt(tf.tensor2d(flat, [seqs.length, T], "int32"), seqs.map((s) => s.length - 1)));
}

/** Scores of every response of every group, from ONE forward over sum(K) rows. Returns [sum K]. */
export function groupedScores(scorer: Scorer, groups: readonly RankedGroup[]): tf.Tensor1D {
  return scoreSequences(scorer, groupSequences(groups));
}

/**
 * Mean over groups of each group's ranking loss, from the flat scores of `groupedScores`
 * (groups laid out one after the other). Groups without untied pairs are left out of the mean;
 * with none at all the loss is 0. Differentiable in `scores`.
 */
export function rankingLoss(scores: tf.Tensor1D, groups: readonly RankedGroup[]): tf.Scalar {
  const w: number[] = [];
  const l: number[] = [];
  const weight: number[] = [];
  let offset = 0;
  const used = groups.filter((g) => rankingPairs(g.ranks).length > 0).length;
  for (const g of groups) {
    const pairs = rankingPairs(g.ranks);
    for (const [a, b] of pairs) {
      w.push(offset + a);
      l.push(offset + b);
      weight.push(1 / (pairs.length * used));
    }
    offset += g.responses.length;
  }
  if (w.length === 0) return tf.scalar(0);
  return tf.tidy(() => {
    const diff = tf.sub(tf.gather(scores, tf.tensor1d(w, "int32")), tf.gather(scores, tf.tensor1d(l, "int32"))); // [P]
    return tf.neg(tf.sum(tf.mul(logSigmoid(diff), tf.tensor1d(weight)))) as tf.Scalar;
  });
}

/** Pairwise statistics of host scores laid out as in `groupedScores`. */
export interface PairStats {
  /** Groups with at least one untied pair. */
  groups: number;
  pairs: number;
  /** Pairs with r_w > r_l. */
  correct: number;
  /** Pairs with r_w == r_l exactly. */
  scoreTies: number;
  /** Mean group loss over `groups`, nats (float64 on the host); 0 without groups. */
  loss: number;
}

/** -log sigmoid(d), stable for large |d|. */
export function pairLoss(d: number): number {
  return d > 0 ? Math.log1p(Math.exp(-d)) : -d + Math.log1p(Math.exp(d));
}

/** Counts and mean loss of the untied pairs, from host scores (no gradient). */
export function pairStats(scores: ArrayLike<number>, groups: readonly RankedGroup[]): PairStats {
  const s: PairStats = { groups: 0, pairs: 0, correct: 0, scoreTies: 0, loss: 0 };
  let offset = 0;
  let lossSum = 0;
  for (const g of groups) {
    const pairs = rankingPairs(g.ranks);
    if (pairs.length > 0) {
      s.groups++;
      let gl = 0;
      for (const [a, b] of pairs) {
        const d = scores[offset + a] - scores[offset + b];
        s.pairs++;
        if (d > 0) s.correct++;
        else if (d === 0) s.scoreTies++;
        gl += pairLoss(d);
      }
      lossSum += gl / pairs.length;
    }
    offset += g.responses.length;
  }
  s.loss = s.groups > 0 ? lossSum / s.groups : 0;
  return s;
}
