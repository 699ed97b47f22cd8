/**
 * GPT-2 hyperparameters: the typed config, its limits, named presets and the mapping to and from
 * a Hugging Face `GPT2Config` (`config.json`).
 */
import { InvalidArgumentError } from "@rlhf/errors";

/** Shape of a GPT-2 decoder. Field names follow nanoGPT; `toHfConfig` gives the HF names. */
export interface GPT2Config {
  /** Number of token ids (rows of `wte`). HF: `vocab_size`. */
  vocabSize: number;
  /** Longest sequence, in tokens (rows of `wpe`). HF: `n_positions` (older files: `n_ctx`). */
  nPositions: number;
  /** Width of the residual stream, C. Must be a multiple of `nHead`. HF: `n_embd`. */
  nEmbd: number;
  /** Number of transformer blocks. HF: `n_layer`. */
  nLayer: number;
  /** Attention heads per block; head size is `nEmbd / nHead`. HF: `n_head`. */
  nHead: number;
  /** LayerNorm epsilon, > 0. HF: `layer_norm_epsilon` (default 1e-5). */
  layerNormEpsilon: number;
}

/** Inclusive limits checked by `validateConfig`. */
export const CONFIG_LIMITS = {
  vocabSize: { min: 1, max: 1_048_576 },
  nPositions: { min: 1, max: 65_536 },
  nEmbd: { min: 1, max: 16_384 },
  nLayer: { min: 1, max: 256 },
  nHead: { min: 1, max: 256 },
} as const;

/**
 * Most parameters a model may have: 2^31, 8 GiB of float32 weights (the default limit of an
 * uploaded tensor set; GPT-2 XL has 1.56e9). Every field can be within its own limit while the
 * product is not (n_embd 16,384 with 256 layers is 8.2e11 parameters, 3 TiB): such a config is
 * refused here, before any service allocates it.
 */
export const MAX_PARAMETERS = 2 ** 31;

/** GPT-2's parameter count from the config alone (embeddings, blocks, final LayerNorm; the head is tied). */
export function configParameterCount(c: GPT2Config): number {
  const d = c.nEmbd;
  return c.vocabSize * d + c.nPositions * d + c.nLayer * (12 * d * d + 13 * d) + 2 * d;
}

function checkIntRange(value: unknown, field: keyof typeof CONFIG_LIMITS): void {
  const { min, max } = CONFIG_LIMITS[field];
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(field, `must be an integer in ${min}..${max}, got ${String(value)}`);
  }
}

/**
 * Throws InvalidArgumentError naming the first bad field and its limit. Returns the config
 * unchanged so it can wrap an expression.
 */
export function validateConfig(c: GPT2Config): GPT2Config {
  if (typeof c !== "object" || c === null) throw new InvalidArgumentError("config", "must be an object");
  checkIntRange(c.vocabSize, "vocabSize");
  checkIntRange(c.nPositions, "nPositions");
  checkIntRange(c.nEmbd, "nEmbd");
  checkIntRange(c.nLayer, "nLayer");
  checkIntRange(c.nHead, "nHead");
  if (c.nEmbd % c.nHead !== 0) {
    throw new InvalidArgumentError("nEmbd", `must be a multiple of nHead (${c.nHead}), got ${c.nEmbd}`);
  }
  if (typeof c.layerNormEpsilon !== "number" || !Number.isFinite(c.layerNormEpsilon) || c.layerNormEpsilon <= 0) {
    throw new InvalidArgumentError("layerNormEpsilon", `must be a finite number > 0, got ${String(c.layerNormEpsilon)}`);
  }
  const n = configParameterCount(c);
  if (n > MAX_PARAMETERS) {
    const gib = (4 * n) / 1024 ** 3;
    throw new InvalidArgumentError("nLayer", `this shape (nEmbd ${c.nEmbd}, nLayer ${c.nLayer}, vocabSize ${c.vocabSize}, nPositions ${c.nPositions}) has ${n.toExponential(2)} parameters (${gib.toFixed(0)} GiB of float32 weights), more than the limit of 2^31 (8 GiB): make nEmbd or nLayer smaller`);
  }
  return c;
}

/** Names of the built-in presets. */
export type GPT2PresetName = "tiny" | "small" | "gpt2-124m";

/**
 * Built-in shapes. Set `vocabSize` to your tokenizer's when it differs.
 * - `tiny`: tests and smoke runs (512 ids: bytes + specials or a small BPE; 64 positions, 2x2x32).
 * - `small`: a laptop-sized model for the GPT-2 BPE vocabulary (256 positions, 4 layers, 4 heads, 128 wide).
 * - `gpt2-124m`: OpenAI's smallest GPT-2 (124,439,808 parameters).
 */
export const GPT2_PRESETS: Readonly<Record<GPT2PresetName, Readonly<GPT2Config>>> = Object.freeze({
  tiny: Object.freeze({ vocabSize: 512, nPositions: 64, nEmbd: 32, nLayer: 2, nHead: 2, layerNormEpsilon: 1e-5 }),
  small: Object.freeze({ vocabSize: 50257, nPositions: 256, nEmbd: 128, nLayer: 4, nHead: 4, layerNormEpsilon: 1e-5 }),
  "gpt2-124m": Object.freeze({
    vocabSize: 50257,
    nPositions: 1024,
    nEmbd: 768,
    nLayer: 12,
    nHead: 12,
    layerNormEpsilon: 1e-5,
  }),
});

/** A fresh copy of a preset, optionally with fields overridden; validated. */
export function presetConfig(name: string, overrides: Partial<GPT2Config> = {}): GPT2Config {
  if (!Object.prototype.hasOwnProperty.call(GPT2_PRESETS, name)) {
    throw new InvalidArgumentError("preset", `unknown preset "${name}"; known: ${Object.keys(GPT2_PRESETS).join(", ")}`);
  }
  return validateConfig({ ...GPT2_PRESETS[name as GPT2PresetName], ...overrides });
}

/** A Hugging Face `GPT2Config` as stored in `config.json` (the fields this library reads or writes). */
export interface HfGPT2Config {
  model_type: "gpt2";
  architectures: string[];
  activation_function: string;
  vocab_size: number;
  n_positions: number;
  n_ctx?: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_inner?: number | null;
  layer_norm_epsilon: number;
  tie_word_embeddings?: boolean;
  [key: string]: unknown;
}

/** Activation names HF maps to GPT-2's tanh-approximated GELU. */
const GPT2_ACTIVATIONS = new Set(["gelu_new", "gelu_pytorch_tanh"]);

/** The HF `config.json` object for a config (what `saveCheckpoint` writes, before extra keys). */
export function toHfConfig(c: GPT2Config): HfGPT2Config {
  validateConfig(c);
  return {
    model_type: "gpt2",
    architectures: ["GPT2LMHeadModel"],
    activation_function: "gelu_new",
    vocab_size: c.vocabSize,
    n_positions: c.nPositions,
    n_ctx: c.nPositions,
    n_embd: c.nEmbd,
    n_layer: c.nLayer,
    n_head: c.nHead,
    n_inner: null,
    layer_norm_epsilon: c.layerNormEpsilon,
    tie_word_embeddings: true,
  };
}

/**
 * Reads a Hugging Face GPT-2 `config.json` object. Accepts `n_ctx` when `n_positions` is missing;
 * `layer_norm_epsilon` defaults to 1e-5 and `activation_function` to "gelu_new" as in HF.
 * Rejects anything this implementation would compute differently (another `model_type`, a non
 * tanh-GELU activation, `n_inner` other than 4*n_embd, untied embeddings, per-layer attention
 * scaling, cross-attention). Errors name the field as `<source>.<key>`.
 */
export function fromHfConfig(json: unknown, source = "config.json"): GPT2Config {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new InvalidArgumentError(source, "must be a JSON object");
  }
  const o = json as Record<string, unknown>;
  const field = (k: string): string => `${source}.${k}`;
  const int = (k: string): number => {
    const v = o[k];
    if (typeof v !== "number" || !Number.isInteger(v)) {
      throw new InvalidArgumentError(field(k), `must be an integer, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  if (o.model_type !== undefined && o.model_type !== "gpt2") {
    throw new InvalidArgumentError(field("model_type"), `must be "gpt2", got ${JSON.stringify(o.model_type)}`);
  }
  const act = o.activation_function ?? "gelu_new";
  if (typeof act !== "string" || !GPT2_ACTIVATIONS.has(act)) {
    throw new InvalidArgumentError(
      field("activation_function"),
      `${JSON.stringify(act)} is not supported; GPT-2 uses "gelu_new" (the tanh approximation of GELU)`,
    );
  }
  const positionsKey = o.n_positions !== undefined ? "n_positions" : o.n_ctx !== undefined ? "n_ctx" : undefined;
  if (positionsKey === undefined) throw new InvalidArgumentError(field("n_positions"), "missing (and no n_ctx either)");
  const eps = o.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== "number") {
    throw new InvalidArgumentError(field("layer_norm_epsilon"), `must be a number, got ${JSON.stringify(eps)}`);
  }
  const c: GPT2Config = {
    vocabSize: int("vocab_size"),
    nPositions: int(positionsKey),
    nEmbd: int("n_embd"),
    nLayer: int("n_layer"),
    nHead: int("n_head"),
    layerNormEpsilon: eps,
  };
  if (o.n_inner !== undefined && o.n_inner !== null && o.n_inner !== 4 * c.nEmbd) {
    throw new InvalidArgumentError(field("n_inner"), `must be null or 4*n_embd (${4 * c.nEmbd}), got ${JSON.stringify(o.n_inner)}`);
  }
  if (o.tie_word_embeddings === false) {
    throw new InvalidArgumentError(field("tie_word_embeddings"), "must be true: this GPT-2 ties lm_head to wte");
  }
  if (o.scale_attn_weights === false) {
    throw new InvalidArgumentError(field("scale_attn_weights"), "must be true (attention scaled by 1/sqrt(head size))");
  }
  if (o.scale_attn_by_inverse_layer_idx === true) {
    throw new InvalidArgumentError(field("scale_attn_by_inverse_layer_idx"), "is not supported");
  }
  if (o.add_cross_attention === true) {
    throw new InvalidArgumentError(field("add_cross_attention"), "is not supported (decoder-only GPT-2)");
  }
  try {
    return validateConfig(c);
  } catch (e) {
    if (!(e instanceof InvalidArgumentError) || e.field === undefined) throw e;
    const hfName: Record<string, string> = {
      vocabSize: "vocab_size",
      nPositions: positionsKey,
      nEmbd: "n_embd",
      nLayer: "n_layer",
      nHead: "n_head",
      layerNormEpsilon: "layer_norm_epsilon",
    };
    const msg = e.message.slice(e.field.length + 2);
    throw new InvalidArgumentError(field(hfName[e.field] ?? e.field), msg);
  }
}
