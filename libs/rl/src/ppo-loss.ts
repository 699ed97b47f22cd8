/**
 * The PPO losses of one minibatch, on flat tensors of response tokens ([N]: every response token
 * of the minibatch, in the response-token layout; prompt tokens and padding never appear).
 * The statistics (clip fractions, approximate KL) come from the same forward values; gradients
 * are taken of the losses only. Losses are means over the N tokens.
 */
import * as tf from "@tensorflow/tfjs-core";
import { check } from "@rlhf/errors";

function sameLength(field: string, t: tf.Tensor, n: number): void {
  check(t.rank === 1 && t.shape[0] === n, field, `must be a 1-D tensor of ${n} response tokens, got [${t.shape.join(", ")}]`);
}

/** The clipped surrogate of one minibatch. */
export interface PolicyLoss {
  /** mean(max(-A * ratio, -A * clip(ratio, 1 - e, 1 + e))), differentiable with respect to `logprobs`. */
  loss: tf.Scalar;
  /** Fraction of tokens with |ratio - 1| > e. */
  clipFraction: tf.Scalar;
  /** k3 estimate of KL(pi_old || pi): mean((ratio - 1) - log ratio), nats per token. */
  approxKl: tf.Scalar;
}

/**
 * PPO's clipped policy loss (Schulman et al. 2017), ratio = exp(logprobs - oldLogprobs).
 * @param logprobs log pi(a_t|s_t) under the current policy, [N]
 * @param oldLogprobs log pi_old(a_t|s_t) at rollout time, [N]
 * @param advantages A_t (already whitened), [N]
 * @param clipRange e in (0, 1]
 */
export function ppoPolicyLoss(logprobs: tf.Tensor1D, oldLogprobs: tf.Tensor1D, advantages: tf.Tensor1D, clipRange: number): PolicyLoss {
  const n = logprobs.shape[0];
  check(n >= 1, "logprobs", "must hold at least one response token");
  sameLength("oldLogprobs", oldLogprobs, n);
  sameLength("advantages", advantages, n);
  check(Number.isFinite(clipRange) && clipRange > 0 && clipRange <= 1, "clipRange", `must be in (0, 1], got ${clipRange}`);
  return tf.tidy(() => {
    const logRatio = tf.sub(logprobs, oldLogprobs); // [N]
    const ratio = tf.exp(logRatio); // [N]
    const unclipped = tf.mul(tf.neg(advantages), ratio); // [N]
    const clipped = tf.mul(tf.neg(advantages), tf.clipByValue(ratio, 1 - clipRange, 1 + clipRange)); // [N]
    const loss = tf.mean(tf.maximum(unclipped, clipped)) as tf.Scalar;
    // Statistics only: gradients are taken of `loss` alone, so these add nothing to them.
    const r = ratio;
    const clipFraction = tf.mean(tf.cast(tf.greater(tf.abs(tf.sub(r, 1)), clipRange), "float32")) as tf.Scalar;
    const approxKl = tf.mean(tf.sub(tf.sub(r, 1), logRatio)) as tf.Scalar;
    return { loss, clipFraction, approxKl };
  });
}

/** The value loss of one minibatch. */
export interface ValueLoss {
  /** 0.5 * mean(max((V - R)^2, (V_clip - R)^2)), squared reward units, differentiable in `values`. */
  loss: tf.Scalar;
  /** Fraction of tokens whose clipped term was strictly the larger; 0 without clipping. */
  clipFraction: tf.Scalar;
}

/**
 * The critic's loss with clipping relative to the OLD values: V_clip = old + clip(V - old, -c, c).
 * `clipRange` 0 disables clipping (plain 0.5 * mean((V - R)^2)).
 * @param values V(s_t) now, [N]; @param oldValues V(s_t) at rollout time, [N]; @param returns R_t, [N]
 */
export function ppoValueLoss(values: tf.Tensor1D, oldValues: tf.Tensor1D, returns: tf.Tensor1D, clipRange: number): ValueLoss {
  const n = values.shape[0];
  check(n >= 1, "values", "must hold at least one response token");
  sameLength("oldValues", oldValues, n);
  sameLength("returns", returns, n);
  check(Number.isFinite(clipRange) && clipRange >= 0, "clipRange", `must be >= 0, got ${clipRange}`);
  return tf.tidy(() => {
    const plain = tf.square(tf.sub(values, returns)); // [N]
    if (clipRange === 0) return { loss: tf.mul(0.5, tf.mean(plain)) as tf.Scalar, clipFraction: tf.scalar(0) };
    const vClip = tf.add(oldValues, tf.clipByValue(tf.sub(values, oldValues), -clipRange, clipRange)); // [N]
    const clippedSq = tf.square(tf.sub(vClip, returns)); // [N]
    const loss = tf.mul(0.5, tf.mean(tf.maximum(plain, clippedSq))) as tf.Scalar;
    const clipFraction = tf.mean(tf.cast(tf.greater(clippedSq, plain), "float32")) as tf.Scalar;
    return { loss, clipFraction };
  });
}

/**
 * Per-row entropy -sum(p log p) of softmax(logits / temperature), nats, from logits [N, V].
 * Differentiable.
 */
export function entropyFromLogits(logits: tf.Tensor2D, temperature = 1): tf.Tensor1D {
  check(Number.isFinite(temperature) && temperature > 0, "temperature", `must be > 0, got ${temperature}`);
  return tf.tidy(() => {
    const logp = tf.logSoftmax(temperature === 1 ? logits : tf.div(logits, temperature)); // [N, V]
    return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1)) as tf.Tensor1D; // [N]
  });
}
