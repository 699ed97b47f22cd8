/** Validation shared by the policy's handlers: errors name the proto field and the limit. */
import type { common } from "@rlhf/proto";
import { tokenBatchFromProto } from "@rlhf/tensor-transport";
import { InvalidArgumentError, checkRunId } from "@rlhf/errors";
import type { GPT2Config, AdamWOptions } from "@rlhf/model";
import type { Seqs } from "../compute";

/** Sequences with prompt_lengths required: 1 <= P, and P < L when `needResponse` (else P <= L). */
export function seqsFromProto(
  batch: common.TokenBatch | undefined,
  field: string,
  model: Readonly<GPT2Config>,
  limits: { maxSequences: number; maxTokens: number },
  needResponse: boolean,
): Seqs {
  const packed = tokenBatchFromProto(batch, { vocabSize: model.vocabSize, nPositions: model.nPositions, maxSequences: limits.maxSequences, maxTokens: limits.maxTokens }, field);
  const prompts = packed.promptLengths;
  if (!prompts) throw new InvalidArgumentError(`${field}.prompt_lengths`, "is required: one prompt length per sequence");
  prompts.forEach((p, i) => {
    if (p < 1) throw new InvalidArgumentError(`${field}.prompt_lengths[${i}]`, `must be >= 1 (a response token is predicted from at least one token), got ${p}`);
    if (needResponse && p >= packed.lengths[i]) throw new InvalidArgumentError(`${field}.prompt_lengths[${i}]`, `${p} leaves no response token in a sequence of ${packed.lengths[i]}`);
  });
  return { tokens: packed.tokens, lengths: packed.lengths, promptLengths: prompts };
}

/** A per-token float array of exactly `n` finite values. */
export function floatsFromProto(values: readonly number[], n: number, field: string): Float32Array {
  if (values.length !== n) throw new InvalidArgumentError(field, `has ${values.length} values but the sequences have ${n} response tokens`);
  const out = Float32Array.from(values);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i])) throw new InvalidArgumentError(`${field}[${i}]`, `must be finite, got ${values[i]}`);
  }
  return out;
}

/** A validated OptimizerConfig: AdamW options, learning rate and clipping norm. */
export function optimizerFromProto(o: common.OptimizerConfig | undefined, field: string): { adam: AdamWOptions; lr: number; maxGradNorm: number } {
  if (!o) throw new InvalidArgumentError(field, "is required");
  const bad = (f: string, msg: string) => new InvalidArgumentError(`${field}.${f}`, msg);
  const lr = o.learningRate;
  if (!Number.isFinite(lr) || lr <= 0 || lr > 1) throw bad("learning_rate", `must be in (0, 1], got ${lr}`);
  for (const [f, v] of [
    ["beta1", o.beta1],
    ["beta2", o.beta2],
  ] as const) {
    if (!Number.isFinite(v) || v < 0 || v >= 1) throw bad(f, `must be in (0, 1) (or 0 for the default), got ${v}`);
  }
  if (!Number.isFinite(o.epsilon) || o.epsilon < 0) throw bad("epsilon", `must be > 0 (or 0 for 1e-8), got ${o.epsilon}`);
  if (!Number.isFinite(o.weightDecay) || o.weightDecay < 0) throw bad("weight_decay", `must be >= 0, got ${o.weightDecay}`);
  if (!Number.isFinite(o.maxGradNorm) || o.maxGradNorm < 0) throw bad("max_grad_norm", `must be >= 0, got ${o.maxGradNorm}`);
  return { adam: { beta1: o.beta1 || 0.9, beta2: o.beta2 || 0.95, epsilon: o.epsilon || 1e-8, weightDecay: o.weightDecay }, lr, maxGradNorm: o.maxGradNorm };
}

/**
 * The optional run id of a request (the subject token of the weights event it causes):
 * undefined when unset or empty, else 1..64 of [a-z0-9-].
 */
export function runIdFromProto(runId: string | undefined, field: string): string | undefined {
  if (runId === undefined || runId === "") return undefined;
  return checkRunId(runId, field);
}
