/**
 * The recipe's records: what the stages read and write, in domain terms (no proto types). The
 * run's progress (`RecipeState`) is saved as `recipe-state.json` after every stage and every PPO
 * checkpoint, so a resumed run skips what is done and continues a PPO variant from its last
 * checkpoint.
 */
import type { InstructionTask, SimulatedLabeler } from "@rlhf/data";
import type { GPT2Config, Tokenizer } from "@rlhf/model/tokens";
import type { KlControllerState } from "@rlhf/rl";

/** The recipe's stages, in order. */
export const STAGES = ["pretrain", "sft", "rankings", "reward_model", "ppo", "evaluation"] as const;
export type StageName = (typeof STAGES)[number];

/** The key of a stage in `RecipeState.stageMs` and report.json's timings (`STAGE_SFT`). */
export const stageKey = (s: StageName): string => `STAGE_${s.toUpperCase()}`;

/** The models the recipe produces, by name. */
export type ModelName = "base" | "sft" | "ppo" | "ppo_ptx";

/** A prompt with one response: `tokens` = prompt + response, `promptLength` = P. */
export interface Sample {
  tokens: number[];
  promptLength: number;
  /** True if the response ends with EOS. */
  eos: boolean;
}

/** Response tokens of a sample. */
export const responseOf = (s: Sample): number[] => s.tokens.slice(s.promptLength);

/** A training sequence: prompt + completion ids, the first `promptLength` of them the prompt. */
export interface Example {
  tokens: number[];
  promptLength: number;
}

/** A ranked group of K responses to one reward-model prompt (rank 0 best; equal ranks tie). */
export interface RankedSamples {
  prompt: number[];
  responses: number[][];
  ranks: number[];
}

/** A set of weights a service holds: which model, which version, where it came from. */
export interface WeightsRef {
  modelId: string;
  version: number;
  source: string;
}

/** The user's pretraining text as pretrain-mix reads it (`data.files.pretrain`). */
export interface TextCorpus {
  files: string[];
  validationFraction: number;
  /** Hex SHA-256 of the files' bytes (pretrain-mix checks it). */
  contentDigest: string;
}

/** One file a run reads, as `data-files.json` records it. */
export interface DataFileRecord {
  /** The config key that names it (`data.files.sft`; a pretraining folder's files share its key). */
  key: string;
  /** Absolute path. */
  path: string;
  bytes: number;
  /** Hex SHA-256 of its bytes. */
  sha256: string;
}

/** Counters a PPO iteration advances (saved with every checkpoint). */
export interface PpoCursor {
  /** Iterations done. */
  iteration: number;
  /** Next PPO prompt (index into the prompt list, wraps). */
  promptCursor: number;
  /** Next pretraining window (pretrain-mix's cursor). */
  ptxCursor: number;
  /** The policy's weights version (PpoUpdate's expected_version). */
  policyVersion: number;
}

/** Evaluation of one model on the held-out prompts. */
export interface ModelEval {
  /** Null (and no wins, losses or ties) without gold answers: the labelers judge against them. */
  winRateVsSft: number | null;
  wins: number;
  losses: number;
  ties: number;
  /** The gold-answer metrics; null without gold answers (users' data). */
  goldHelpfulness: number | null;
  /** Share of answers exactly the gold answer (after trimming); null without gold answers. */
  exactMatch?: number | null;
  hallucinationRate: number | null;
  blocklistRate: number | null;
  pretrainValidationLoss: number;
  meanResponseTokens: number;
  eosRate: number;
  responses: string[];
  /** The gold measures per task family (built-in data only). */
  byFamily?: Record<string, FamilyEval>;
}

/** One model's gold measures on the held-out prompts of one task family. */
export interface FamilyEval {
  prompts: number;
  /** Null for SFT itself. */
  winRateVsSft: number | null;
  /** Answers identical to SFT's (canonicalResponse: a tie for every labeler); null for SFT itself. */
  sameAsSft: number | null;
  helpfulness: number;
  exactMatch: number;
  hallucinationRate: number;
}

/** What a variant's checkpoint holds besides the policy service's folder. */
export interface VariantCheckpoint {
  /** The policy service's checkpoint (policy, critic, both optimisers, versions). */
  dir: string;
  /** Counters and cursors at the checkpoint. */
  cursor: PpoCursor;
  /** The KL controller at the checkpoint. */
  kl: KlControllerState;
  /** Iterations whose metrics belong to the checkpoint. */
  iterations: number;
}

/** One PPO variant's progress. */
export interface VariantState {
  cursor: PpoCursor;
  kl: KlControllerState;
  /** Latest checkpoint: a resume continues from here, whatever ran after it. */
  checkpoint?: VariantCheckpoint;
  /** Metrics of every iteration so far. */
  iterations: { iteration: number; values: Record<string, number> }[];
  done: boolean;
}

/** Everything a resumed run needs, saved as `recipe-state.json` in the run folder. */
export interface RecipeState {
  /** Stages completed, in order. */
  stagesDone: StageName[];
  /** Policy checkpoint folders by model. */
  models: Partial<Record<ModelName, string>>;
  rewardModelDir?: string;
  /** `labelerAgreement` is null when the rankings came from a file (no simulated labelers ranked them). */
  rewardModel?: { heldoutAccuracy: number; trainLoss: number; trainPairs: number; pairs: number; labelerAgreement: number | null };
  ppo: Partial<Record<"ppo" | "ppo_ptx", VariantState>>;
  /** The simulated labelers' panel as the rankings stage set it (absent with a rankings file). */
  labelers?: LabelerPanelState;
  evaluation?: Partial<Record<ModelName, ModelEval>>;
  /** Elapsed milliseconds per stage (summed across resumes), by {@link stageKey}. */
  stageMs: Record<string, number>;
  /** The pretraining cache: where the base model came from (hit) or went (miss); absent when not used. */
  pretrainCache?: { key: string; dir: string; hit: boolean; savedMs: number };
  /** Training-loss curves of the stages before PPO, as [optimizer step, loss] points (for the report). */
  curves?: { pretrain?: [number, number][]; sft?: [number, number][]; reward_model?: [number, number][] };
}

/** The labelers' noise and how often two of them agreed on the ranked pairs. */
export interface LabelerPanelState {
  /** σ of every labeler's perceived-score noise. */
  noiseStd: number;
  /**
   * The pairs σ was calibrated on (`data.builtin.labeler_calibration`); with "ranked_samples", the
   * sampled pairs whose gold scores differ when equal scores made the target unreachable on all.
   */
  calibratedOn: "ranked_samples" | "ranked_samples_with_different_scores" | "simulated_responses";
  /** Two labelers' agreement measured on the ranked groups' pairs of different responses. */
  agreement: number;
  /** Pairs of different responses it was measured on. */
  pairs: number;
  /** Share of those pairs whose gold scores tie (a coin toss for any labeler). */
  goldTieShare?: number;
}

export function emptyState(): RecipeState {
  return { stagesDone: [], models: {}, ppo: {}, stageMs: {} };
}

/**
 * A `recipe-state.json` as stored, brought to today's shape: runs saved before the stages had
 * names list them by their proto enum number (1 = pretrain ... 6 = evaluation).
 */
export function stateFromJson(json: unknown): RecipeState {
  const s = json as Omit<RecipeState, "stagesDone"> & { stagesDone: (StageName | number)[] };
  return { ...s, stagesDone: s.stagesDone.map((x) => (typeof x === "number" ? STAGES[x - 1] : x)) };
}

/** A held-out evaluation prompt; `gold` is its built-in task (with the gold answer) when the data has one. */
export interface EvalPrompt {
  prompt: string;
  gold?: InstructionTask;
}

/** The run's data: built-in tasks or the user's files, the labeler panel, the pretraining text. */
export interface RecipeData {
  tok: Tokenizer;
  modelConfig: GPT2Config;
  /**
   * SFT demonstrations (built-in: prompt + the demonstrator's completion, gold or flawed; `eos`
   * false for one that never ends, which is trained without EOS).
   */
  sft: readonly { prompt: string; completion: string; eos?: boolean }[];
  /** Reward-model prompts for simulated rankings (built-in tasks; empty with a rankings file). */
  rm: InstructionTask[];
  /** Comparisons from `data.files.rankings` (pairs as K = 2), when `rankings.source` = "file". */
  rankingsFile?: readonly { prompt: string; responses: readonly string[]; ranking: readonly number[] }[];
  /** PPO prompts; `gold` is the built-in task (the gold scorer judges rollouts by it, for the report). */
  ppo: readonly EvalPrompt[];
  eval: readonly EvalPrompt[];
  /** The simulated labelers (none with users' data: they need gold answers). */
  labelers: SimulatedLabeler[];
  /** The user's pretraining text; undefined: pretrain-mix's built-in corpus. */
  textCorpus?: TextCorpus;
  /** Why the labeler-judged and gold-answer metrics do not apply; undefined when they do. */
  noGold?: string;
  /** The user's data files read, with their SHA-256 (a resume checks them against data-files.json). */
  files: readonly DataFileRecord[];
}

// What the stages and the PPO iteration hand the gateway (./gateway.ts), and what it hands back.

/** Adam with the recipe's betas (0.9, 0.95) and epsilon (1e-8). */
export interface AdamSettings {
  learningRate: number;
  weightDecay: number;
  maxGradNorm: number;
}

/** How a training call runs (Sft on the policy, Train on the reward model). */
export interface TrainSettings {
  epochs: number;
  batchSize: number;
  optimizer: AdamSettings;
  schedule: "cosine" | "constant";
  warmupSteps: number;
  minLearningRate: number;
  seed: number;
  progressEverySteps: number;
}

/** One Generate call's sampling (temperature 0 is not allowed: greedy is top_k 1). */
export interface GenerateSettings {
  samplesPerPrompt: number;
  temperature: number;
  maxNewTokens: number;
  seed: number;
  topK?: number;
}

/** A PPO minibatch in the response-token layout, with its hyperparameters. */
export interface PpoMinibatch {
  samples: Sample[];
  oldLogprobs: number[];
  oldValues: number[];
  advantages: number[];
  returns: number[];
  clipRange: number;
  valueClipRange: number;
  valueLossCoef: number;
  entropyCoef: number;
  temperature: number;
  policyOptimizer: AdamSettings;
  criticOptimizer: AdamSettings;
  expectedVersion: number;
}

/** The pretraining gradients that go with a minibatch (PPO-ptx). */
export interface PtxRequest {
  policyVersion: number;
  gamma: number;
  sequences: number;
  sequenceLength: number;
  cursor: number;
  seed: number;
  temperature: number;
  textCorpus?: TextCorpus;
}

/** A training call's progress after an optimizer step (fields a service does not report are absent). */
export interface StepProgress {
  step: number;
  loss: number;
  learningRate: number;
  gradNorm?: number;
  tokensPerSecond?: number;
  validationLoss?: number;
  /** Reward model: share of the batch's pairs ordered as ranked. */
  accuracy?: number;
}

/** A checkpoint a service wrote. */
export interface Saved {
  dir: string;
  weights: WeightsRef[];
  bytes: number;
}
