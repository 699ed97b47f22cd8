/**
 * Per-token rewards of PPO with a KL penalty (Ziegler et al. 2019; InstructGPT, Ouyang et al. 2022):
 *
 *   k1_t     = logp_t - logpRef_t                      (nats; the k1 estimator of KL(pi_RL || pi_SFT))
 *   reward_t = -beta * k1_t                            (every response token t)
 *   reward_T += r(x, y)                                (T = the last response token: EOS, or the
 *                                                       last token kept at max_new_tokens)
 *   reward_T += missingEosPenalty                      (only when the sequence has no EOS)
 *
 * All arrays are in the ragged response-token layout (see `layout.ts`), so the score can only land
 * on a real response token, never on padding after EOS.
 */
import { check } from "@rlhf/errors";
import { checkLengths } from "./layout";
import { checkFinite, checkFiniteArray } from "./validate";

/** Inputs of {@link computeKlPenalizedRewards}; per-token arrays are ragged, split by `lengths`. */
export interface KlPenalizedRewardsInput {
  /** log pi_RL(a_t|s_t) of the policy that sampled the rollout (old logprobs), nats, per token. */
  readonly logprobs: ArrayLike<number>;
  /** log pi_SFT(a_t|s_t) of the frozen reference model, nats, per token. */
  readonly logprobsRef: ArrayLike<number>;
  /** r(x, y): the reward model's score of each sequence, one per sequence. */
  readonly scores: ArrayLike<number>;
  /** Whether sequence i ended with EOS (false: cut at max_new_tokens), one per sequence. */
  readonly eos: ArrayLike<boolean>;
  /** R_i: response tokens of sequence i (EOS included), each >= 1. */
  readonly lengths: ArrayLike<number>;
}

/** Options of {@link computeKlPenalizedRewards}. */
export interface KlPenalizedRewardsOptions {
  /** KL coefficient beta >= 0 (per nat of k1), usually `KlController.beta`. InstructGPT: 0.02. */
  readonly beta: number;
  /**
   * ADDED to the last token's reward of every sequence without EOS, so it must be <= 0: pass e.g.
   * -1 to penalise one unit of RM score. Default 0 (no penalty).
   */
  readonly missingEosPenalty?: number;
}

/** Batch summaries of {@link computeKlPenalizedRewards}, for metrics and the KL controller. */
export interface KlPenalizedRewardsStats {
  /** Mean of k1 over all response tokens of the batch, nats per token (`objective/kl_per_token`). */
  readonly meanTokenKl: number;
  /**
   * Mean over sequences of the per-sequence sum of k1, nats per sequence (`objective/kl`). This is
   * the `observedKl` an adaptive KL controller expects.
   */
  readonly meanSequenceKl: number;
  /** Mean RM score r(x, y) over sequences, before any missing-EOS penalty (`objective/score`). */
  readonly meanScore: number;
  /** Mean over sequences of sum_t(-beta * k1_t) (`objective/non_score_reward`). */
  readonly meanNonScoreReward: number;
  /** Fraction of sequences without EOS, in [0, 1]. */
  readonly missingEosFraction: number;
}

/** Output of {@link computeKlPenalizedRewards}. */
export interface KlPenalizedRewards {
  /** reward_t per response token, ragged (same layout as the inputs). */
  readonly rewards: Float32Array;
  /** k1_t = logp_t - logpRef_t per response token, nats, ragged. */
  readonly kl: Float32Array;
  /** Per-sequence sum of k1_t, nats per sequence (computed in double precision). */
  readonly klSums: number[];
  /** Batch summaries. */
  readonly stats: KlPenalizedRewardsStats;
}

/**
 * Per-token rewards with the KL penalty, the score on the last response token, and the
 * missing-EOS penalty. Computed in double precision, stored as float32.
 *
 * Throws InvalidArgumentError naming the field when lengths disagree (`logprobs`, `logprobsRef`,
 * `scores`, `eos`), the batch is empty, a length is < 1, an input is NaN/Infinity (`logprobs[17]`), beta < 0 or
 * missingEosPenalty > 0.
 */
export function computeKlPenalizedRewards(
  input: KlPenalizedRewardsInput,
  options: KlPenalizedRewardsOptions,
): KlPenalizedRewards {
  const { logprobs, logprobsRef, scores, eos, lengths } = input;
  const beta = options.beta;
  const missingEosPenalty = options.missingEosPenalty ?? 0;
  checkFinite(beta, "beta");
  check(beta >= 0, "beta", `must be >= 0, got ${beta}`);
  checkFinite(missingEosPenalty, "missingEosPenalty");
  check(missingEosPenalty <= 0, "missingEosPenalty", `is added to the reward, so it must be <= 0, got ${missingEosPenalty}`);

  // Every sequence needs a last token to carry its score.
  const total = checkLengths(lengths, "lengths", 1);
  const batchSize = lengths.length;
  check(batchSize > 0, "lengths", "must hold at least one sequence");
  check(logprobs.length === total, "logprobs", `has length ${logprobs.length} but sum(lengths) is ${total}`);
  check(logprobsRef.length === total, "logprobsRef", `has length ${logprobsRef.length} but sum(lengths) is ${total}`);
  check(scores.length === batchSize, "scores", `has length ${scores.length} but there are ${batchSize} sequences`);
  check(eos.length === batchSize, "eos", `has length ${eos.length} but there are ${batchSize} sequences`);
  checkFiniteArray(logprobs, "logprobs");
  checkFiniteArray(logprobsRef, "logprobsRef");
  checkFiniteArray(scores, "scores");
  for (let i = 0; i < batchSize; i++) check(typeof eos[i] === "boolean", `eos[${i}]`, `must be a boolean, got ${String(eos[i])}`);

  const rewards = new Float32Array(total);
  const kl = new Float32Array(total);
  const klSums = new Array<number>(batchSize);
  let klTotal = 0;
  let scoreTotal = 0;
  let missing = 0;
  let t = 0;
  for (let i = 0; i < batchSize; i++) {
    let seqKl = 0;
    let last = 0;
    for (let k = 0; k < lengths[i]; k++, t++) {
      const k1 = logprobs[t] - logprobsRef[t];
      seqKl += k1;
      kl[t] = k1;
      last = 0 - beta * k1; // 0 - x, not -x: no -0 rewards when beta or k1 is 0
      rewards[t] = last;
    }
    // Rewrite the last token from its double-precision value, so the sum is rounded only once.
    last += scores[i];
    if (!eos[i]) {
      last += missingEosPenalty;
      missing++;
    }
    rewards[t - 1] = last;
    klSums[i] = seqKl;
    klTotal += seqKl;
    scoreTotal += scores[i];
  }
  const stats: KlPenalizedRewardsStats = {
    meanTokenKl: klTotal / total,
    meanSequenceKl: klTotal / batchSize,
    meanScore: scoreTotal / batchSize,
    meanNonScoreReward: (0 - beta * klTotal) / batchSize,
    missingEosFraction: missing / batchSize,
  };
  return { rewards, kl, klSums, stats };
}
