/**
 * The input of the evaluation report (`ReportData`). Field names are those of report.json
 * (snake_case, as the run config), so the JSON is this data plus what the report computes
 * (acceptance checks, KL summary). REPORT.md documents every field.
 */

/** The models compared, in display order: pretrained base, SFT, plain PPO (gamma 0), PPO-ptx. */
export const MODEL_NAMES = ["base", "sft", "ppo", "ppo_ptx"] as const;
/** One of {@link MODEL_NAMES}. */
export type ModelName = (typeof MODEL_NAMES)[number];

/** The PPO variants trained: plain PPO (ptx gamma 0) and PPO-ptx. */
export const PPO_VARIANTS = ["ppo", "ppo_ptx"] as const;
/** One of {@link PPO_VARIANTS}. */
export type PpoVariant = (typeof PPO_VARIANTS)[number];

/** Human names of the models, for tables and chart legends. */
export const MODEL_LABELS: Readonly<Record<ModelName, string>> = Object.freeze({ base: "Base", sft: "SFT", ppo: "PPO", ppo_ptx: "PPO-ptx" });

/** The recipe's stages, in order (names as `run.elapsed_ms` keys). */
export const STAGE_NAMES = ["pretrain", "sft", "rankings", "reward_model", "ppo", "evaluation"] as const;

/** A plain JSON value. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** Which run this is. */
export interface RunSummary {
  /** Run id. */
  readonly id: string;
  /** When the run was created, ISO 8601 (UTC). */
  readonly created: string;
  /** When it finished, ISO 8601; null while unfinished. */
  readonly finished: string | null;
  /** The resolved run config (every default filled in), as JSON. */
  readonly config: { readonly [key: string]: JsonValue };
  /** Wall-clock milliseconds spent per stage, keyed by stage name (see {@link STAGE_NAMES}); stages that did not run are absent. */
  readonly elapsed_ms: { readonly [stage: string]: number };
  /** Compute backend the model services used, e.g. "torch", "wasm", "tensorflow-gpu". */
  readonly backend: string;
  /**
   * What the figures depend on besides weights and seeds, from the policy service (e.g. "torch
   * 1.13.1, 1 thread, cpu, portable kernels (OpenBLAS Haswell, ATen avx2)"); absent when it did not say.
   */
  readonly compute?: string;
  /** Whether the base model came from the pretraining cache (then `elapsed_ms.pretrain` is only the loading); absent when the cache was not used. */
  readonly pretrain_from_cache?: boolean;
}

/** Win rate against SFT on held-out prompts, judged by the simulated labelers. */
export interface WinRate {
  /** (wins + ties / 2) / comparisons, 0..1. */
  readonly rate: number;
  /** Pairwise comparisons judged (prompts x judgements). */
  readonly comparisons: number;
  /** 95% interval of `rate` (Wilson score), [low, high] within 0..1. */
  readonly ci95: readonly [number, number];
}

/** Evaluation of one model on the held-out prompts. */
export interface ModelEvaluation {
  /** Win rate against SFT; null for SFT itself (and whenever no labeler judged: see {@link ReportData.not_applicable}). */
  readonly win_rate_vs_sft: WinRate | null;
  /** Mean gold helpfulness (agreement with the gold answer), 0..1; null without gold answers. */
  readonly gold_helpfulness: number | null;
  /** Fraction of responses exactly the gold answer; null without gold answers. */
  readonly exact_match: number | null;
  /** Fraction of responses with a word that is not in the source (hallucination), 0..1; null without gold answers. */
  readonly hallucination_rate: number | null;
  /** Fraction of responses with a blocklisted word, 0..1; null without gold answers. */
  readonly blocklist_rate: number | null;
  /** Language-model loss on held-out pretraining text, nats per token. */
  readonly pretrain_validation_loss: number;
  /** Mean response length, tokens (EOS included when emitted). */
  readonly mean_response_tokens: number;
  /** Fraction of responses that ended with EOS (not cut at max_new_tokens), 0..1. */
  readonly eos_rate: number;
  /** The gold measures per task family of the held-out prompts (built-in data only; absent otherwise). */
  readonly by_family?: Readonly<Record<string, FamilyEvaluation>>;
}

/** One model's gold measures on the held-out prompts of one task family. */
export interface FamilyEvaluation {
  /** Held-out prompts of the family. */
  readonly prompts: number;
  /** (wins + ties / 2) / prompts against SFT's answers to the same prompts; null for SFT itself. */
  readonly win_rate_vs_sft: number | null;
  /** Share of the family's answers identical to SFT's (a tie for every labeler); null for SFT itself. */
  readonly same_as_sft: number | null;
  readonly gold_helpfulness: number;
  readonly exact_match: number;
  readonly hallucination_rate: number;
}

/** The reward model's evaluation. */
export interface RewardModelSummary {
  /** Fraction of held-out pairs it orders as the labeler did, 0..1. */
  readonly heldout_accuracy: number;
  /** How often two simulated labelers agreed on the ranked pairs of different responses, 0..1 (the yardstick to compare with); null when no simulated labeler ranked the data. */
  readonly labeler_agreement: number | null;
  /** Fraction of the ranked pairs of different responses whose gold scores tie (a coin toss for any labeler); null when no simulated labeler ranked the data. */
  readonly gold_tie_share: number | null;
  /** Ranking loss at the end of training, nats per pair. */
  readonly train_loss: number;
  /** Comparison pairs used: for training and held out. */
  readonly pairs: { readonly train: number; readonly heldout: number };
}

/** Metrics of one PPO iteration. */
export interface IterationMetrics {
  /** 1-based iteration. */
  readonly iteration: number;
  /** Finite values by namespaced name (`objective/kl`, `loss/policy`, `timing/generate_ms`, ...). */
  readonly values: { readonly [name: string]: number };
}

/** One held-out prompt with each model's response. */
export interface SampleRow {
  readonly prompt: string;
  /** The gold answer, when the data has one. */
  readonly gold: string | null;
  /** Responses by model; models not evaluated are absent. */
  readonly responses: { readonly [M in ModelName]?: string };
}

/** A span of one traced PPO iteration, for the timeline chart. */
export interface TimelineSpan {
  readonly name: string;
  /** Service that produced the span (`ppo-coordinator`, `policy`, ...). */
  readonly service: string;
  /** Start, milliseconds after the iteration's root span started. */
  readonly startMs: number;
  readonly durationMs: number;
  /** 0 for the root span, 1 for its children, ... */
  readonly depth: number;
  /** The span's `rlhf.*` attributes (iteration, variant, batch size, tokens, weights version, ...), when it has any. */
  readonly attributes?: { readonly [name: string]: string | number | boolean };
}

/**
 * Metrics that can be absent from a run by design, each with the reason when it is: the
 * labeler-judged and gold-answer metrics need the built-in tasks (users' data has no gold answers),
 * the labeler agreement needs simulated labelers to have ranked the reward model's data.
 */
export const OPTIONAL_METRICS = ["win_rate_vs_sft", "gold_helpfulness", "exact_match", "hallucination_rate", "blocklist_rate", "labeler_agreement", "gold_tie_share"] as const;
/** One of {@link OPTIONAL_METRICS}. */
export type OptionalMetric = (typeof OPTIONAL_METRICS)[number];

/** Everything the report shows. Any part but `run` may be absent; its section is then left out. */
export interface ReportData {
  readonly run: RunSummary;
  /** Metrics that do not apply to this run (their values are null), with the reason for each. */
  readonly not_applicable?: { readonly [M in OptionalMetric]?: string };
  /** Evaluation per model; models not trained or not evaluated are absent. */
  readonly models: { readonly [M in ModelName]?: ModelEvaluation };
  readonly reward_model?: RewardModelSummary;
  /** The KL bound from the config (`ppo.kl.max_mean_kl`); the observed values are the iterations' `objective/kl`. */
  readonly kl?: { readonly max_mean_kl: number };
  /** Per-iteration metrics of each PPO variant. */
  readonly iterations?: { readonly [V in PpoVariant]?: readonly IterationMetrics[] };
  /** Held-out prompts with every model's response. */
  readonly samples?: readonly SampleRow[];
  /** Training-loss curves of the stages before PPO: [optimizer step, loss] points. */
  readonly curves?: { readonly [S in CurveStage]?: readonly (readonly [number, number])[] };
  /**
   * Spans of one traced PPO iteration in tree order: the coordinator's root span and phases, and
   * the services' server spans under the phase whose call reached them.
   */
  readonly timeline?: readonly TimelineSpan[];
}

/** The stages whose training loss the report plots: pretraining and SFT (LM loss, nats per token), the reward model (ranking loss, nats per pair). */
export const CURVE_STAGES = ["pretrain", "sft", "reward_model"] as const;
/** One of {@link CURVE_STAGES}. */
export type CurveStage = (typeof CURVE_STAGES)[number];

/** The metric holding the per-iteration mean KL to the reference (k1 summed over response tokens, mean over sequences, nats). */
export const KL_METRIC = "objective/kl";
