/**
 * Validation and conversion of the common request messages, with errors that name the proto
 * field and the limit (INVALID_ARGUMENT). Shared by every model service.
 */
import { common } from "@rlhf/proto";
import { InvalidArgumentError } from "@rlhf/errors";
import { validateConfig, type GPT2Config } from "@rlhf/model";

/** Limits a service applies to a TokenBatch. */
export interface TokenBatchLimits {
  /** Token ids must be < this. */
  vocabSize: number;
  /** Longest sequence (the model's context length). */
  nPositions: number;
  /** Most sequences per request. */
  maxSequences: number;
  /** Most tokens per request (sum of lengths). */
  maxTokens: number;
}

/** A validated batch, packed for the model. */
export interface PackedBatch {
  tokens: Int32Array;
  lengths: number[];
  /** One per sequence, or undefined when the request sent none. */
  promptLengths?: number[];
}

/** Validates a TokenBatch against `limits`; `field` is its path in the request (e.g. "batch"). */
export function tokenBatchFromProto(batch: common.TokenBatch | undefined, limits: TokenBatchLimits, field = "batch"): PackedBatch {
  if (!batch) throw new InvalidArgumentError(field, "is required");
  const { tokens, lengths, promptLengths } = batch;
  if (lengths.length === 0) throw new InvalidArgumentError(`${field}.lengths`, "must hold at least one sequence");
  if (lengths.length > limits.maxSequences) {
    throw new InvalidArgumentError(`${field}.lengths`, `${lengths.length} sequences exceed the limit of ${limits.maxSequences} per request`);
  }
  let total = 0;
  for (let i = 0; i < lengths.length; i++) {
    const L = lengths[i];
    if (L < 1) throw new InvalidArgumentError(`${field}.lengths[${i}]`, "empty sequence: every sequence needs at least 1 token");
    if (L > limits.nPositions) {
      throw new InvalidArgumentError(`${field}.lengths[${i}]`, `${L} tokens exceed the context length of ${limits.nPositions}`);
    }
    total += L;
  }
  if (total !== tokens.length) {
    throw new InvalidArgumentError(`${field}.lengths`, `add up to ${total} but ${field}.tokens holds ${tokens.length} ids`);
  }
  if (total > limits.maxTokens) throw new InvalidArgumentError(`${field}.tokens`, `${total} tokens exceed the limit of ${limits.maxTokens} per request`);
  const packed = Int32Array.from(tokens);
  for (let j = 0; j < packed.length; j++) {
    const id = packed[j];
    if (id < 0 || id >= limits.vocabSize) {
      throw new InvalidArgumentError(`${field}.tokens[${j}]`, `id ${id} is outside the vocabulary [0, ${limits.vocabSize})`);
    }
  }
  let prompts: number[] | undefined;
  if (promptLengths.length > 0) {
    if (promptLengths.length !== lengths.length) {
      throw new InvalidArgumentError(`${field}.prompt_lengths`, `has ${promptLengths.length} entries but there are ${lengths.length} sequences`);
    }
    promptLengths.forEach((p, i) => {
      if (p > lengths[i]) throw new InvalidArgumentError(`${field}.prompt_lengths[${i}]`, `${p} exceeds the sequence length ${lengths[i]}`);
    });
    prompts = [...promptLengths];
  }
  return { tokens: packed, lengths: [...lengths], promptLengths: prompts };
}

/** A sampling/scoring temperature: 0 (unset) means 1; otherwise finite and in [0.01, 100]. */
export function temperatureFromProto(t: number, field = "temperature"): number {
  if (t === 0) return 1;
  if (!Number.isFinite(t) || t < 0.01 || t > 100) throw new InvalidArgumentError(field, `must be in [0.01, 100] (or 0 for 1.0), got ${t}`);
  return t;
}

const protoNames: Record<keyof GPT2Config, string> = {
  vocabSize: "vocab_size",
  nPositions: "n_positions",
  nEmbd: "n_embd",
  nLayer: "n_layer",
  nHead: "n_head",
  layerNormEpsilon: "layer_norm_epsilon",
};

/** Validates a proto ModelConfig; errors name `${field}.<proto field>`. */
export function modelConfigFromProto(c: common.ModelConfig | undefined, field = "config"): GPT2Config {
  if (!c) throw new InvalidArgumentError(field, "is required");
  const config: GPT2Config = {
    vocabSize: c.vocabSize,
    nPositions: c.nPositions,
    nEmbd: c.nEmbd,
    nLayer: c.nLayer,
    nHead: c.nHead,
    layerNormEpsilon: c.layerNormEpsilon === 0 ? 1e-5 : c.layerNormEpsilon,
  };
  try {
    return validateConfig(config);
  } catch (err) {
    if (err instanceof InvalidArgumentError && err.field && err.field in protoNames) {
      const detail = err.message.slice(err.field.length + 2);
      throw new InvalidArgumentError(`${field}.${protoNames[err.field as keyof GPT2Config]}`, detail);
    }
    throw err;
  }
}

/** The proto form of a config. */
export function modelConfigToProto(c: GPT2Config): common.ModelConfig {
  return { vocabSize: c.vocabSize, nPositions: c.nPositions, nEmbd: c.nEmbd, nLayer: c.nLayer, nHead: c.nHead, layerNormEpsilon: c.layerNormEpsilon };
}

/** The wire dtype a StreamWeights request asks for: DTYPE_FLOAT32 or DTYPE_FLOAT16, else INVALID_ARGUMENT. */
export function wireFloatFromProto(dtype: common.Dtype, field = "dtype"): "float32" | "float16" {
  if (dtype === common.Dtype.DTYPE_FLOAT32) return "float32";
  if (dtype === common.Dtype.DTYPE_FLOAT16) return "float16";
  throw new InvalidArgumentError(field, `must be DTYPE_FLOAT32 or DTYPE_FLOAT16, got ${common.Dtype[dtype] ?? dtype}`);
}
