/**
 * The policy service's state: the trainable policy (a GPT2), the critic (a ScalarHeadModel,
 * initialised from the reward model), the PPO optimiser state of each, their WeightsRefs and the
 * tokenizer of built-in datasets. Loads build the new models completely before the swap, so a
 * failed load changes nothing. Every optimiser step bumps the version of the model it changed.
 */
import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import * as tf from "@tensorflow/tfjs-core";
import {
  GPT2,
  ScalarHeadModel,
  SCORE_BIAS,
  SCORE_WEIGHT,
  Trainer,
  getTokenizer,
  loadCheckpointTensors,
  loadCheckpointConfig,
  saveCheckpoint,
  writeCheckpointFolder,
  tokenizerConfig,
  tokenizerFromConfig,
  readSafetensorsFile,
  writeSafetensorsFile,
  type GPT2Config,
  type Tokenizer,
  type AdamWOptions,
} from "@rlhf/model";
import type { NamedHostTensors } from "@rlhf/compute";
import { FailedPreconditionError, InvalidArgumentError, readJsonFile, type PathRoots } from "@rlhf/errors";
import type { Logger } from "@rlhf/grpc-kit";
import { POLICY_MODEL_ID, resolveCheckpointDir, type LoadedRef } from "@rlhf/model-service";

/** model_id of the critic's WeightsRef. */
export const CRITIC_ID = "critic";
/** Files of a checkpoint written by {@link PolicyState.save}. */
export const STATE_FILE = "state.json";
export const OPTIMIZER_FILE = "optimizer.safetensors";

/** What changed the weights, for the onWeightsChanged hook. */
export interface WeightsChange {
  reason: "sft" | "ppo_update" | "load_checkpoint";
  /** The run the call named, if any. */
  runId?: string;
  policy: LoadedRef;
  critic?: LoadedRef;
}

/** The PPO optimiser of one model: a Trainer whose AdamW state lives across PpoUpdate calls. */
export interface PpoOptimizer {
  trainer: Trainer;
}

/** What state.json of a checkpoint holds. */
interface StateJson {
  format: "rlhf-policy-checkpoint/1";
  policy: { version: number; source: string; optimizer?: OptimizerJson };
  critic?: { version: number; source: string; optimizer?: OptimizerJson };
  tokenizer: string;
  /**
   * The service keeps no random state between calls: every sampling seed comes with its request
   * and training has no dropout. Recorded so that a reader knows nothing is missing.
   */
  rng: "none: sampling seeds come with each request";
}

interface OptimizerJson {
  step: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

function ppoTrainer(params: ReadonlyMap<string, tf.Variable>, opts: AdamWOptions = {}): Trainer {
  // Learning rate and clipping norm come with every PpoUpdate (Trainer.update's override).
  return new Trainer(params, { optimizer: opts, schedule: { kind: "constant", lr: 0 }, maxGradNorm: 0 });
}

export class PolicyState {
  private policyModel?: GPT2;
  private criticModel?: ScalarHeadModel;
  private policyRef: LoadedRef = { modelId: POLICY_MODEL_ID, version: 0, source: "" };
  private criticRef: LoadedRef = { modelId: CRITIC_ID, version: 0, source: "" };
  private tok?: Tokenizer;
  private policyPpo?: Trainer;
  private criticPpo?: Trainer;
  /** True while Sft or PpoUpdate trains. */
  training = false;

  constructor(
    private readonly log: Logger,
    private readonly opts: { checkpointRoots?: PathRoots; tokenizer?: string; onLoaded?: () => void; onWeightsChanged?: (change: WeightsChange) => void },
  ) {}

  get policyConfig(): Readonly<GPT2Config> | undefined {
    return this.policyModel?.config;
  }
  get criticConfig(): Readonly<GPT2Config> | undefined {
    return this.criticModel?.config;
  }
  get policyWeights(): LoadedRef {
    return { ...this.policyRef };
  }
  get criticWeights(): LoadedRef | undefined {
    return this.criticModel ? { ...this.criticRef } : undefined;
  }
  /** Tokenizer of built-in datasets and default EOS. */
  get tokenizer(): Tokenizer | undefined {
    return this.tok;
  }
  /** The EOS of Generate requests that set none: `configured` (EOS_TOKEN_ID), else the tokenizer's, else GPT-2's. */
  defaultEos(configured: number | undefined): number {
    return configured ?? this.tok?.eosId ?? 50256;
  }

  /** The policy, or FAILED_PRECONDITION. */
  policy(): GPT2 {
    if (!this.policyModel) throw new FailedPreconditionError("no policy is loaded: call LoadCheckpoint first (or start with CHECKPOINT_DIR / MODEL_DIR / INIT_PRESET)");
    return this.policyModel;
  }

  /** The critic, or FAILED_PRECONDITION. */
  critic(): ScalarHeadModel {
    if (!this.criticModel) throw new FailedPreconditionError("no critic is loaded: call InitCritic first (the critic starts from the reward model's weights)");
    return this.criticModel;
  }

  /** The PPO trainers of policy and critic (created on first use, state kept across calls). */
  ppoTrainers(): { policy: Trainer; critic: Trainer } {
    this.policyPpo ??= ppoTrainer(this.policy().parameters());
    this.criticPpo ??= ppoTrainer(this.critic().parameters());
    return { policy: this.policyPpo, critic: this.criticPpo };
  }

  /** After an optimiser step of the policy. */
  bumpPolicy(): void {
    this.policyRef = { ...this.policyRef, version: this.policyRef.version + 1 };
  }
  /** After an optimiser step of the critic. */
  bumpCritic(): void {
    this.criticRef = { ...this.criticRef, version: this.criticRef.version + 1 };
  }

  /**
   * After a call that changed the policy's weights version (Sft, PpoUpdate, LoadCheckpoint):
   * tells the onWeightsChanged hook (app.ts publishes it as a NATS weights event).
   */
  weightsChanged(reason: WeightsChange["reason"], runId: string | undefined): void {
    this.opts.onWeightsChanged?.({ reason, runId, policy: this.policyWeights, critic: this.criticWeights });
  }

  /**
   * `dir` made real and absolute; a request's folder (field in snake_case) must be inside
   * CHECKPOINT_ROOT, while CHECKPOINT_DIR / MODEL_DIR, set by the operator at start, are not confined.
   */
  resolveDir(dir: string, field: string): string {
    return resolveCheckpointDir(dir, field, this.opts.checkpointRoots);
  }

  private defaultTokenizer(config: GPT2Config, field: string): Tokenizer {
    const name = this.opts.tokenizer ?? (config.vocabSize >= 50257 ? "gpt2" : "byte");
    const tok = getTokenizer(name);
    const needed = tok.name === "gpt2" ? tok.eosId + 1 : tok.vocabSize;
    if (config.vocabSize < needed) throw new InvalidArgumentError(field, `vocab_size ${config.vocabSize} is too small for the ${tok.name} tokenizer (needs ${needed})`);
    return tok;
  }

  private swapPolicy(next: GPT2, ref: LoadedRef, tok: Tokenizer): void {
    const old = [this.policyModel, this.criticModel];
    this.policyModel = next;
    this.policyRef = ref;
    this.tok = tok;
    // A new policy starts without a critic and without PPO optimiser state (proto: "The critic is unloaded").
    this.criticModel = undefined;
    this.criticRef = { modelId: CRITIC_ID, version: 0, source: "" };
    this.resetPpo();
    for (const m of old) m?.dispose();
    this.opts.onLoaded?.();
    this.log.info({ modelId: ref.modelId, weightsVersion: ref.version, source: ref.source, config: next.config, tokenizer: tok.name, numTensors: tf.memory().numTensors }, "policy loaded");
  }

  private resetPpo(): void {
    this.policyPpo?.dispose();
    this.criticPpo?.dispose();
    this.policyPpo = this.criticPpo = undefined;
  }

  /** A plain model folder as the policy, version 0, fresh optimiser state, no critic. */
  async loadModelDir(dir: string, field = "model_dir"): Promise<void> {
    const abs = this.resolveDir(dir, field);
    const { config, tensors } = await loadCheckpointTensors(abs);
    const { hfConfig } = await loadCheckpointConfig(abs);
    const tok = "rlhf_tokenizer" in hfConfig ? tokenizerFromConfig(hfConfig, `${abs}/config.json`) : this.defaultTokenizer(config, field);
    const lm = GPT2.fromHostTensors(config, new Map([...tensors].filter(([n]) => n !== SCORE_WEIGHT && n !== SCORE_BIAS)), { trainable: true });
    this.swapPolicy(lm, { modelId: POLICY_MODEL_ID, version: 0, source: abs }, tok);
  }

  /** A seeded random policy, version 0. */
  loadRandom(config: GPT2Config, seed: number, field = "random_init.config"): void {
    const tok = this.defaultTokenizer(config, field);
    this.swapPolicy(GPT2.random(config, seed, { trainable: true }), { modelId: POLICY_MODEL_ID, version: 0, source: `random:${seed}` }, tok);
  }

  /**
   * The critic from reward-model tensors (trunk and `score.*`), version 0, fresh optimiser state.
   * Its vocabulary must be the policy's.
   */
  initCritic(config: GPT2Config, tensors: NamedHostTensors, source: string, field: string): void {
    const pc = this.policy().config;
    if (!tensors.has(SCORE_WEIGHT) || !tensors.has(SCORE_BIAS)) {
      throw new InvalidArgumentError(field, `${source} has no score.weight / score.bias: not a reward model`);
    }
    if (config.vocabSize !== pc.vocabSize) throw new InvalidArgumentError(field, `the reward model's vocab_size ${config.vocabSize} differs from the policy's ${pc.vocabSize}`);
    const next = ScalarHeadModel.fromHostTensors(config, tensors);
    const old = this.criticModel;
    this.criticModel = next;
    this.criticRef = { modelId: CRITIC_ID, version: 0, source };
    this.criticPpo?.dispose();
    this.criticPpo = undefined;
    old?.dispose();
    this.log.info({ modelId: CRITIC_ID, source, config: next.config }, "critic initialised");
  }

  /** The critic from a reward-model checkpoint folder. */
  async initCriticFromDir(dir: string, field = "checkpoint_dir"): Promise<void> {
    const abs = this.resolveDir(dir, field);
    const { config, tensors } = await loadCheckpointTensors(abs);
    this.initCritic(config, tensors, abs, field);
  }

  /**
   * Restores a checkpoint written by {@link save}: policy, critic (if saved), both PPO optimiser
   * states, versions and tokenizer, exactly. Everything is read and built before the swap.
   */
  async loadCheckpoint(dir: string, field = "checkpoint_dir"): Promise<void> {
    const abs = this.resolveDir(dir, field);
    const state = await readState(abs);
    const policyDir = join(abs, "policy");
    const p = await loadCheckpointTensors(policyDir);
    const { hfConfig } = await loadCheckpointConfig(policyDir);
    const tok = tokenizerFromConfig(hfConfig, `${policyDir}/config.json`);
    const built: { policy?: GPT2; critic?: ScalarHeadModel; pOpt?: Trainer; cOpt?: Trainer } = {};
    try {
      built.policy = GPT2.fromHostTensors(p.config, p.tensors, { trainable: true });
      if (state.policy.optimizer) built.pOpt = await restoreOptimizer(built.policy.parameters(), policyDir, state.policy.optimizer);
      if (state.critic) {
        const c = await loadCheckpointTensors(join(abs, "critic"));
        built.critic = ScalarHeadModel.fromHostTensors(c.config, c.tensors);
        if (state.critic.optimizer) built.cOpt = await restoreOptimizer(built.critic.parameters(), join(abs, "critic"), state.critic.optimizer);
      }
    } catch (e) {
      built.pOpt?.dispose();
      built.cOpt?.dispose();
      built.policy?.dispose();
      built.critic?.dispose();
      throw e;
    }
    this.swapPolicy(built.policy, { modelId: POLICY_MODEL_ID, version: state.policy.version, source: state.policy.source }, tok);
    if (built.critic && state.critic) {
      this.criticModel = built.critic;
      this.criticRef = { modelId: CRITIC_ID, version: state.critic.version, source: state.critic.source };
    }
    this.policyPpo = built.pOpt;
    this.criticPpo = built.cOpt;
  }

  /**
   * Writes the checkpoint (see SaveCheckpointRequest in policy.proto) via a temporary sibling
   * and a rename. A folder holding these versions already: nothing written (0 bytes); any other
   * non-empty folder: ALREADY_EXISTS.
   */
  async save(dir: string, field = "dir"): Promise<{ dir: string; bytes: number }> {
    const policy = this.policy();
    const tok = this.tok as Tokenizer;
    const abs = this.resolveDir(dir, field);
    const ref = this.policyRef;
    const critic = this.criticWeights;
    const bytes = await writeCheckpointFolder(
      abs,
      field,
      async (tmp) => {
        await saveCheckpoint(policy, join(tmp, "policy"), tokenizerConfig(tok));
        const state: StateJson = {
          format: "rlhf-policy-checkpoint/1",
          policy: { version: ref.version, source: ref.source, optimizer: await saveOptimizer(this.policyPpo, join(tmp, "policy")) },
          tokenizer: tok.name,
          rng: "none: sampling seeds come with each request",
        };
        if (this.criticModel) {
          await this.criticModel.save(join(tmp, "critic"), tokenizerConfig(tok));
          state.critic = { version: this.criticRef.version, source: this.criticRef.source, optimizer: await saveOptimizer(this.criticPpo, join(tmp, "critic")) };
        }
        await writeFile(join(tmp, STATE_FILE), JSON.stringify(state, null, 2) + "\n");
      },
      async (d) => {
        const existing = await readState(d);
        return existing.policy.version === ref.version && existing.policy.source === ref.source && existing.critic?.version === critic?.version;
      },
      `policy version ${ref.version}`,
    );
    return { dir: abs, bytes };
  }

  dispose(): void {
    this.resetPpo();
    this.policyModel?.dispose();
    this.criticModel?.dispose();
    this.policyModel = this.criticModel = undefined;
  }
}

async function saveOptimizer(trainer: Trainer | undefined, dir: string): Promise<OptimizerJson | undefined> {
  if (!trainer) return undefined;
  const o = trainer.optimizer;
  const { step, tensors } = o.getState();
  await writeSafetensorsFile(join(dir, OPTIMIZER_FILE), tensors, { format: "pt" });
  return { step, beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon, weightDecay: o.weightDecay };
}

async function restoreOptimizer(params: ReadonlyMap<string, tf.Variable>, dir: string, j: OptimizerJson): Promise<Trainer> {
  const trainer = ppoTrainer(params, { beta1: j.beta1, beta2: j.beta2, epsilon: j.epsilon, weightDecay: j.weightDecay });
  try {
    const { tensors } = await readSafetensorsFile(join(dir, OPTIMIZER_FILE));
    trainer.optimizer.setState({ step: j.step, tensors });
    return trainer;
  } catch (e) {
    trainer.dispose();
    throw e;
  }
}

async function readState(dir: string): Promise<StateJson> {
  const path = join(dir, STATE_FILE);
  const j = await readJsonFile<StateJson>(path, "no such file: not a policy checkpoint (use model_dir for a plain model folder)");
  if (j.format !== "rlhf-policy-checkpoint/1") throw new InvalidArgumentError(`${path}.format`, `must be "rlhf-policy-checkpoint/1", got ${JSON.stringify(j.format)}`);
  const v = (x: unknown, f: string) => {
    if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) throw new InvalidArgumentError(`${path}.${f}`, `must be an integer >= 0, got ${String(x)}`);
  };
  v(j.policy?.version, "policy.version");
  if (j.critic) v(j.critic.version, "critic.version");
  return j;
}
