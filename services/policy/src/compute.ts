/**
 * The policy service's tensor work on sequences in the response-token layout (see policy.proto):
 * sequence i of length L with P prompt tokens has R = L - P response tokens, and its k-th value
 * is about the token at position p = P + k: log pi(tokens[p] | tokens[<p]) read from the logits
 * at position p - 1, and the critic's value read at position p - 1 (the state the token was
 * chosen in). Batches run in micro-batches of at most `microBatchTokens` padded tokens.
 */
import * as tf from "@tensorflow/tfjs-core";
import { microBatches, splitRows, type GPT2, type ScalarHeadModel, type Trainer } from "@rlhf/model";
import { targetLogProbs, type NamedHostTensors } from "@rlhf/compute";
import { entropyFromLogits, ppoPolicyLoss, ppoValueLoss } from "@rlhf/rl";
import { yieldToEventLoop } from "@rlhf/grpc-kit";

/** Validated sequences with their prompt lengths (1 <= P <= L). */
export interface Seqs {
  tokens: Int32Array;
  lengths: readonly number[];
  promptLengths: readonly number[];
}

/** Sequences as arrays, for padding. */
function rowsOf(s: Seqs): Int32Array[] {
  return splitRows(s.tokens, s.lengths);
}

/** Response tokens per sequence. */
export function responseLengths(s: Seqs): number[] {
  return s.lengths.map((L, i) => L - s.promptLengths[i]);
}

/** One padded micro-batch and where its response tokens sit. */
interface Padded {
  /** int32 [B, T], right-padded with id 0 (causal attention ignores it). */
  tokens: tf.Tensor2D;
  T: number;
  /** Row of [B*(T-1), V] logits (= row of [B*T] values) predicting each response token, in order. */
  at: Int32Array;
  /** The response tokens themselves (the targets), in order. */
  targets: Int32Array;
}

function pad(rows: readonly Int32Array[], prompts: readonly number[]): Padded {
  const T = Math.max(...rows.map((r) => r.length));
  const data = new Int32Array(rows.length * T);
  const at: number[] = [];
  const targets: number[] = [];
  rows.forEach((r, b) => {
    data.set(r, b * T);
    for (let p = prompts[b]; p < r.length; p++) {
      at.push(b * (T - 1) + p - 1);
      targets.push(r[p]);
    }
  });
  return { tokens: tf.tensor2d(data, [rows.length, T], "int32"), T, at: Int32Array.from(at), targets: Int32Array.from(targets) };
}

/** Same positions in a [B, T] layout (values): row b*(T-1)+q becomes b*T+q. */
function valueIndex(at: Int32Array, T: number): Int32Array {
  return at.map((i) => Math.floor(i / (T - 1)) * T + (i % (T - 1)));
}

/**
 * Log-probabilities [n] of the response tokens and the rows of tempered logits they came from
 * ([n, V], for the entropy). Differentiable.
 */
function responseLogProbs(policy: GPT2, pd: Padded, temperature: number): { logp: tf.Tensor1D; z: tf.Tensor2D } {
  const [B, T] = pd.tokens.shape;
  const V = policy.config.vocabSize;
  const inputs = tf.slice(pd.tokens, [0, 0], [B, T - 1]); // [B, T-1]
  const logits = tf.reshape(policy.forward(inputs), [B * (T - 1), V]); // [B*(T-1), V]
  const rows = tf.gather(logits, tf.tensor1d(pd.at, "int32")) as tf.Tensor2D; // [n, V]
  const z = temperature === 1 ? rows : tf.div(rows, temperature); // [n, V]
  // log softmax(rows / T) at the targets: one fused kernel on the torch backend.
  const logp = targetLogProbs(rows, tf.tensor1d(pd.targets, "int32"), temperature); // [n]
  return { logp, z: z as tf.Tensor2D };
}

/** Evaluate: per-token log-probabilities and (with a critic) values, response-token layout. */
export function evaluateSequences(policy: GPT2, critic: ScalarHeadModel | undefined, s: Seqs, temperature: number, microBatchTokens: number): { logprobs: Float32Array; values?: Float32Array } {
  const rows = rowsOf(s);
  const total = responseLengths(s).reduce((a, r) => a + r, 0);
  const logprobs = new Float32Array(total);
  const values = critic ? new Float32Array(total) : undefined;
  let o = 0;
  for (const group of microBatches(s.lengths, microBatchTokens)) {
    const pd = pad(
      group.map((i) => rows[i]),
      group.map((i) => s.promptLengths[i]),
    );
    try {
      const n = pd.at.length;
      if (n > 0) {
        const lp = tf.tidy(() => responseLogProbs(policy, pd, temperature).logp);
        logprobs.set(lp.dataSync(), o);
        lp.dispose();
        if (critic && values) {
          const v = tf.tidy(() => tf.gather(tf.reshape(critic.values(pd.tokens), [-1]), tf.tensor1d(valueIndex(pd.at, pd.T), "int32")));
          values.set(v.dataSync(), o);
          v.dispose();
        }
      }
      o += n;
    } finally {
      pd.tokens.dispose();
    }
  }
  return { logprobs, values };
}

/** One PPO minibatch in the response-token layout. */
export interface PpoBatch {
  seqs: Seqs;
  oldLogprobs: Float32Array;
  oldValues: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
}

/** Hyperparameters of one update (validated). */
export interface PpoSettings {
  clipRange: number;
  valueClipRange: number;
  valueLossCoef: number;
  entropyCoef: number;
  temperature: number;
  policyLr: number;
  policyMaxGradNorm: number;
  criticLr: number;
  criticMaxGradNorm: number;
  microBatchTokens: number;
}

/** Statistics of one update, means over the minibatch's response tokens. */
export interface PpoStats {
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  clipFraction: number;
  valueClipFraction: number;
  approxKl: number;
  policyGradNorm: number;
  criticGradNorm: number;
  responseTokens: number;
}

/**
 * One PPO update: gradients of (clipped policy loss - entropy_coef * entropy) for the policy,
 * plus `ptx` (gradients of gamma * pretraining LM loss) when given, and of value_loss_coef *
 * clipped value loss for the critic, summed over micro-batches (each weighted by its share of
 * the tokens, so the sum is the gradient of the minibatch mean); then one clipped AdamW step of
 * each. Statistics come from the forward pass before the step.
 */
export async function ppoStep(policy: GPT2, critic: ScalarHeadModel, trainers: { policy: Trainer; critic: Trainer }, batch: PpoBatch, s: PpoSettings, ptx?: NamedHostTensors): Promise<PpoStats> {
  const rows = rowsOf(batch.seqs);
  const N = batch.oldLogprobs.length;
  const sums = { policyLoss: 0, valueLoss: 0, entropy: 0, clipFraction: 0, valueClipFraction: 0, approxKl: 0 };
  let o = 0;
  try {
    for (const [i, group] of microBatches(batch.seqs.lengths, s.microBatchTokens).entries()) {
      // Health checks and cancellations get through between micro-batches.
      if (i > 0) await yieldToEventLoop();
      const pd = pad(
        group.map((i) => rows[i]),
        group.map((i) => batch.seqs.promptLengths[i]),
      );
      const n = pd.at.length;
      const slice = (a: Float32Array) => tf.tensor1d(a.subarray(o, o + n));
      const w = n / N;
      try {
        trainers.policy.accumulate(() => {
          const { logp, z } = responseLogProbs(policy, pd, s.temperature);
          const pl = ppoPolicyLoss(logp, slice(batch.oldLogprobs), slice(batch.advantages), s.clipRange);
          const ent = tf.mean(entropyFromLogits(z));
          sums.policyLoss += pl.loss.dataSync()[0] * w;
          sums.clipFraction += pl.clipFraction.dataSync()[0] * w;
          sums.approxKl += pl.approxKl.dataSync()[0] * w;
          sums.entropy += ent.dataSync()[0] * w;
          const loss = s.entropyCoef > 0 ? tf.sub(pl.loss, tf.mul(ent, s.entropyCoef)) : pl.loss;
          return tf.mul(loss, w) as tf.Scalar;
        });
        trainers.critic.accumulate(() => {
          const v = tf.gather(tf.reshape(critic.values(pd.tokens), [-1]), tf.tensor1d(valueIndex(pd.at, pd.T), "int32")) as tf.Tensor1D;
          const vl = ppoValueLoss(v, slice(batch.oldValues), slice(batch.returns), s.valueClipRange);
          sums.valueLoss += vl.loss.dataSync()[0] * w;
          sums.valueClipFraction += vl.clipFraction.dataSync()[0] * w;
          return tf.mul(vl.loss, s.valueLossCoef * w) as tf.Scalar;
        });
      } finally {
        pd.tokens.dispose();
      }
      o += n;
    }
    if (ptx) trainers.policy.addGradients(ptx);
  } catch (e) {
    trainers.policy.zeroGradients();
    trainers.critic.zeroGradients();
    throw e;
  }
  const p = trainers.policy.update({ lr: s.policyLr, maxGradNorm: s.policyMaxGradNorm });
  const c = trainers.critic.update({ lr: s.criticLr, maxGradNorm: s.criticMaxGradNorm });
  return { ...sums, policyGradNorm: p.gradNorm, criticGradNorm: c.gradNorm, responseTokens: N };
}
