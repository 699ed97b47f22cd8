/**
 * Training: the masked language-model loss, AdamW with decoupled weight decay, global gradient
 * norm clipping, learning-rate schedules, gradient accumulation, gradients in and out as named
 * host tensors, and optimiser state that saves and restores exactly.
 *
 * No dropout anywhere (GPT-2 inference has none and we train without it), so a training step is
 * a deterministic function of weights, optimiser state and batch: on the CPU backend a run that
 * is saved and restored continues bit-identically, and the trainer needs no RNG state.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { FailedPreconditionError, InvalidArgumentError, check, readJsonFile, writeJsonAtomic } from "@rlhf/errors";
import { FUSED_KERNELS, backendHasKernel, sumOfSquares, type NamedHostTensors } from "@rlhf/compute";
import type { GPT2 } from "./gpt2";
import { readSafetensorsFile, writeSafetensorsFile } from "./safetensors";

// ---------------------------------------------------------------------------------------------
// Loss
// ---------------------------------------------------------------------------------------------

/** A right-padded batch for {@link lmLoss}. */
export interface LmBatch {
  /** int32 [B, T], rows right-padded with id 0 (any valid id: causal attention ignores it). */
  tokens: tf.Tensor2D;
  /** float32 [B, T-1]: weight of predicting tokens[:, t+1]; 0 on prompt tokens and padding. */
  lossMask: tf.Tensor2D;
  /** Number of predicted (weight 1) tokens. */
  numTargets: number;
}

/**
 * Builds an {@link LmBatch} from sequences of ids. Token j of a sequence is a training target iff
 * j >= `lossStart` (default 1: every token but the first). SFT passes the prompt length, so only
 * the completion (which should end with EOS) is trained. Rows are padded to the longest.
 */
export function makeLmBatch(seqs: readonly { tokens: ArrayLike<number>; lossStart?: number }[]): LmBatch {
  check(seqs.length >= 1, "seqs", "must not be empty");
  const T = Math.max(...seqs.map((s) => s.tokens.length));
  check(T >= 2, "seqs", "the longest sequence needs at least 2 tokens");
  const B = seqs.length;
  const tokens = new Int32Array(B * T);
  const mask = new Float32Array(B * (T - 1));
  let numTargets = 0;
  seqs.forEach((s, b) => {
    const start = s.lossStart ?? 1;
    check(Number.isInteger(start) && start >= 1, `seqs[${b}].lossStart`, `must be an integer >= 1, got ${start}`);
    for (let j = 0; j < s.tokens.length; j++) tokens[b * T + j] = s.tokens[j];
    for (let j = Math.max(start, 1); j < s.tokens.length; j++) {
      mask[b * (T - 1) + j - 1] = 1;
      numTargets++;
    }
  });
  return { tokens: tf.tensor2d(tokens, [B, T], "int32"), lossMask: tf.tensor2d(mask, [B, T - 1]), numTargets };
}

/**
 * Masked language-model loss: -sum(lossMask * log p(tokens[:, 1:] | tokens[:, :-1])) / normalizer,
 * logits divided by `temperature` (default 1). `normalizer` defaults to sum(lossMask) (mean over
 * trained tokens); for gradient accumulation pass the number of targets of the whole accumulated
 * batch so that the summed micro-batch gradients equal the big batch's. Differentiable.
 */
export function lmLoss(
  model: GPT2,
  tokens: tf.Tensor2D,
  lossMask: tf.Tensor2D,
  options: { temperature?: number; normalizer?: number } = {},
): tf.Scalar {
  const [B, T] = tokens.shape;
  check(lossMask.shape[0] === B && lossMask.shape[1] === T - 1, "lossMask", `must have shape [${B}, ${T - 1}], got [${lossMask.shape.join(", ")}]`);
  const n = options.normalizer;
  check(n === undefined || (Number.isFinite(n) && n > 0), "normalizer", `must be a number > 0, got ${n}`);
  return tf.tidy(() => {
    const logp = model.targetLogProbs(tokens, options.temperature ?? 1); // [B, T-1]
    const total = tf.neg(tf.sum(tf.mul(logp, lossMask))); // []
    const denom = n ?? tf.maximum(tf.sum(lossMask), 1);
    return tf.div(total, denom) as tf.Scalar;
  });
}

// ---------------------------------------------------------------------------------------------
// Learning-rate schedules
// ---------------------------------------------------------------------------------------------

/**
 * A learning-rate schedule (JSON-serialisable; saved with the trainer state).
 * - `constant`: linear warm-up from lr/warmupSteps to `lr` over `warmupSteps` (default 0), then `lr`.
 * - `cosine`: the same warm-up, then cosine decay from `lr` to `minLr` (default 0) at `totalSteps`, flat after.
 */
export type LrSchedule =
  | { kind: "constant"; lr: number; warmupSteps?: number }
  | { kind: "cosine"; lr: number; warmupSteps?: number; totalSteps: number; minLr?: number };

function validateSchedule(s: LrSchedule): void {
  check(typeof s === "object" && s !== null && (s.kind === "constant" || s.kind === "cosine"), "schedule.kind", "must be constant or cosine");
  check(Number.isFinite(s.lr) && s.lr >= 0, "schedule.lr", `must be a number >= 0, got ${s.lr}`);
  const w = s.warmupSteps ?? 0;
  check(Number.isInteger(w) && w >= 0, "schedule.warmupSteps", `must be an integer >= 0, got ${w}`);
  if (s.kind === "cosine") {
    check(Number.isInteger(s.totalSteps) && s.totalSteps > w, "schedule.totalSteps", `must be an integer > warmupSteps (${w}), got ${s.totalSteps}`);
    const min = s.minLr ?? 0;
    check(Number.isFinite(min) && min >= 0 && min <= s.lr, "schedule.minLr", `must be in 0..lr, got ${min}`);
  }
}

/** The learning rate of update number `step` (0-based). */
export function learningRate(s: LrSchedule, step: number): number {
  const w = s.warmupSteps ?? 0;
  if (step < w) return (s.lr * (step + 1)) / w;
  if (s.kind === "constant") return s.lr;
  const min = s.minLr ?? 0;
  const progress = Math.min(1, (step - w) / (s.totalSteps - w));
  return min + 0.5 * (s.lr - min) * (1 + Math.cos(Math.PI * progress));
}

// ---------------------------------------------------------------------------------------------
// AdamW
// ---------------------------------------------------------------------------------------------

/** Hyperparameters of {@link AdamW}. */
export interface AdamWOptions {
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.95 (nanoGPT / GPT-3). */
  beta2?: number;
  /** Default 1e-8. */
  epsilon?: number;
  /** Decoupled weight decay (Loshchilov & Hutter), default 0.1; applied to weights of rank >= 2 only, not to biases, LayerNorm gains or the embeddings (`wte.weight`, `wpe.weight`), as in nanoGPT and OpenAI's GPT-2 fine-tuning. */
  weightDecay?: number;
}

/** Parameters of rank >= 2 that weight decay leaves alone: the token and position embeddings. */
const NO_DECAY: ReadonlySet<string> = new Set(["wte.weight", "wpe.weight"]);

/** Optimiser state: `exp_avg.<param>` and `exp_avg_sq.<param>` plus the number of updates applied. */
export interface AdamWState {
  step: number;
  tensors: NamedHostTensors;
}

/**
 * AdamW as in PyTorch: p <- p (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps), with bias-corrected
 * moments m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t). Call `dispose()` when done.
 */
export class AdamW {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  /** Updates applied so far. */
  step = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(
    private readonly params: ReadonlyMap<string, tf.Variable>,
    options: AdamWOptions = {},
  ) {
    this.beta1 = this.beta2 = this.epsilon = this.weightDecay = 0;
    this.configure(options);
    for (const [name, p] of params) {
      // tidy frees the zeros: a variable holds its own reference to the data.
      this.m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
      this.v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    }
  }

  /**
   * Sets the hyperparameters (defaults as in the constructor) and keeps the moments: a PPO
   * service takes them from each update request while its optimiser state lives on.
   */
  configure(options: AdamWOptions): void {
    const beta1 = options.beta1 ?? 0.9;
    const beta2 = options.beta2 ?? 0.95;
    const epsilon = options.epsilon ?? 1e-8;
    const weightDecay = options.weightDecay ?? 0.1;
    check(beta1 >= 0 && beta1 < 1, "beta1", `must be in [0, 1), got ${beta1}`);
    check(beta2 >= 0 && beta2 < 1, "beta2", `must be in [0, 1), got ${beta2}`);
    check(epsilon > 0, "epsilon", `must be > 0, got ${epsilon}`);
    check(weightDecay >= 0, "weightDecay", `must be >= 0, got ${weightDecay}`);
    Object.assign(this, { beta1, beta2, epsilon, weightDecay });
  }

  /** Applies one update with learning rate `lr`; `gradScale` multiplies every gradient first (clipping). */
  apply(grads: ReadonlyMap<string, tf.Tensor>, lr: number, gradScale = 1): void {
    this.step++;
    const t = this.step;
    const bc1 = 1 - Math.pow(this.beta1, t);
    const bc2 = 1 - Math.pow(this.beta2, t);
    const fused = backendHasKernel(FUSED_KERNELS.adamw);
    for (const [name, p] of this.params) {
      const g0 = grads.get(name);
      if (g0 === undefined) throw new InvalidArgumentError(`grads[${name}]`, "missing gradient");
      const decay = p.rank >= 2 && !NO_DECAY.has(name) && this.weightDecay > 0 ? 1 - lr * this.weightDecay : 1;
      if (fused) {
        // The same arithmetic in one kernel (the torch backend's): ~16 tfjs ops per parameter less.
        tf.tidy(() => {
          const m = this.m.get(name) as tf.Variable;
          const v = this.v.get(name) as tf.Variable;
          const attrs = { lr, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon, decay, bc1, bc2, gradScale };
          const [p1, m1, v1] = tf.engine().runKernel(FUSED_KERNELS.adamw, { param: p, m, v, grad: g0 }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
          m.assign(m1);
          v.assign(v1);
          p.assign(p1);
        });
        continue;
      }
      tf.tidy(() => {
        const g = gradScale === 1 ? g0 : tf.mul(g0, gradScale);
        const m = this.m.get(name) as tf.Variable;
        const v = this.v.get(name) as tf.Variable;
        const m1 = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
        const v1 = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        m.assign(m1);
        v.assign(v1);
        const update = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), this.epsilon));
        const decayed = decay === 1 ? p : tf.mul(p, decay);
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    }
  }

  /** A copy of the state in host memory. */
  getState(): AdamWState {
    const tensors: NamedHostTensors = new Map();
    for (const [name, m] of this.m) tensors.set(`exp_avg.${name}`, { dtype: "float32", shape: [...m.shape], data: (m.dataSync() as Float32Array).slice() });
    for (const [name, v] of this.v) tensors.set(`exp_avg_sq.${name}`, { dtype: "float32", shape: [...v.shape], data: (v.dataSync() as Float32Array).slice() });
    return { step: this.step, tensors };
  }

  /** Restores a state from {@link getState} (every moment must be present with its shape). */
  setState(state: AdamWState): void {
    check(Number.isInteger(state.step) && state.step >= 0, "state.step", `must be an integer >= 0, got ${state.step}`);
    const expected = new Set([...this.m.keys()].flatMap((n) => [`exp_avg.${n}`, `exp_avg_sq.${n}`]));
    for (const k of state.tensors.keys()) if (!expected.has(k)) throw new InvalidArgumentError(`state.tensors[${k}]`, "unexpected tensor");
    for (const [kind, map] of [["exp_avg", this.m], ["exp_avg_sq", this.v]] as const) {
      for (const [name, variable] of map) {
        const t = state.tensors.get(`${kind}.${name}`);
        if (t === undefined) throw new InvalidArgumentError(`state.tensors[${kind}.${name}]`, "missing");
        check(t.dtype === "float32" && t.shape.join() === variable.shape.join(), `state.tensors[${kind}.${name}]`, `must be float32 [${variable.shape.join(", ")}]`);
        tf.tidy(() => variable.assign(tf.tensor(t.data.slice(), variable.shape, "float32")));
      }
    }
    this.step = state.step;
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
    this.m.clear();
    this.v.clear();
  }
}

// ---------------------------------------------------------------------------------------------
// Trainer
// ---------------------------------------------------------------------------------------------

/** Options of {@link Trainer}. */
export interface TrainerOptions {
  optimizer?: AdamWOptions;
  /** Default: constant 3e-4, no warm-up. */
  schedule?: LrSchedule;
  /** Clip the global gradient norm to this; default 1.0; 0 turns clipping off. */
  maxGradNorm?: number;
}

/** What {@link Trainer.step} did. */
export interface StepResult {
  /** Updates applied so far, this one included. */
  step: number;
  /** The learning rate used. */
  lr: number;
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** Micro-batches (and external gradient sets) summed into this update. */
  microBatches: number;
}

/** Files written by {@link Trainer.save}. */
export const OPTIMIZER_FILE = "optimizer.safetensors";
export const TRAINER_STATE_FILE = "trainer_state.json";

/**
 * Gradient accumulation and updates for a set of parameters (a GPT2's, or a scalar-head model's):
 * `accumulate(loss)` any number of times (gradients are SUMMED), optionally `addGradients(...)`
 * from elsewhere (PPO-ptx), then `step()` clips, applies AdamW at the schedule's learning rate
 * and clears the accumulator. Requires gradients registered (`initBackend` from @rlhf/compute).
 */
export class Trainer {
  readonly optimizer: AdamW;
  readonly schedule: LrSchedule;
  readonly maxGradNorm: number;
  private readonly vars: tf.Variable[];
  private readonly nameOf = new Map<string, string>(); // tf variable name -> parameter name
  private acc = new Map<string, tf.Tensor>();
  private microBatches = 0;

  constructor(
    private readonly params: ReadonlyMap<string, tf.Variable>,
    options: TrainerOptions = {},
  ) {
    this.schedule = options.schedule ?? { kind: "constant", lr: 3e-4 };
    validateSchedule(this.schedule);
    this.maxGradNorm = options.maxGradNorm ?? 1;
    check(Number.isFinite(this.maxGradNorm) && this.maxGradNorm >= 0, "maxGradNorm", `must be a number >= 0, got ${this.maxGradNorm}`);
    this.vars = [...params.values()];
    for (const [name, v] of params) this.nameOf.set(v.name, name);
    this.optimizer = new AdamW(params, options.optimizer);
  }

  /** Updates applied so far. */
  get step(): number {
    return this.optimizer.step;
  }

  /** Micro-batches / gradient sets accumulated since the last step. */
  get pending(): number {
    return this.microBatches;
  }

  /** Adds the gradients of `lossFn()` (a scalar) to the accumulator; returns the loss value. */
  accumulate(lossFn: () => tf.Scalar): number {
    const { value, grads } = tf.variableGrads(lossFn, this.vars);
    const loss = value.dataSync()[0];
    value.dispose();
    const named = new Map<string, tf.Tensor>();
    for (const [vname, g] of Object.entries(grads)) named.set(this.nameOf.get(vname) as string, g);
    this.addDeviceGradients(named);
    return loss;
  }

  /**
   * Adds gradients from outside (e.g. gamma-weighted pretraining gradients), times `scale`.
   * Names must be parameters of this trainer with the same shapes; missing names count as zero.
   */
  addGradients(grads: NamedHostTensors, scale = 1): void {
    const named = new Map<string, tf.Tensor>();
    try {
      for (const [name, t] of grads) {
        const p = this.params.get(name);
        if (p === undefined) throw new InvalidArgumentError(`gradients[${name}]`, "not a parameter of this model");
        check(t.dtype === "float32" && t.shape.join() === p.shape.join(), `gradients[${name}]`, `must be float32 [${p.shape.join(", ")}], got ${t.dtype} [${t.shape.join(", ")}]`);
        check(t.data.length === p.size, `gradients[${name}]`, `has ${t.data.length} values, needs ${p.size}`);
        named.set(name, tf.tidy(() => (scale === 1 ? tf.tensor(t.data, p.shape, "float32") : tf.mul(tf.tensor(t.data, p.shape, "float32"), scale))));
      }
    } catch (e) {
      tf.dispose([...named.values()]);
      throw e;
    }
    this.addDeviceGradients(named);
  }

  /** The accumulated gradients (sum so far, unclipped) as named host tensors (copies). */
  exportGradients(): NamedHostTensors {
    const out: NamedHostTensors = new Map();
    for (const [name, p] of this.params) {
      const g = this.acc.get(name);
      out.set(name, { dtype: "float32", shape: [...p.shape], data: g ? (g.dataSync() as Float32Array).slice() : new Float32Array(p.size) });
    }
    return out;
  }

  /** Drops the accumulated gradients without updating. */
  zeroGradients(): void {
    tf.dispose([...this.acc.values()]);
    this.acc = new Map();
    this.microBatches = 0;
  }

  /**
   * One optimiser update from the accumulated gradients: clips their global norm to
   * `maxGradNorm`, applies AdamW with the schedule's learning rate, clears the accumulator.
   * `override` replaces the learning rate and / or the clipping norm of this one update (a PPO
   * service takes both from each request while its optimiser state lives on).
   */
  update(override: { lr?: number; maxGradNorm?: number } = {}): StepResult {
    if (this.microBatches === 0) throw new FailedPreconditionError("no gradients accumulated since the last step");
    const grads = new Map<string, tf.Tensor>();
    for (const [name, p] of this.params) grads.set(name, this.acc.get(name) ?? tf.zerosLike(p));
    try {
      const sq = sumOfSquares([...grads.values()]);
      const gradNorm = Math.sqrt(sq.dataSync()[0]);
      sq.dispose();
      const maxNorm = override.maxGradNorm ?? this.maxGradNorm;
      check(Number.isFinite(maxNorm) && maxNorm >= 0, "maxGradNorm", `must be a number >= 0, got ${maxNorm}`);
      const scale = maxNorm > 0 && gradNorm > maxNorm ? maxNorm / (gradNorm + 1e-6) : 1;
      const lr = override.lr ?? learningRate(this.schedule, this.optimizer.step);
      check(Number.isFinite(lr) && lr >= 0, "lr", `must be a number >= 0, got ${lr}`);
      this.optimizer.apply(grads, lr, scale);
      const result = { step: this.optimizer.step, lr, gradNorm, microBatches: this.microBatches };
      return result;
    } finally {
      tf.dispose([...grads.values()]);
      this.acc = new Map();
      this.microBatches = 0;
    }
  }

  /**
   * Writes the optimiser state into `dir`: `optimizer.safetensors` (moments, exact float32) and
   * `trainer_state.json` (step, schedule, hyperparameters). Not allowed with pending gradients.
   */
  async save(dir: string): Promise<void> {
    if (this.microBatches > 0) throw new FailedPreconditionError("cannot save the trainer state with accumulated gradients pending; step first");
    const { step, tensors } = this.optimizer.getState();
    await mkdir(dir, { recursive: true });
    await writeSafetensorsFile(join(dir, OPTIMIZER_FILE), tensors, { format: "pt" });
    const o = this.optimizer;
    const json = { step, schedule: this.schedule, maxGradNorm: this.maxGradNorm, optimizer: { beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon, weightDecay: o.weightDecay } };
    await writeJsonAtomic(join(dir, TRAINER_STATE_FILE), json);
  }

  /** Restores what {@link save} wrote; the hyperparameters saved must equal this trainer's. */
  async load(dir: string): Promise<void> {
    const path = join(dir, TRAINER_STATE_FILE);
    const json = await readJsonFile<{ step: number; schedule: LrSchedule; maxGradNorm: number; optimizer: Record<string, number> }>(path);
    const o = this.optimizer;
    const mine = { schedule: this.schedule, maxGradNorm: this.maxGradNorm, optimizer: { beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon, weightDecay: o.weightDecay } };
    const theirs = { schedule: json.schedule, maxGradNorm: json.maxGradNorm, optimizer: json.optimizer };
    if (JSON.stringify(mine) !== JSON.stringify(theirs)) {
      throw new InvalidArgumentError(path, `saved hyperparameters ${JSON.stringify(theirs)} differ from this trainer's ${JSON.stringify(mine)}`);
    }
    const { tensors } = await readSafetensorsFile(join(dir, OPTIMIZER_FILE));
    this.zeroGradients();
    this.optimizer.setState({ step: json.step, tensors });
  }

  dispose(): void {
    this.zeroGradients();
    this.optimizer.dispose();
  }

  private addDeviceGradients(named: Map<string, tf.Tensor>): void {
    for (const [name, g] of named) {
      const old = this.acc.get(name);
      if (old === undefined) this.acc.set(name, g);
      else {
        this.acc.set(name, tf.add(old, g));
        old.dispose();
        g.dispose();
      }
    }
    this.microBatches++;
  }
}

/**
 * Validated settings of one training call over examples (the policy's Sft, the reward model's
 * Train): `epochs` passes in a seeded order (`epochPermutation(n, seed, epoch)`), batches of
 * `batchSize`, AdamW with gradient clipping at `maxGradNorm` (0: none) and a learning-rate
 * schedule, and a progress report every `progressEverySteps` steps.
 */
export interface TrainingSettings {
  epochs: number;
  batchSize: number;
  optimizer: AdamWOptions;
  maxGradNorm: number;
  schedule: LrSchedule;
  seed: number;
  progressEverySteps: number;
}

/**
 * Consecutive groups of sequence indices whose padded size (rows x longest) stays within
 * `budget` tokens (a longer single sequence forms its own group). Order is kept, so the
 * concatenated outputs are in batch order.
 */
export function microBatches(lengths: readonly number[], budget: number): number[][] {
  const groups: number[][] = [];
  let cur: number[] = [];
  let longest = 0;
  lengths.forEach((L, i) => {
    const nextLongest = Math.max(longest, L);
    if (cur.length > 0 && (cur.length + 1) * nextLongest > budget) {
      groups.push(cur);
      cur = [];
      longest = 0;
    }
    cur.push(i);
    longest = Math.max(longest, L);
  });
  if (cur.length > 0) groups.push(cur);
  return groups;
}
