/**
 * Generalised Advantage Estimation (Schulman et al. 2016) on the ragged response-token layout
 * (see `layout.ts`), one episode per sequence:
 *
 *   delta_t = r_t + gamma * V_{t+1} - V_t,   V_{R} = 0 (the episode ends after the last response
 *                                             token: terminal, no bootstrap)
 *   A_t     = delta_t + gamma * lambda * A_{t+1},   A_{R} = 0
 *   G_t     = A_t + V_t                       (the critic's regression target, "returns")
 *
 * V_t is the critic's value of the state in which token t was chosen (prompt + tokens < t).
 */
import { checkRagged } from "./layout";
import { checkInRange } from "./validate";

/** Inputs of {@link computeGae}; ragged per-token arrays split by `lengths`. */
export interface GaeInput {
  /** r_t per response token (e.g. from `computeKlPenalizedRewards`). */
  readonly rewards: ArrayLike<number>;
  /** V_t per response token: the old critic's value of the state before token t. */
  readonly values: ArrayLike<number>;
  /** R_i: response tokens of sequence i. */
  readonly lengths: ArrayLike<number>;
}

/** Options of {@link computeGae}. */
export interface GaeOptions {
  /** Discount gamma in [0, 1]; default 1 (InstructGPT / TRL). */
  readonly gamma?: number;
  /** GAE lambda in [0, 1]; default 0.95 (InstructGPT / TRL). */
  readonly lambda?: number;
}

/** Output of {@link computeGae}: ragged, same layout as the inputs. */
export interface GaeResult {
  /** A_t per response token (not whitened). */
  readonly advantages: Float32Array;
  /** G_t = A_t + V_t per response token: targets of the value loss. */
  readonly returns: Float32Array;
}

/**
 * Advantages and returns by GAE, each sequence a terminal episode. Computed backwards in double
 * precision, stored as float32. Throws InvalidArgumentError naming the field on a length
 * mismatch, NaN/Infinity (`values[3]`) or gamma/lambda outside [0, 1].
 */
export function computeGae(input: GaeInput, options: GaeOptions = {}): GaeResult {
  const gamma = options.gamma ?? 1;
  const lambda = options.lambda ?? 0.95;
  checkInRange(gamma, 0, 1, "gamma");
  checkInRange(lambda, 0, 1, "lambda");
  const { rewards, values, lengths } = input;
  const offsets = checkRagged(rewards, lengths, "rewards");
  checkRagged(values, lengths, "values");

  const total = rewards.length;
  const advantages = new Float32Array(total);
  const returns = new Float32Array(total);
  const gl = gamma * lambda;
  for (let i = 0; i < lengths.length; i++) {
    let nextValue = 0; // V after the last token: terminal
    let nextAdv = 0;
    for (let t = offsets[i + 1] - 1; t >= offsets[i]; t--) {
      const v = values[t];
      const delta = rewards[t] + gamma * nextValue - v;
      const adv = delta + gl * nextAdv;
      advantages[t] = adv;
      returns[t] = adv + v;
      nextValue = v;
      nextAdv = adv;
    }
  }
  return { advantages, returns };
}
