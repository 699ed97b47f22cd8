/**
 * GPT-2 (Radford et al. 2019) in TensorFlow.js, built bottom-up: layer norm, Conv1D, GELU,
 * causal self-attention, MLP, block, model. Parameter names and layouts are GPT-2's own
 * (`wte.weight`, `h.0.attn.c_attn.weight` as [in, out], ...), so a Hugging Face checkpoint maps
 * one to one. The forward pass uses tfjs ops only and is differentiable; parameters are
 * tf.Variables so a trainer can hand them to an optimiser.
 *
 * Shapes: B batch, T time, C = nEmbd, H = nHead, D = C / H, V = vocabSize, P = nPositions.
 */
import * as tf from "@tensorflow/tfjs-core";
import { FailedPreconditionError, InvalidArgumentError, check } from "@rlhf/errors";
import { type HostTensor, type NamedHostTensors, causalSelfAttention as fusedAttention, gelu, layerNorm, sizeOf, targetLogProbs } from "@rlhf/compute";
import { type GPT2Config, configParameterCount, validateConfig } from "./config";
import { Xoshiro128ss } from "@rlhf/random";

/** Weights in GPT-2 layout, by name. */
type Params = ReadonlyMap<string, tf.Tensor>;

function param<R extends tf.Rank>(params: Params, name: string): tf.Tensor<R> {
  const t = params.get(name);
  if (t === undefined) throw new Error(`internal: parameter ${name} missing`);
  return t as tf.Tensor<R>;
}

// ---------------------------------------------------------------------------------------------
// Parameter table
// ---------------------------------------------------------------------------------------------

/**
 * Every parameter of a GPT-2 with this config, in GPT-2's order, with its shape.
 * Pure arithmetic: allocates no weights.
 */
export function gpt2ParameterShapes(config: GPT2Config): Map<string, number[]> {
  validateConfig(config);
  const { vocabSize: V, nPositions: P, nEmbd: C, nLayer: L } = config;
  const shapes = new Map<string, number[]>();
  shapes.set("wte.weight", [V, C]);
  shapes.set("wpe.weight", [P, C]);
  for (let i = 0; i < L; i++) {
    const h = `h.${i}`;
    shapes.set(`${h}.ln_1.weight`, [C]);
    shapes.set(`${h}.ln_1.bias`, [C]);
    shapes.set(`${h}.attn.c_attn.weight`, [C, 3 * C]);
    shapes.set(`${h}.attn.c_attn.bias`, [3 * C]);
    shapes.set(`${h}.attn.c_proj.weight`, [C, C]);
    shapes.set(`${h}.attn.c_proj.bias`, [C]);
    shapes.set(`${h}.ln_2.weight`, [C]);
    shapes.set(`${h}.ln_2.bias`, [C]);
    shapes.set(`${h}.mlp.c_fc.weight`, [C, 4 * C]);
    shapes.set(`${h}.mlp.c_fc.bias`, [4 * C]);
    shapes.set(`${h}.mlp.c_proj.weight`, [4 * C, C]);
    shapes.set(`${h}.mlp.c_proj.bias`, [C]);
  }
  shapes.set("ln_f.weight", [C]);
  shapes.set("ln_f.bias", [C]);
  return shapes;
}

/** Number of parameters (tied head counted once); 124,439,808 for `gpt2-124m` (`configParameterCount`). */
export function gpt2ParameterCount(config: GPT2Config): number {
  return configParameterCount(config);
}

/**
 * GPT-2's initialisation, computed in JS so it is bit-identical on every backend: normal(0, 0.02)
 * for embeddings and Conv1D weights, residual projections (`attn.c_proj.weight`,
 * `mlp.c_proj.weight`) scaled by 1/sqrt(2 nLayer), biases 0, LayerNorm weight 1 and bias 0.
 * Each tensor draws from its own stream (seed, name), so values do not depend on tensor order.
 */
export function gpt2InitTensors(config: GPT2Config, seed: number): NamedHostTensors {
  const std = 0.02;
  const residualStd = std / Math.sqrt(2 * config.nLayer);
  const out: NamedHostTensors = new Map();
  for (const [name, shape] of gpt2ParameterShapes(config)) {
    const data = new Float32Array(sizeOf(shape));
    if (/(^|\.)ln_(1|2|f)\.weight$/.test(name)) data.fill(1);
    else if (name.endsWith(".bias")) data.fill(0);
    else {
      const isResidual = name.endsWith(".attn.c_proj.weight") || name.endsWith(".mlp.c_proj.weight");
      new Xoshiro128ss(seed, name).fillNormal(data, isResidual ? residualStd : std);
    }
    out.set(name, { dtype: "float32", shape, data });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------------

/** GPT-2's Conv1D: a dense layer with weight stored [in, out]. */
function conv1d(x: tf.Tensor3D, weight: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor3D {
  const [B, T, inDim] = x.shape;
  const outDim = weight.shape[1];
  const y = tf.add(tf.matMul(tf.reshape(x, [B * T, inDim]), weight), bias); // [B*T, out]
  return tf.reshape(y, [B, T, outDim]); // [B, T, out]
}

/**
 * Multi-head causal self-attention: `h.{i}.attn.c_attn` -> per-head softmax(q k^T / sqrt(D)) v ->
 * `c_proj`. The middle (split into heads, scores, causal mask, softmax, merge) is @rlhf/compute's
 * `causalSelfAttention`: one fused kernel on the torch backend, tfjs ops elsewhere.
 */
function causalSelfAttention(x: tf.Tensor3D, params: Params, prefix: string, config: GPT2Config): tf.Tensor3D {
  const qkv = conv1d(x, param(params, `${prefix}.c_attn.weight`), param(params, `${prefix}.c_attn.bias`)); // [B, T, 3C]
  const merged = fusedAttention(qkv, config.nHead); // [B, T, C]
  return conv1d(merged, param(params, `${prefix}.c_proj.weight`), param(params, `${prefix}.c_proj.bias`)); // [B, T, C]
}

/** Keys (transposed) and values of one block's attention for the positions seen so far. */
export interface LayerKV {
  /** Keys, transposed so scores need no transposeB matMul (slow on wasm): [B, H, D, Tk]. */
  kT: tf.Tensor4D;
  /** Values: [B, H, Tk, D]. */
  v: tf.Tensor4D;
}

/**
 * Attention of S new positions against the cached ones plus themselves. `mask` is additive,
 * [B, 1, S, Tk] with Tk = cached + S: 0 where allowed, -1e9 elsewhere (causality and padding).
 */
function cachedSelfAttention(
  x: tf.Tensor3D,
  params: Params,
  prefix: string,
  config: GPT2Config,
  past: LayerKV | undefined,
  mask: tf.Tensor4D,
): { y: tf.Tensor3D; kv: LayerKV } {
  const [B, S, C] = x.shape;
  const H = config.nHead;
  const D = C / H;
  const qkv = conv1d(x, param(params, `${prefix}.c_attn.weight`), param(params, `${prefix}.c_attn.bias`)); // [B, S, 3C]
  const [q, k, v] = tf.split(qkv, 3, 2) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D]; // [B, S, C] each
  const qh = tf.transpose(tf.reshape(q, [B, S, H, D]), [0, 2, 1, 3]) as tf.Tensor4D; // [B, H, S, D]
  const kTNew = tf.transpose(tf.reshape(k, [B, S, H, D]), [0, 2, 3, 1]) as tf.Tensor4D; // [B, H, D, S]
  const vNew = tf.transpose(tf.reshape(v, [B, S, H, D]), [0, 2, 1, 3]) as tf.Tensor4D; // [B, H, S, D]
  const kT = past ? tf.concat([past.kT, kTNew], 3) : kTNew; // [B, H, D, Tk]
  const vAll = past ? tf.concat([past.v, vNew], 2) : vNew; // [B, H, Tk, D]
  const scores = tf.mul(tf.matMul(qh, kT), 1 / Math.sqrt(D)); // [B, H, S, Tk]
  const att = tf.softmax(tf.add(scores, mask), -1); // [B, H, S, Tk]
  const y = tf.matMul(att, vAll); // [B, H, S, D]
  const merged = tf.reshape<tf.Rank.R3>(tf.transpose(y, [0, 2, 1, 3]), [B, S, C]); // [B, S, C]
  const out = conv1d(merged, param(params, `${prefix}.c_proj.weight`), param(params, `${prefix}.c_proj.bias`)); // [B, S, C]
  return { y: out, kv: { kT, v: vAll } };
}

/** Position-wise MLP: `c_fc` (C -> 4C), GELU (tanh form, fused where the backend can), `c_proj` (4C -> C). */
function mlp(x: tf.Tensor3D, params: Params, prefix: string): tf.Tensor3D {
  const h = gelu(conv1d(x, param(params, `${prefix}.c_fc.weight`), param(params, `${prefix}.c_fc.bias`))); // [B, T, 4C]
  return conv1d(h, param(params, `${prefix}.c_proj.weight`), param(params, `${prefix}.c_proj.bias`)); // [B, T, C]
}

/** `block` over S new positions with a key/value cache (see `cachedSelfAttention`). */
function cachedBlock(
  x: tf.Tensor3D,
  params: Params,
  i: number,
  config: GPT2Config,
  past: LayerKV | undefined,
  mask: tf.Tensor4D,
): { y: tf.Tensor3D; kv: LayerKV } {
  const h = `h.${i}`;
  const eps = config.layerNormEpsilon;
  const a = layerNorm(x, param(params, `${h}.ln_1.weight`), param(params, `${h}.ln_1.bias`), eps); // [B, S, C]
  const att = cachedSelfAttention(a, params, `${h}.attn`, config, past, mask);
  const x1 = tf.add<tf.Tensor3D>(x, att.y); // [B, S, C]
  const m = layerNorm(x1, param(params, `${h}.ln_2.weight`), param(params, `${h}.ln_2.bias`), eps); // [B, S, C]
  return { y: tf.add<tf.Tensor3D>(x1, mlp(m, params, `${h}.mlp`)), kv: att.kv }; // [B, S, C]
}

/** Pre-LayerNorm transformer block: x + attn(ln_1(x)), then + mlp(ln_2(x)). */
function block(x: tf.Tensor3D, params: Params, i: number, config: GPT2Config): tf.Tensor3D {
  const h = `h.${i}`;
  const eps = config.layerNormEpsilon;
  const a = layerNorm(x, param(params, `${h}.ln_1.weight`), param(params, `${h}.ln_1.bias`), eps); // [B, T, C]
  const x1 = tf.add<tf.Tensor3D>(x, causalSelfAttention(a, params, `${h}.attn`, config)); // [B, T, C]
  const m = layerNorm(x1, param(params, `${h}.ln_2.weight`), param(params, `${h}.ln_2.bias`), eps); // [B, T, C]
  return tf.add<tf.Tensor3D>(x1, mlp(m, params, `${h}.mlp`)); // [B, T, C]
}

/**
 * log p(targets) under softmax(logits / temperature) = z[target] - logsumexp(z), z = logits / T:
 * @rlhf/compute's `targetLogProbs` (one fused kernel on the torch backend; written-out tfjs ops,
 * a flat 1-D gather for the target, elsewhere).
 */
function logProbsOf(logits: tf.Tensor3D, targets: tf.Tensor2D, temperature: number): tf.Tensor2D {
  const [B, N, V] = logits.shape;
  const flat = targetLogProbs(tf.reshape(logits, [B * N, V]), tf.reshape(targets, [B * N]), temperature); // [B*N]
  return tf.reshape(flat, [B, N]); // [B, N]
}

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/** Variable-length sequences packed end to end: sequence i is the next `lengths[i]` ids of `tokens`. */
export interface PackedSequences {
  tokens: Int32Array;
  lengths: readonly number[];
}

/** Options of `GPT2.tokenLogProbs`. */
export interface TokenLogProbsOptions {
  /**
   * Upper bound on B*T*V logits materialised at once; longer batches run in chunks of sequences
   * of similar length. Default 2^25 (128 MiB of float32 logits).
   */
  maxLogitsElements?: number;
}

/** Options of `GPT2.fromHostTensors`. */
export interface FromHostTensorsOptions {
  /**
   * Copy the host arrays (default true). With false the model may share memory with them on the
   * CPU backend, and the caller must not modify them afterwards (saves a copy of a large checkpoint).
   */
  copy?: boolean;
  /** Create the parameters as trainable variables (default true). */
  trainable?: boolean;
}

/** A GPT-2 language model with tied input/output embeddings. Call `dispose()` when done. */
export class GPT2 {
  private disposed = false;

  private constructor(
    /** The (validated) shape of this model. */
    readonly config: Readonly<GPT2Config>,
    private readonly params: Map<string, tf.Variable>,
  ) {}

  /** See `gpt2ParameterShapes`. */
  static parameterShapes(config: GPT2Config): Map<string, number[]> {
    return gpt2ParameterShapes(config);
  }

  /** See `gpt2ParameterCount`. */
  static parameterCount(config: GPT2Config): number {
    return gpt2ParameterCount(config);
  }

  /** A freshly initialised model (GPT-2 scheme, see `gpt2InitTensors`); same seed, same weights. */
  static random(config: GPT2Config, seed: number, options: { trainable?: boolean } = {}): GPT2 {
    return GPT2.fromHostTensors(config, gpt2InitTensors(config, seed), { copy: false, ...options });
  }

  /**
   * A model from GPT-2-named float32 tensors. Every expected name must be present with its exact
   * shape; unknown names are rejected. Errors are InvalidArgumentError naming the tensor.
   */
  static fromHostTensors(config: GPT2Config, tensors: NamedHostTensors, options: FromHostTensorsOptions = {}): GPT2 {
    const cfg = Object.freeze({ ...validateConfig(config) });
    const shapes = gpt2ParameterShapes(cfg);
    for (const name of tensors.keys()) {
      if (!shapes.has(name)) {
        throw new InvalidArgumentError(name, `unexpected tensor: not a parameter of GPT-2 with nLayer=${cfg.nLayer}`);
      }
    }
    for (const [name, shape] of shapes) {
      const t = tensors.get(name);
      if (t === undefined) throw new InvalidArgumentError(name, `missing tensor, expected shape [${shape.join(", ")}]`);
      checkHostTensor(name, t, shape);
    }
    const { copy = true, trainable = true } = options;
    const params = new Map<string, tf.Variable>();
    try {
      for (const [name, shape] of shapes) {
        const host = tensors.get(name) as HostTensor;
        const data = copy ? host.data.slice() : host.data;
        const initial = tf.tensor(data, shape, "float32");
        params.set(name, tf.variable(initial, trainable));
        initial.dispose(); // the variable holds its own reference to the data
      }
    } catch (e) {
      for (const v of params.values()) v.dispose();
      throw e;
    }
    return new GPT2(cfg, params);
  }

  /** Parameter names in GPT-2 order. */
  parameterNames(): string[] {
    return [...this.params.keys()];
  }

  /** The parameters by GPT-2 name (for optimisers; do not dispose them). */
  parameters(): ReadonlyMap<string, tf.Variable> {
    this.checkLive();
    return this.params;
  }

  /**
   * Every parameter in host memory, GPT-2 names and layouts, in GPT-2 order. With `copy: false`
   * the arrays may be the backend's own (CPU backend): read them, do not modify or keep them past
   * the next update of the model (saves a full copy when writing a checkpoint). Default: copies.
   */
  toHostTensors(options: { copy?: boolean } = {}): NamedHostTensors {
    this.checkLive();
    const copy = options.copy ?? true;
    const out: NamedHostTensors = new Map();
    for (const [name, v] of this.params) {
      const data = v.dataSync() as Float32Array;
      out.set(name, { dtype: "float32", shape: [...v.shape], data: copy ? data.slice() : data });
    }
    return out;
  }

  /**
   * Final hidden states (after `ln_f`), [B, T, C], for heads other than the LM head (e.g. a
   * reward model's scalar head). Tokens: int32 [B, T], 1 <= T <= nPositions, ids in [0, V).
   */
  hiddenStates(tokens: tf.Tensor2D): tf.Tensor3D {
    this.checkLive();
    this.checkTokenTensor(tokens);
    const T = tokens.shape[1];
    const p = this.params;
    return tf.tidy(() => {
      const tokEmb = tf.gather(param<tf.Rank.R2>(p, "wte.weight"), tokens); // [B, T, C]
      const posEmb = tf.slice(param<tf.Rank.R2>(p, "wpe.weight"), [0, 0], [T, this.config.nEmbd]); // [T, C]
      let x = tf.add(tokEmb, posEmb) as tf.Tensor3D; // [B, T, C]
      for (let i = 0; i < this.config.nLayer; i++) x = block(x, p, i, this.config); // [B, T, C]
      return layerNorm(x, param(p, "ln_f.weight"), param(p, "ln_f.bias"), this.config.layerNormEpsilon); // [B, T, C]
    });
  }

  /**
   * Incremental forward for generation with a key/value cache. `tokens` int32 [B, S] are S new
   * positions per row; `positions` int32 [B, S] their position ids (per row, so left-padded
   * prompts still number their real tokens 0..P-1); `mask` additive [B, 1, S, Tk] where
   * Tk = (cached length) + S, 0 where a query may attend to a key and -1e9 where not (future keys,
   * padding). Returns the final hidden states (after `ln_f`) [B, S, C] and the new cache (one
   * entry per block). Nothing is disposed: the caller owns `past` and the returned tensors.
   */
  forwardCached(
    tokens: tf.Tensor2D,
    positions: tf.Tensor2D,
    mask: tf.Tensor4D,
    past?: readonly LayerKV[],
  ): { hidden: tf.Tensor3D; cache: LayerKV[] } {
    this.checkLive();
    check(tokens.rank === 2 && tokens.dtype === "int32", "tokens", "must be int32 [B, S]");
    check(positions.dtype === "int32" && positions.shape.join() === tokens.shape.join(), "positions", "must be int32 with the shape of tokens");
    const [B, S] = tokens.shape;
    const Tk = (past?.[0]?.v.shape[2] ?? 0) + S;
    check(mask.shape.join() === [B, 1, S, Tk].join(), "mask", `must have shape [${B}, 1, ${S}, ${Tk}], got [${mask.shape.join(", ")}]`);
    check(past === undefined || past.length === this.config.nLayer, "past", `must have ${this.config.nLayer} layers`);
    const p = this.params;
    return tf.tidy(() => {
      const tokEmb = tf.gather(param<tf.Rank.R2>(p, "wte.weight"), tokens); // [B, S, C]
      const posEmb = tf.gather(param<tf.Rank.R2>(p, "wpe.weight"), positions); // [B, S, C]
      let x = tf.add(tokEmb, posEmb) as tf.Tensor3D; // [B, S, C]
      const cache: LayerKV[] = [];
      for (let i = 0; i < this.config.nLayer; i++) {
        const r = cachedBlock(x, p, i, this.config, past?.[i], mask);
        x = r.y; // [B, S, C]
        cache.push(r.kv);
      }
      const hidden = layerNorm(x, param(p, "ln_f.weight"), param(p, "ln_f.bias"), this.config.layerNormEpsilon); // [B, S, C]
      return { hidden, cache } as unknown as tf.TensorContainer;
    }) as unknown as { hidden: tf.Tensor3D; cache: LayerKV[] };
  }

  /** Next-token logits [B, T, V] for int32 tokens [B, T] (head tied to `wte`). Differentiable. */
  forward(tokens: tf.Tensor2D): tf.Tensor3D {
    this.checkLive();
    this.checkTokenTensor(tokens);
    const [B, T] = tokens.shape;
    const { nEmbd: C, vocabSize: V } = this.config;
    return tf.tidy(() => {
      const h = this.hiddenStates(tokens); // [B, T, C]
      // h @ wte^T with wte transposed explicitly: wasm's matMul with transposeB is 10-20x slower
      // than a transpose (~25 ms for GPT-2's [V, C]) plus a plain matMul.
      const wteT = tf.transpose(param<tf.Rank.R2>(this.params, "wte.weight")); // [C, V]
      const logits = tf.matMul(tf.reshape(h, [B * T, C]), wteT); // [B*T, V]
      return tf.reshape(logits, [B, T, V]); // [B, T, V]
    });
  }

  /**
   * Differentiable per-token log-probabilities of int32 tokens [B, T]:
   * out[b, t] = log p(tokens[b, t+1] | tokens[b, <= t]) with logits divided by `temperature`; [B, T-1].
   * Rows may be right-padded with any valid id: causal attention keeps real positions unaffected.
   */
  targetLogProbs(tokens: tf.Tensor2D, temperature = 1): tf.Tensor2D {
    this.checkLive();
    checkTemperature(temperature);
    this.checkTokenTensor(tokens);
    const [B, T] = tokens.shape;
    check(T >= 2, "tokens", `need at least 2 positions to score a next token, got T=${T}`);
    return tf.tidy(() => {
      const inputs = tf.slice(tokens, [0, 0], [B, T - 1]); // [B, T-1]
      const targets = tf.slice(tokens, [0, 1], [B, T - 1]); // [B, T-1]
      const logits = this.forward(inputs); // [B, T-1, V]
      return logProbsOf(logits, targets, temperature); // [B, T-1]
    });
  }

  /**
   * Per-token log-probabilities of packed sequences, for inference. For a sequence of length L the
   * result has L-1 values: log p(tok[t] | tok[<t]) for t = 1..L-1, logits divided by
   * `temperature` (default 1). Sequences are batched with right padding, in chunks bounded by
   * `options.maxLogitsElements`. Validates ids, 1 <= L <= nPositions and sum(lengths) ==
   * tokens.length (InvalidArgumentError naming `seqs.lengths[i]` / `seqs.tokens[j]`).
   */
  tokenLogProbs(seqs: PackedSequences, temperature = 1, options: TokenLogProbsOptions = {}): Float32Array[] {
    this.checkLive();
    checkTemperature(temperature);
    const { tokens, lengths } = seqs;
    check(tokens instanceof Int32Array, "seqs.tokens", "must be an Int32Array");
    const budget = options.maxLogitsElements ?? 2 ** 25;
    check(Number.isSafeInteger(budget) && budget >= 1, "maxLogitsElements", `must be a positive integer, got ${budget}`);
    const { vocabSize: V, nPositions: P } = this.config;
    const offsets: number[] = [];
    let total = 0;
    for (let i = 0; i < lengths.length; i++) {
      const L = lengths[i];
      check(Number.isInteger(L) && L >= 1 && L <= P, `seqs.lengths[${i}]`, `must be an integer in 1..${P} (nPositions), got ${L}`);
      offsets.push(total);
      total += L;
    }
    check(total === tokens.length, "seqs.lengths", `sum of lengths (${total}) must equal tokens.length (${tokens.length})`);
    for (let j = 0; j < tokens.length; j++) {
      const id = tokens[j];
      if (id < 0 || id >= V) throw new InvalidArgumentError(`seqs.tokens[${j}]`, `id ${id} is out of range 0..${V - 1}`);
    }

    const out = lengths.map((L) => new Float32Array(L - 1));
    // Longest first, so each chunk pads little; sequences of length 1 have nothing to score.
    const order = lengths.map((_, i) => i).filter((i) => lengths[i] >= 2);
    order.sort((a, b) => lengths[b] - lengths[a] || a - b);
    for (let start = 0; start < order.length; ) {
      const T = lengths[order[start]];
      let end = start + 1;
      while (end < order.length && (end + 1 - start) * T * V <= budget) end++;
      const chunk = order.slice(start, end);
      const padded = new Int32Array(chunk.length * T); // padding id 0: any valid id works
      chunk.forEach((i, b) => padded.set(tokens.subarray(offsets[i], offsets[i] + lengths[i]), b * T));
      const logp = tf.tidy(() => this.targetLogProbs(tf.tensor2d(padded, [chunk.length, T], "int32"), temperature));
      const values = logp.dataSync() as Float32Array; // [b, T-1]
      logp.dispose();
      chunk.forEach((i, b) => out[i].set(values.subarray(b * (T - 1), b * (T - 1) + lengths[i] - 1)));
      start = end;
    }
    return out;
  }

  /** Frees the parameters; the model is unusable afterwards. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.params.values()) v.dispose();
  }

  private checkLive(): void {
    if (this.disposed) throw new FailedPreconditionError("GPT2 model has been disposed");
  }

  private checkTokenTensor(tokens: tf.Tensor2D): void {
    check(tokens.rank === 2, "tokens", `must be rank 2 [B, T], got shape [${tokens.shape.join(", ")}]`);
    check(tokens.dtype === "int32", "tokens", `must be int32, got ${tokens.dtype}`);
    const [B, T] = tokens.shape;
    check(B >= 1, "tokens", "batch must not be empty");
    check(T >= 1 && T <= this.config.nPositions, "tokens", `length T must be in 1..${this.config.nPositions}, got ${T}`);
  }
}

function checkTemperature(temperature: number): void {
  check(
    typeof temperature === "number" && Number.isFinite(temperature) && temperature > 0,
    "temperature",
    `must be a finite number > 0, got ${temperature}`,
  );
}

function checkHostTensor(name: string, t: HostTensor, shape: readonly number[]): void {
  if (t.dtype !== "float32" || !(t.data instanceof Float32Array)) {
    throw new InvalidArgumentError(name, `must be float32, got ${t.dtype}`);
  }
  const same = t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
  if (!same) throw new InvalidArgumentError(name, `expected shape [${shape.join(", ")}], got [${t.shape.join(", ")}]`);
  if (t.data.length !== sizeOf(shape)) {
    throw new InvalidArgumentError(name, `data has ${t.data.length} values, shape [${shape.join(", ")}] needs ${sizeOf(shape)}`);
  }
}
