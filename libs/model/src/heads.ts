/**
 * A GPT-2 body with a scalar head instead of the language-model head: the reward model reads it
 * at one position per sequence (the last response token), the critic at every position (values).
 * The head is `score.weight` [C, 1] and `score.bias` [1] (the names the policy / reward-model
 * protos document). The language-model head itself is `GPT2.forward` (tied to `wte`).
 *
 * Initialisation: from a language model (body copied, new head: weight normal(0, 1/sqrt(C + 1))
 * as in OpenAI's lm-human-preferences reward head, bias 0) or from another scalar model (the
 * critic from the reward model: body and head copied).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { FailedPreconditionError, InvalidArgumentError, check, writeJsonAtomic } from "@rlhf/errors";
import type { HostTensor, NamedHostTensors } from "@rlhf/compute";
import { type GPT2Config, toHfConfig } from "./config";
import { GPT2 } from "./gpt2";
import { CONFIG_FILE, WEIGHTS_FILE, loadCheckpointTensors } from "./checkpoint";
import { writeSafetensorsFile } from "./safetensors";
import { Xoshiro128ss } from "@rlhf/random";

/** Names of the scalar head's tensors. */
export const SCORE_WEIGHT = "score.weight";
export const SCORE_BIAS = "score.bias";

/** A fresh scalar head for width C: weight normal(0, 1/sqrt(C+1)) from (seed, "score.weight"), bias 0. */
export function scalarHeadInitTensors(nEmbd: number, seed: number): NamedHostTensors {
  const w = new Float32Array(nEmbd);
  new Xoshiro128ss(seed, SCORE_WEIGHT).fillNormal(w, 1 / Math.sqrt(nEmbd + 1));
  return new Map<string, HostTensor>([
    [SCORE_WEIGHT, { dtype: "float32", shape: [nEmbd, 1], data: w }],
    [SCORE_BIAS, { dtype: "float32", shape: [1], data: new Float32Array(1) }],
  ]);
}

/** A GPT-2 body plus a scalar head (reward model or critic). Call `dispose()` when done. */
export class ScalarHeadModel {
  private disposed = false;

  private constructor(
    /** The transformer body (its LM head is unused). */
    readonly body: GPT2,
    private readonly weight: tf.Variable,
    private readonly bias: tf.Variable,
  ) {}

  get config(): Readonly<GPT2Config> {
    return this.body.config;
  }

  /**
   * From GPT-2 tensors plus, optionally, `score.weight`/`score.bias`; without them the head is
   * new (seeded by `headSeed`, default 0). The tensors are copied.
   */
  static fromHostTensors(config: GPT2Config, tensors: NamedHostTensors, options: { headSeed?: number; trainable?: boolean } = {}): ScalarHeadModel {
    const bodyTensors: NamedHostTensors = new Map([...tensors].filter(([n]) => n !== SCORE_WEIGHT && n !== SCORE_BIAS));
    const hasW = tensors.has(SCORE_WEIGHT);
    if (hasW !== tensors.has(SCORE_BIAS)) throw new InvalidArgumentError(hasW ? SCORE_BIAS : SCORE_WEIGHT, "missing: the scalar head needs both score.weight and score.bias");
    const head = hasW ? tensors : scalarHeadInitTensors(config.nEmbd, options.headSeed ?? 0);
    const w = head.get(SCORE_WEIGHT) as HostTensor;
    const b = head.get(SCORE_BIAS) as HostTensor;
    check(w.dtype === "float32" && w.shape.join() === `${config.nEmbd},1`, SCORE_WEIGHT, `must be float32 [${config.nEmbd}, 1], got [${w.shape.join(", ")}]`);
    check(b.dtype === "float32" && b.shape.join() === "1", SCORE_BIAS, `must be float32 [1], got [${b.shape.join(", ")}]`);
    const trainable = options.trainable ?? true;
    const body = GPT2.fromHostTensors(config, bodyTensors, { copy: true, trainable });
    const weight = tf.tidy(() => tf.variable(tf.tensor2d(w.data.slice(), [config.nEmbd, 1]), trainable));
    const bias = tf.tidy(() => tf.variable(tf.tensor1d(b.data.slice()), trainable));
    return new ScalarHeadModel(body, weight, bias);
  }

  /** Reward model (or critic) from a language model: body copied, new head. */
  static fromLanguageModel(lm: GPT2, headSeed = 0): ScalarHeadModel {
    return ScalarHeadModel.fromHostTensors(lm.config, lm.toHostTensors(), { headSeed });
  }

  /** A copy of another scalar model, head included (the critic initialised from the reward model). */
  static fromScalarModel(other: ScalarHeadModel): ScalarHeadModel {
    return ScalarHeadModel.fromHostTensors(other.config, other.toHostTensors());
  }

  /**
   * From a checkpoint folder: a scalar-model checkpoint (with `score.*`) loads as saved; a
   * language-model checkpoint gets a new head seeded by `headSeed`.
   */
  static async load(dir: string, options: { headSeed?: number } = {}): Promise<ScalarHeadModel> {
    const { config, tensors } = await loadCheckpointTensors(dir);
    return ScalarHeadModel.fromHostTensors(config, tensors, options);
  }

  /** Body parameters (GPT-2 names) then `score.weight`, `score.bias`: hand these to a Trainer. */
  parameters(): ReadonlyMap<string, tf.Variable> {
    this.checkLive();
    return new Map([...this.body.parameters(), [SCORE_WEIGHT, this.weight], [SCORE_BIAS, this.bias]]);
  }

  /** Every tensor in host memory (copies): GPT-2 names plus `score.*`. */
  toHostTensors(): NamedHostTensors {
    this.checkLive();
    const out = this.body.toHostTensors();
    out.set(SCORE_WEIGHT, { dtype: "float32", shape: [...this.weight.shape], data: (this.weight.dataSync() as Float32Array).slice() });
    out.set(SCORE_BIAS, { dtype: "float32", shape: [1], data: (this.bias.dataSync() as Float32Array).slice() });
    return out;
  }

  /** Per-token scalars (the critic's values) for int32 tokens [B, T]: [B, T]. Differentiable. */
  values(tokens: tf.Tensor2D): tf.Tensor2D {
    this.checkLive();
    const [B, T] = tokens.shape;
    const C = this.config.nEmbd;
    return tf.tidy(() => {
      const h = tf.reshape(this.body.hiddenStates(tokens), [B * T, C]); // [B*T, C]
      return tf.reshape(tf.add(tf.matMul(h, this.weight as tf.Tensor2D), this.bias), [B, T]) as tf.Tensor2D; // [B, T]
    });
  }

  /**
   * The scalar read at one position per row (the reward model reads the last response token,
   * the EOS, never a pad after it): `positions[b]` in 0..T-1. Returns [B]. Differentiable.
   */
  scoresAt(tokens: tf.Tensor2D, positions: readonly number[]): tf.Tensor1D {
    this.checkLive();
    const [B, T] = tokens.shape;
    const C = this.config.nEmbd;
    check(positions.length === B, "positions", `must have one entry per row (${B}), got ${positions.length}`);
    positions.forEach((p, b) => check(Number.isInteger(p) && p >= 0 && p < T, `positions[${b}]`, `must be an integer in 0..${T - 1}, got ${p}`));
    return tf.tidy(() => {
      const h = tf.reshape(this.body.hiddenStates(tokens), [B * T, C]); // [B*T, C]
      const rows = tf.gather(h, tf.tensor1d(positions.map((p, b) => b * T + p), "int32")); // [B, C]
      return tf.reshape(tf.add(tf.matMul(rows, this.weight as tf.Tensor2D), this.bias), [B]) as tf.Tensor1D; // [B]
    });
  }

  /**
   * Writes a checkpoint folder: `config.json` (HF GPT-2 config, `architectures:
   * ["GPT2ForSequenceClassification"]`, `num_labels: 1`, plus `extraConfig`) and
   * `model.safetensors` (GPT-2 names + `score.*`).
   */
  async save(dir: string, extraConfig: Record<string, unknown> = {}): Promise<void> {
    const hf = { ...toHfConfig(this.config), architectures: ["GPT2ForSequenceClassification"], num_labels: 1, ...extraConfig };
    await mkdir(dir, { recursive: true });
    await writeSafetensorsFile(join(dir, WEIGHTS_FILE), this.toHostTensors(), { format: "pt" });
    await writeJsonAtomic(join(dir, CONFIG_FILE), hf);
  }

  /** Frees every tensor. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.body.dispose();
    this.weight.dispose();
    this.bias.dispose();
  }

  private checkLive(): void {
    if (this.disposed) throw new FailedPreconditionError("scalar-head model has been disposed");
  }
}
