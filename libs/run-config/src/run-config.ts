/**
 * THE run config of the recipe (pretrain -> SFT -> rankings -> reward model -> PPO-ptx ->
 * evaluation): one table from which validation, defaults, the `RunConfig` type and the
 * documentation (CONFIG.md) are all derived. Keys are snake_case (JSON).
 *
 * Paper values are InstructGPT's (Ouyang et al. 2022, section 3 and appendix C) and are given
 * only where the paper states them; ours are scaled for small models on a 2-core machine.
 */
import {
  type ConfigReader,
  type ValueOf,
  bool,
  int,
  listOf,
  num,
  oneOf,
  optionalInt,
  optionalNum,
  optionalPath,
  optionalTextList,
  section,
} from "./schema";

/** Names of the model shapes. */
export const MODEL_PRESET_NAMES = ["tiny", "small", "gpt2-124m"] as const;
/** A model shape name. */
export type ModelPresetName = (typeof MODEL_PRESET_NAMES)[number];

/** A decoder's shape, without the vocabulary (which follows `model.tokenizer`). */
export interface ModelShape {
  /** Longest sequence (prompt + response), tokens. */
  readonly n_positions: number;
  /** Width of the residual stream. */
  readonly n_embd: number;
  /** Transformer blocks. */
  readonly n_layer: number;
  /** Attention heads per block (`n_embd` must be a multiple). */
  readonly n_head: number;
}

/**
 * The shapes `model.preset` names. `small` and `gpt2-124m` are `@rlhf/model`'s presets of the
 * same name; `tiny` is the model library's tiny (2 layers, 2 heads, 32 wide) with 256 positions
 * instead of 64, because the built-in prompts are up to 200 byte tokens.
 */
export const MODEL_PRESETS: Readonly<Record<ModelPresetName, ModelShape>> = Object.freeze({
  tiny: Object.freeze({ n_positions: 256, n_embd: 32, n_layer: 2, n_head: 2 }),
  small: Object.freeze({ n_positions: 256, n_embd: 128, n_layer: 4, n_head: 4 }),
  "gpt2-124m": Object.freeze({ n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 }),
});

/** Tokenizer names; the model's vocabulary follows the tokenizer. */
export const TOKENIZER_NAMES = ["byte", "bpe", "gpt2"] as const;
/** A tokenizer name. */
export type TokenizerName = (typeof TOKENIZER_NAMES)[number];
/** Token ids each tokenizer needs the model to embed: byte = 256 bytes + EOS + PAD; bpe = the Brown-learned 2048; gpt2 = GPT-2's 50257. */
export const TOKENIZER_VOCAB_SIZE: Readonly<Record<TokenizerName, number>> = Object.freeze({ byte: 258, bpe: 2048, gpt2: 50257 });

/** The sentence task families of the built-in data (`@rlhf/data`'s TASK_FAMILIES): lists over whole Brown sentences, for larger models. */
export const SENTENCE_FAMILY_NAMES = ["nouns", "verbs", "adjectives", "names", "count", "reverse", "longest"] as const;

/** The short task families (`@rlhf/data`'s SHORT_FAMILIES): a few words in, one to four out; what a small model learns in minutes. */
export const SHORT_FAMILY_NAMES = ["count_words", "last_word", "reverse_words", "pick_nouns", "longest_word", "repeat_word", "sort_words"] as const;

/** Every instruction task family of the built-in data. */
export const TASK_FAMILY_NAMES = [...SENTENCE_FAMILY_NAMES, ...SHORT_FAMILY_NAMES] as const;

/** The flaws a demonstration can carry (`@rlhf/data`'s FLAW_KINDS). */
export const FLAW_NAMES = ["missing_item", "extra_item", "wrong_order", "wrong_item", "wrong_count", "made_up_word", "blocklisted_word", "rambling"] as const;

function shapeDefault(key: keyof ModelShape) {
  return {
    doc: "from `model.preset`",
    derive: (get: ConfigReader) => {
      const preset = get("model.preset");
      return typeof preset === "string" && preset in MODEL_PRESETS ? MODEL_PRESETS[preset as ModelPresetName][key] : undefined;
    },
  };
}

const LR = { gt: 0, max: 1 } as const;
const GRAD_NORM = { gt: 0, max: 1e6 } as const;
const WEIGHT_DECAY = { min: 0, max: 1 } as const;
const SCHEDULES = ["constant", "cosine"] as const;
const SCHEDULE_DOC = "constant: linear warm-up, then flat; cosine: the same warm-up, then cosine decay to 10% of the learning rate at the last step (as the paper)";

/** The run config schema: every key, its type, default, unit, limits, paper value and meaning. */
export const RUN_CONFIG_SCHEMA = section("A run of the recipe", {
  seed: int({ default: 0, min: 0, max: 2 ** 31 - 1, description: "Seed of every random choice of the run (initialisation, data order, sampling, labeler noise)" }),
  model: section("The policy's shape and tokenizer (the reward model, critic and reference share them)", {
    preset: oneOf(MODEL_PRESET_NAMES, {
      default: "tiny",
      paper: "GPT-3 1.3B / 6B / 175B",
      description: "Model shape (see the presets table); the fields below override it",
    }),
    n_positions: int({ default: shapeDefault("n_positions"), min: 8, max: 65536, unit: "tokens", paper: 2048, description: "Longest sequence the model takes (prompt + response)" }),
    n_embd: int({ default: shapeDefault("n_embd"), min: 1, max: 16384, limitsNote: "multiple of `model.n_head`", description: "Width of the residual stream" }),
    n_layer: int({ default: shapeDefault("n_layer"), min: 1, max: 256, description: "Transformer blocks" }),
    n_head: int({ default: shapeDefault("n_head"), min: 1, max: 256, description: "Attention heads per block" }),
    tokenizer: oneOf(TOKENIZER_NAMES, {
      default: "byte",
      paper: "GPT-3 BPE",
      description:
        "byte: UTF-8 bytes + EOS + PAD (vocabulary 258); bpe: a byte-level BPE learned from the Brown corpus (vocabulary 2048, about 3 characters a token; recorded with its merges in every checkpoint); gpt2: GPT-2 BPE (vocabulary 50257, needed for real GPT-2 weights)",
    }),
    base_checkpoint: optionalPath({
      default: null,
      description: "Folder (config.json + model.safetensors) to start from instead of a random model, e.g. real GPT-2 weights; its shape must equal the resolved one",
    }),
  }),
  data: section("Where prompts, demonstrations, rankings and pretraining text come from", {
    source: oneOf(["builtin", "files"] as const, {
      default: "builtin",
      description:
        "builtin: instruction tasks on the Brown corpus with gold answers and simulated labelers; files: your files in `data.files` (no gold answers: the report marks the labeler-judged metrics not applicable)",
    }),
    max_prompt_tokens: int({
      default: 176,
      min: 1,
      max: 65536,
      unit: "tokens",
      limitsNote: "+ each stage's `max_new_tokens` <= `model.n_positions`",
      description: "Built-in prompts longer than this are left out of every split, so that prompt + response fits the model (they are at most 171 bytes); in your files a longer prompt is an error naming its line",
    }),
    pretrain_validation_fraction: num({
      default: 0.05,
      gt: 0,
      max: 0.5,
      description:
        "Fraction of the documents of `data.files.pretrain` held out for the pretraining validation loss: document i (all files in order) when floor((i+1)f) > floor(i f). The Brown corpus keeps pretrain-mix's VALID_FRACTION (every 20th document)",
    }),
    builtin: section("The built-in data (`data.source` = \"builtin\")", {
      seed: int({
        default: { doc: "`seed`", derive: (get) => get("seed") as number | undefined },
        min: 0,
        max: 2 ** 31 - 1,
        description: "Seed of the task sentences' split and of the labelers' noise",
      }),
      sft_prompts: int({ default: 2000, min: 1, max: 100000, unit: "prompts", paper: "~13k", description: "SFT demonstrations (prompt + gold completion)" }),
      rm_prompts: int({ default: 2000, min: 2, max: 100000, unit: "prompts", paper: "~33k", description: "Reward-model prompts, each ranked over K sampled responses" }),
      ppo_prompts: int({ default: 2000, min: 1, max: 100000, unit: "prompts", paper: "~31k", description: "PPO prompts (cycled through when the iterations need more)" }),
      eval_prompts: int({ default: 500, min: 1, max: 100000, unit: "prompts", description: "Held-out evaluation prompts" }),
      families: listOf(TASK_FAMILY_NAMES, {
        default: SENTENCE_FAMILY_NAMES,
        description:
          "Instruction task families mixed round-robin in every split. Sentence families (nouns ... longest) work on a whole Brown sentence; short ones (count_words, last_word, reverse_words, pick_nouns, longest_word, repeat_word, sort_words) on 1-8 of its words, with answers a small model learns (the demo presets use them; `rlhf data learnability` measures each)",
      }),
      demonstrations: section(
        "The demonstrators who write the SFT data: they give the gold answer except for a share that carries one realistic flaw (as the paper's contractors varied), so the SFT model's samples vary in quality that labelers can rank",
        {
          flaw_share: num({
            default: 0,
            min: 0,
            max: 1,
            description:
              "Mean share of flawed demonstrations; demonstrator d of D flaws share·(0.5 + d/(D−1)) of its own (the best half as often, the worst 1.5 times). Each flawed one carries one flaw of `flaws` that suits its task, drawn uniformly. 0: every demonstration is the gold answer",
          }),
          demonstrators: int({ default: 4, min: 1, max: 1000, unit: "demonstrators", paper: "~40 contractors", description: "Demonstrators; prompt i is demonstrated by demonstrator i mod count" }),
          flaws: listOf(FLAW_NAMES, {
            default: FLAW_NAMES,
            description:
              "The flaws they make: missing_item (one item of a list or sequence left out), extra_item (another word of the input added), wrong_order (two items swapped), wrong_item (another word of the input as a one-word answer), wrong_count (a count off by 1 or 2), made_up_word (a word not in the input added or substituted), blocklisted_word (a blocklisted word added), rambling (the answer, then the input's words over and over with no EOS: the demonstration never ends)",
          }),
        },
      ),
      labelers: int({ default: 4, min: 1, max: 1000, unit: "labelers", paper: "~40", description: "Simulated labelers; prompt i is ranked by labeler i mod count" }),
      labeler_agreement: num({
        default: 0.73,
        gt: 0.5,
        lt: 1,
        paper: 0.726,
        description: "How often two labelers agree on a pair of different responses; sets the labelers' noise on the pairs `labeler_calibration` names (paper: 72.6 ± 1.5%, measured on its comparisons of model outputs)",
      }),
      labeler_calibration: oneOf(["ranked_samples", "simulated_responses"] as const, {
        default: "ranked_samples",
        paper: "agreement measured on the ranked outputs",
        description:
          "Which pairs the labelers' noise is calibrated on so that two labelers agree on `labeler_agreement` of them. ranked_samples: the pairs of different SFT samples the rankings stage gives them (as the paper measured its labelers); the same panel judges the evaluation. simulated_responses: pairs of simulated responses (gold answers with random edits), which differ far more than a small model's samples, so labelers are noisier on the real rankings",
      }),
      blocklist: optionalTextList({ default: null, description: "Words the labelers count as harmful; null = the data library's default list" }),
    }),
    files: section(
      "Your own data (formats in docs/data.md and docs/user-data.md). Absolute paths: `rlhf run` makes a config file's relative paths absolute from the file's folder. Every file is read and checked when the run starts (a bad line fails StartRun with file:line: field) and must not change while the run lasts (a resume checks their SHA-256)",
      {
        sft: optionalPath({ default: null, description: "SFT demonstrations, JSONL `{prompt, completion}` (prompt + completion + EOS must fit `model.n_positions`); required with files" }),
        rankings: optionalPath({
          default: null,
          description:
            "Comparisons for the reward model, JSONL rankings `{prompt, responses[K], ranking[K]}` (K 2..16) or pairs `{prompt, chosen, rejected}` (K = 2), the format of the first line; required when `rankings.source` = \"file\" (with built-in or your data)",
        }),
        prompts: optionalPath({ default: null, description: "PPO prompts, JSONL `{prompt}` (cycled through); required with files" }),
        eval_prompts: optionalPath({ default: null, description: "Held-out evaluation prompts, JSONL `{prompt}` (the first `evaluation.prompts`); required with files" }),
        pretrain: optionalPath({
          default: null,
          description:
            "Pretraining text for pretraining, PPO-ptx and the validation loss: a UTF-8 file, or a folder whose .txt files are read in name order; documents separated by blank lines; split by `data.pretrain_validation_fraction`. null: the built-in Brown corpus",
        }),
      },
    ),
  }),
  pretrain: section("Training the base model on the pretraining corpus", {
    enabled: bool({
      default: { doc: "true unless `model.base_checkpoint`", derive: (get) => (get("model.base_checkpoint") === undefined ? undefined : get("model.base_checkpoint") === null) },
      paper: "GPT-3 pretrained",
      description: "Pretrain the base model (from `model.base_checkpoint` when set, else from random weights)",
    }),
    cache: bool({
      default: true,
      description:
        "Reuse a base model pretrained before with the same settings (model shape, tokenizer, this section, seed, pretraining text, the policy service's backend and CPU kernels) from `<runs dir>/pretrain-cache/<hash>/`, and put this run's there; `rlhf demo --no-cache` / false retrains (and replaces the cached one)",
    }),
    steps: int({ default: 1000, min: 1, max: 10_000_000, unit: "optimizer steps", description: "Pretraining optimiser steps" }),
    batch_size: int({ default: 16, min: 1, max: 4096, unit: "sequences", description: "Token windows per step" }),
    sequence_length: int({ default: 128, min: 2, max: 65536, unit: "tokens", limitsNote: "<= `model.n_positions`", description: "Length of a pretraining window" }),
    learning_rate: num({ default: 1e-3, ...LR, description: "Peak AdamW learning rate" }),
    schedule: oneOf(SCHEDULES, { default: "cosine", description: SCHEDULE_DOC }),
    warmup_steps: int({ default: 50, min: 0, max: 10_000_000, unit: "optimizer steps", limitsNote: "< `pretrain.steps`", description: "Linear warm-up steps" }),
    weight_decay: num({ default: 0.1, ...WEIGHT_DECAY, description: "AdamW decoupled weight decay (embeddings and biases spared)" }),
    max_grad_norm: num({ default: 1.0, ...GRAD_NORM, description: "Global gradient-norm clip" }),
  }),
  sft: section("Supervised fine-tuning on demonstrations (loss on completion tokens only)", {
    epochs: int({ default: 2, min: 1, max: 1000, unit: "epochs", paper: 16, description: "Passes over the demonstrations (the paper trains 16 although it overfits after 1)" }),
    batch_size: int({ default: 16, min: 1, max: 4096, unit: "sequences", paper: "32 (1.3B, 6B); 8 (175B)", description: "Demonstrations per optimiser step" }),
    learning_rate: num({ default: 3e-4, ...LR, paper: "9.65e-6 (1.3B, 6B); 5.03e-6 (175B)", description: "Peak AdamW learning rate" }),
    schedule: oneOf(SCHEDULES, { default: "cosine", paper: "cosine", description: SCHEDULE_DOC }),
    warmup_steps: int({ default: 0, min: 0, max: 10_000_000, unit: "optimizer steps", paper: 0, description: "Linear warm-up steps" }),
    weight_decay: num({ default: 0, ...WEIGHT_DECAY, description: "AdamW decoupled weight decay" }),
    max_grad_norm: num({ default: 1.0, ...GRAD_NORM, description: "Global gradient-norm clip" }),
  }),
  rankings: section("Comparison data: K responses per prompt ranked by the labelers", {
    source: oneOf(["simulated", "file", "labeling"] as const, {
      default: "simulated",
      description:
        "simulated: sample K responses per prompt from the SFT model, the simulated labelers rank them (built-in data only: they judge against gold answers); file: your rankings or pairs in `data.files.rankings` (the only choice with `data.source` = \"files\"); labeling: sample as with simulated, send them to the labeling service (the coordinator's `LABELING_ADDR`) and wait for people (or `rlhf label simulate`) to rank them (built-in data only)",
    }),
    k: int({ default: 4, min: 2, max: 16, unit: "responses", paper: "4..9", description: "Responses ranked per prompt; each gives C(K,2) pairs in one batch element (a file's records bring their own K)" }),
    prompts: int({
      default: 1000,
      min: 2,
      max: 1_000_000,
      unit: "prompts",
      limitsNote: "<= `data.builtin.rm_prompts` (built-in)",
      description: "Prompts ranked (with a file: its first this many records, or all when it has fewer)",
    }),
    temperature: num({ default: 1.0, gt: 0, max: 10, description: "Sampling temperature of the K responses" }),
    max_new_tokens: int({ default: 80, min: 1, max: 65536, unit: "tokens", description: "Longest sampled response (built-in gold answers: 99% within 72 bytes)" }),
    labeling: section('With `rankings.source` = "labeling": the batch sent to the labeling service', {
      min_ranked: optionalInt({
        default: null,
        min: 2,
        max: 1_000_000,
        unit: "prompts",
        description: "The stage waits until this many prompts are ranked, then trains on those ranked by then; null: every one of `rankings.prompts`",
      }),
      overlap: optionalNum({
        default: null,
        min: 0,
        max: 1,
        description: "Share of the prompts that go to two labelers (agreement on the admin page; the reward model trains on the first ranking of each); null: the service's OVERLAP_PERCENT",
      }),
    }),
  }),
  reward_model: section("The reward model: the SFT model with a scalar head, trained on the rankings", {
    epochs: int({ default: 1, min: 1, max: 1000, unit: "epochs", paper: 1, description: "Passes over the ranking groups" }),
    batch_size: int({ default: 16, min: 1, max: 4096, unit: "prompts", paper: 64, description: "Ranking groups (all C(K,2) pairs of one prompt) per optimiser step" }),
    learning_rate: num({ default: 1e-4, ...LR, paper: "9e-6 (6B)", description: "Peak AdamW learning rate" }),
    schedule: oneOf(SCHEDULES, { default: "cosine", paper: "cosine", description: SCHEDULE_DOC }),
    weight_decay: num({ default: 0, ...WEIGHT_DECAY, description: "AdamW decoupled weight decay" }),
    max_grad_norm: num({ default: 1.0, ...GRAD_NORM, description: "Global gradient-norm clip" }),
    normalize: bool({ default: true, paper: true, description: "After training, add a bias so that the demonstrations score 0 on average" }),
    validation_fraction: num({
      default: 0.1,
      gt: 0,
      lt: 1,
      limitsNote: "leaves >= 1 prompt on each side",
      description:
        "Fraction of ranked prompts held out for the pairwise accuracy: simulated, the first round(n f); from a file, record i (of the n used) when floor((i+1)f) > floor(i f), so a sorted file is sampled evenly",
    }),
  }),
  ppo: section("PPO(-ptx) against the reward model, with a KL penalty to the SFT model", {
    iterations: int({ default: 50, min: 1, max: 1_000_000, unit: "iterations", paper: "500 (256k episodes / 512)", description: "Rollout + update iterations" }),
    prompts_per_iteration: int({
      default: 64,
      min: 1,
      max: 65536,
      unit: "sequences",
      paper: 512,
      limitsNote: "<= `data.builtin.ppo_prompts` (built-in)",
      description: "Rollout batch: prompts sampled per iteration, one response (episode) each",
    }),
    max_new_tokens: int({ default: 80, min: 1, max: 65536, unit: "tokens", description: "Longest rollout response" }),
    temperature: num({ default: 1.0, gt: 0, max: 10, paper: 1, description: "Sampling temperature of rollouts; training-time forwards divide the logits by it too" }),
    ppo_epochs: int({ default: 1, min: 1, max: 100, unit: "epochs", paper: 1, description: "Passes over each rollout batch" }),
    minibatch_size: int({
      default: 16,
      min: 1,
      max: 65536,
      unit: "sequences",
      paper: 64,
      limitsNote: "divides `ppo.prompts_per_iteration`",
      description: "Sequences per PPO update (one optimiser step)",
    }),
    clip_range: num({ default: 0.2, gt: 0, lt: 1, paper: 0.2, description: "PPO ratio clip epsilon" }),
    value_clip_range: num({ default: 0.2, gt: 0, max: 1e6, description: "Clip of new values around the old values (value loss)" }),
    value_loss_coef: num({ default: 1.0, gt: 0, max: 1e6, description: "Weight of the critic's loss (the critic has its own optimiser: matters through `max_grad_norm`)" }),
    entropy_coef: num({ default: 0, min: 0, max: 1, description: "Entropy bonus weight" }),
    gae_gamma: num({ default: 1.0, min: 0, max: 1, paper: "1 (no discount)", description: "GAE discount over response tokens" }),
    gae_lambda: num({ default: 0.95, min: 0, max: 1, description: "GAE lambda" }),
    policy_learning_rate: num({ default: 3e-5, ...LR, description: "Policy AdamW learning rate" }),
    critic_learning_rate: num({ default: 1e-4, ...LR, description: "Critic AdamW learning rate" }),
    warmup_iterations: int({
      default: 0,
      min: 0,
      max: 1_000_000,
      unit: "iterations",
      paper: 10,
      limitsNote: "< `ppo.iterations`",
      description: "Linear learning-rate warm-up (the paper starts at a tenth of the peak), then constant",
    }),
    max_grad_norm: num({ default: 1.0, ...GRAD_NORM, description: "Global gradient-norm clip (policy and critic each)" }),
    missing_eos_penalty: num({
      default: -1.0,
      min: -1e6,
      max: 0,
      description: "Added to the reward-model score of a response that hit `max_new_tokens` without EOS",
    }),
    critic_init: oneOf(["reward_model", "sft"] as const, {
      default: "reward_model",
      paper: "reward_model",
      description: "Where the critic (value model) starts: the reward model, or the SFT model with a zero head",
    }),
    compare_without_ptx: bool({
      default: true,
      description: "Also train plain PPO (ptx gamma 0) from the same SFT model, for the report's alignment-tax comparison",
    }),
    kl: section("The KL penalty: per-token reward -beta * (log pi_RL - log pi_SFT)", {
      controller: oneOf(["fixed", "adaptive"] as const, { default: "fixed", paper: "fixed", description: "fixed beta, or Ziegler et al.'s adaptive controller" }),
      beta: num({ default: 0.02, min: 0, max: 100, unit: "reward per nat", paper: 0.02, description: "KL coefficient (the adaptive controller's initial beta; > 0 there)" }),
      target: optionalNum({
        default: null,
        gt: 0,
        max: 1e6,
        unit: "nats per sequence",
        description: "Adaptive: target batch mean of the per-sequence KL sum; required with adaptive",
      }),
      horizon: optionalInt({
        default: null,
        min: 1,
        max: 1e9,
        unit: "sequences",
        description: "Adaptive: how fast beta moves (Ziegler et al.: 10000); required with adaptive",
      }),
      max_mean_kl: num({
        default: 10,
        gt: 0,
        max: 1e6,
        unit: "nats per sequence",
        description: "Bound the report checks: every iteration's mean KL to the reference (per-sequence k1 sum) must stay under it",
      }),
    }),
    ptx: section("Pretraining gradients mixed into each PPO update (PPO-ptx)", {
      gamma: num({ default: 1.0, gt: 0, max: 1e6, paper: 27.8, description: "Pretraining loss coefficient of the PPO-ptx model (plain PPO uses 0)" }),
      sequences: int({ default: 16, min: 1, max: 65536, unit: "sequences", description: "Pretraining windows per PPO minibatch" }),
      sequence_length: int({ default: 128, min: 2, max: 65536, unit: "tokens", limitsNote: "<= `model.n_positions`", description: "Length of a pretraining window" }),
    }),
  }),
  evaluation: section("Evaluation of base, SFT, PPO and PPO-ptx on held-out prompts", {
    prompts: int({
      default: 200,
      min: 1,
      max: 1_000_000,
      unit: "prompts",
      limitsNote: "<= `data.builtin.eval_prompts` (built-in)",
      description: "Held-out prompts answered by each model (with a file: its first this many, or all when it has fewer)",
    }),
    max_new_tokens: int({ default: 80, min: 1, max: 65536, unit: "tokens", description: "Longest evaluation response" }),
    temperature: num({ default: 0, min: 0, max: 10, description: "0: greedy decoding (the most likely token, deterministic); > 0: sampling at that temperature" }),
    pretrain_validation_sequences: int({
      default: 64,
      min: 1,
      max: 1_000_000,
      unit: "sequences",
      description: "Validation windows (of `pretrain.sequence_length` tokens) for each model's pretraining loss",
    }),
    samples_in_report: int({ default: 8, min: 0, max: 1000, unit: "prompts", limitsNote: "<= `evaluation.prompts`", description: "Prompts shown with every model's response side by side in the report" }),
  }),
  checkpoint: section("Checkpoints in the run folder", {
    every_iterations: int({ default: 10, min: 1, max: 1_000_000, unit: "iterations", description: "PPO iterations between checkpoints (each stage's end is always checkpointed)" }),
    keep_last: int({ default: 2, min: 1, max: 1000, unit: "checkpoints", description: "Checkpoints kept; older ones are deleted" }),
  }),
});

/** A resolved run config: every key present, deep-frozen. Derived from {@link RUN_CONFIG_SCHEMA}. */
export type RunConfig = ValueOf<typeof RUN_CONFIG_SCHEMA>;

/** A rule between keys, checked after each key alone is valid. */
export interface CrossFieldRule {
  /** The key an error is reported on. */
  readonly path: string;
  /** Every key the rule reads; the rule is skipped when any of them is invalid. */
  readonly reads: readonly string[];
  /** The rule as the documentation states it. */
  readonly doc: string;
  /** The error message, or undefined when the rule holds. */
  readonly check: (c: RunConfig) => string | undefined;
}

const positions = (c: RunConfig): number => c.model.n_positions;

function fitsContext(stage: "rankings" | "ppo" | "evaluation"): CrossFieldRule {
  return {
    path: `${stage}.max_new_tokens`,
    reads: [`${stage}.max_new_tokens`, "data.max_prompt_tokens", "model.n_positions", "model.preset"],
    doc: `\`data.max_prompt_tokens\` + \`${stage}.max_new_tokens\` <= \`model.n_positions\``,
    check: (c) => {
      const total = c.data.max_prompt_tokens + c[stage].max_new_tokens;
      return total > positions(c)
        ? `with data.max_prompt_tokens (${c.data.max_prompt_tokens}) must fit model.n_positions (${positions(c)}): at most ${positions(c) - c.data.max_prompt_tokens}, got ${c[stage].max_new_tokens}`
        : undefined;
    },
  };
}

function atMost(path: string, limitPath: string, get: (c: RunConfig) => [number, number], when?: { doc: string; test: (c: RunConfig) => boolean; reads: string[] }): CrossFieldRule {
  return {
    path,
    reads: [path, limitPath, ...(when?.reads ?? [])],
    doc: `\`${path}\` <= \`${limitPath}\`${when ? ` ${when.doc}` : ""}`,
    check: (c) => {
      if (when && !when.test(c)) return undefined;
      const [v, limit] = get(c);
      return v > limit ? `must be <= ${limitPath} (${limit}), got ${v}` : undefined;
    },
  };
}

const builtinOnly = { doc: "with built-in data", test: (c: RunConfig) => c.data.source === "builtin", reads: ["data.source"] };

function requiredFile(key: "sft" | "prompts" | "eval_prompts"): CrossFieldRule {
  return {
    path: `data.files.${key}`,
    reads: ["data.source", `data.files.${key}`],
    doc: `\`data.files.${key}\` is set when \`data.source\` = "files"`,
    check: (c) => (c.data.source === "files" && c.data.files[key] === null ? 'is required when data.source is "files"' : undefined),
  };
}

function onlyWithFiles(key: "sft" | "prompts" | "eval_prompts"): CrossFieldRule {
  return {
    path: `data.files.${key}`,
    reads: ["data.source", `data.files.${key}`],
    doc: `\`data.files.${key}\` is null when \`data.source\` = "builtin" (nothing would read it)`,
    check: (c) => (c.data.source === "builtin" && c.data.files[key] !== null ? 'is only read when data.source is "files" (it is "builtin"): set data.source to "files", or remove this key' : undefined),
  };
}

/** The most training memory a run's model may need in one service (see {@link trainingMemoryBytes}): 32 GiB. */
export const MAX_TRAINING_MEMORY_BYTES = 32 * 1024 ** 3;

/**
 * An estimate of the memory the policy service needs to train the configured model, the largest of
 * the services' needs: two models (policy and critic), each with weights, gradients and two AdamW
 * moments in float32 (16 bytes per parameter), plus one model's activations for one micro-batch
 * of the largest training batch, at most 8,192 tokens (about 16·n_embd floats per token and layer,
 * the attention scores of every head, and the logits, kept for the backward pass). A lower bound in practice, good enough to refuse a model
 * that could never fit before any service allocates it.
 */
export function trainingMemoryBytes(c: RunConfig): { bytes: number; parameters: number; batchTokens: number } {
  const d = c.model.n_embd;
  const L = c.model.n_layer;
  const T = c.model.n_positions;
  const V = TOKENIZER_VOCAB_SIZE[c.model.tokenizer];
  const parameters = V * d + T * d + L * (12 * d * d + 13 * d) + 2 * d;
  const batch = Math.max(c.pretrain.batch_size, c.sft.batch_size, c.ppo.minibatch_size, c.reward_model.batch_size * c.rankings.k);
  // The services split a batch into micro-batches (MICRO_BATCH_TOKENS); count one of at most 8,192 tokens.
  const batchTokens = Math.min(batch * T, 8192);
  const activations = 4 * batchTokens * (L * (16 * d + c.model.n_head * T) + V);
  return { bytes: 2 * 16 * parameters + activations, parameters, batchTokens };
}

const gib = (b: number) => `${(b / 1024 ** 3).toFixed(b < 10 * 1024 ** 3 ? 1 : 0)} GiB`;

/** Rules between keys; each error names `path`. */
export const CROSS_FIELD_RULES: readonly CrossFieldRule[] = Object.freeze([
  {
    path: "model.n_layer",
    reads: ["model.n_embd", "model.n_layer", "model.n_head", "model.n_positions", "model.tokenizer", "pretrain.batch_size", "sft.batch_size", "ppo.minibatch_size", "reward_model.batch_size", "rankings.k"],
    doc: "the model fits a training budget of 32 GiB: policy and critic with gradients and AdamW moments (32 bytes per parameter) plus activations for one micro-batch (at most 8,192 tokens) of the largest training batch",
    check: (c) => {
      const m = trainingMemoryBytes(c);
      return m.bytes > MAX_TRAINING_MEMORY_BYTES
        ? `this model (n_embd ${c.model.n_embd}, n_layer ${c.model.n_layer}, ${m.parameters.toExponential(2)} parameters) needs an estimated ${gib(m.bytes)} to train (policy and critic, 32 bytes per parameter, plus activations for a micro-batch of ${m.batchTokens} tokens), more than the limit of ${gib(MAX_TRAINING_MEMORY_BYTES)}: make model.n_embd or model.n_layer (or the batch sizes) smaller`
        : undefined;
    },
  },
  {
    path: "model.n_embd",
    reads: ["model.n_embd", "model.n_head", "model.preset"],
    doc: "`model.n_embd` is a multiple of `model.n_head`",
    check: (c) => (c.model.n_embd % c.model.n_head !== 0 ? `must be a multiple of model.n_head (${c.model.n_head}), got ${c.model.n_embd}` : undefined),
  },
  atMost("pretrain.sequence_length", "model.n_positions", (c) => [c.pretrain.sequence_length, positions(c)]),
  atMost("ppo.ptx.sequence_length", "model.n_positions", (c) => [c.ppo.ptx.sequence_length, positions(c)]),
  fitsContext("rankings"),
  fitsContext("ppo"),
  fitsContext("evaluation"),
  {
    path: "pretrain.warmup_steps",
    reads: ["pretrain.warmup_steps", "pretrain.steps"],
    doc: "`pretrain.warmup_steps` < `pretrain.steps`",
    check: (c) => (c.pretrain.warmup_steps >= c.pretrain.steps ? `must be < pretrain.steps (${c.pretrain.steps}), got ${c.pretrain.warmup_steps}` : undefined),
  },
  {
    path: "ppo.warmup_iterations",
    reads: ["ppo.warmup_iterations", "ppo.iterations"],
    doc: "`ppo.warmup_iterations` < `ppo.iterations`",
    check: (c) => (c.ppo.warmup_iterations >= c.ppo.iterations ? `must be < ppo.iterations (${c.ppo.iterations}), got ${c.ppo.warmup_iterations}` : undefined),
  },
  atMost("ppo.minibatch_size", "ppo.prompts_per_iteration", (c) => [c.ppo.minibatch_size, c.ppo.prompts_per_iteration]),
  {
    path: "ppo.minibatch_size",
    reads: ["ppo.minibatch_size", "ppo.prompts_per_iteration"],
    doc: "`ppo.minibatch_size` divides `ppo.prompts_per_iteration` (equal minibatches)",
    check: (c) =>
      c.ppo.minibatch_size <= c.ppo.prompts_per_iteration && c.ppo.prompts_per_iteration % c.ppo.minibatch_size !== 0
        ? `must divide ppo.prompts_per_iteration (${c.ppo.prompts_per_iteration}), got ${c.ppo.minibatch_size}`
        : undefined,
  },
  {
    path: "ppo.kl.target",
    reads: ["ppo.kl.controller", "ppo.kl.target"],
    doc: '`ppo.kl.target` is set when `ppo.kl.controller` = "adaptive"',
    check: (c) => (c.ppo.kl.controller === "adaptive" && c.ppo.kl.target === null ? 'is required when ppo.kl.controller is "adaptive"' : undefined),
  },
  {
    path: "ppo.kl.horizon",
    reads: ["ppo.kl.controller", "ppo.kl.horizon"],
    doc: '`ppo.kl.horizon` is set when `ppo.kl.controller` = "adaptive"',
    check: (c) => (c.ppo.kl.controller === "adaptive" && c.ppo.kl.horizon === null ? 'is required when ppo.kl.controller is "adaptive"' : undefined),
  },
  {
    path: "ppo.kl.beta",
    reads: ["ppo.kl.controller", "ppo.kl.beta"],
    doc: '`ppo.kl.beta` > 0 when `ppo.kl.controller` = "adaptive" (it scales beta multiplicatively)',
    check: (c) => (c.ppo.kl.controller === "adaptive" && c.ppo.kl.beta === 0 ? 'must be > 0 when ppo.kl.controller is "adaptive", got 0' : undefined),
  },
  requiredFile("sft"),
  requiredFile("prompts"),
  requiredFile("eval_prompts"),
  onlyWithFiles("sft"),
  onlyWithFiles("prompts"),
  onlyWithFiles("eval_prompts"),
  {
    path: "data.files.rankings",
    reads: ["rankings.source", "data.files.rankings"],
    doc: '`data.files.rankings` is null when `rankings.source` is not "file" (nothing would read it)',
    check: (c) =>
      c.rankings.source !== "file" && c.data.files.rankings !== null ? `is only read when rankings.source is "file" (it is "${c.rankings.source}"): set rankings.source to "file", or remove this key` : undefined,
  },
  {
    path: "data.files.rankings",
    reads: ["rankings.source", "data.files.rankings"],
    doc: '`data.files.rankings` is set when `rankings.source` = "file"',
    check: (c) => (c.rankings.source === "file" && c.data.files.rankings === null ? 'is required when rankings.source is "file"' : undefined),
  },
  {
    path: "rankings.source",
    reads: ["rankings.source", "data.source"],
    doc: '`rankings.source` = "simulated" needs `data.source` = "builtin" (the labelers judge against gold answers)',
    check: (c) =>
      c.rankings.source === "simulated" && c.data.source !== "builtin"
        ? 'must be "file" when data.source is "files": the simulated labelers need the gold answers of the built-in tasks'
        : undefined,
  },
  {
    path: "rankings.source",
    reads: ["rankings.source", "data.source"],
    doc: '`rankings.source` = "labeling" needs `data.source` = "builtin" (the prompts it samples for are the built-in reward-model prompts)',
    check: (c) =>
      c.rankings.source === "labeling" && c.data.source !== "builtin"
        ? 'must be "file" when data.source is "files": the labeling stage samples for the built-in reward-model prompts (rank your own prompts with rlhf label import and export)'
        : undefined,
  },
  {
    path: "rankings.labeling.min_ranked",
    reads: ["rankings.labeling.min_ranked", "rankings.prompts", "reward_model.validation_fraction"],
    doc: "`rankings.labeling.min_ranked` <= `rankings.prompts`, and leaves at least 1 held-out prompt and 1 for training",
    check: (c) => {
      const m = c.rankings.labeling.min_ranked;
      if (m === null) return undefined;
      if (m > c.rankings.prompts) return `must be <= rankings.prompts (${c.rankings.prompts}), got ${m}`;
      const held = Math.max(1, Math.round(m * c.reward_model.validation_fraction));
      return held >= m ? `leaves ${held} of ${m} ranked prompts held out (reward_model.validation_fraction ${c.reward_model.validation_fraction}); needs at least 1 for training` : undefined;
    },
  },
  {
    path: "rankings.labeling",
    reads: ["rankings.source", "rankings.labeling.min_ranked", "rankings.labeling.overlap"],
    doc: '`rankings.labeling` keys are only set when `rankings.source` = "labeling"',
    check: (c) =>
      c.rankings.source !== "labeling" && (c.rankings.labeling.min_ranked !== null || c.rankings.labeling.overlap !== null)
        ? `is only read when rankings.source is "labeling" (it is "${c.rankings.source}"): set rankings.source to "labeling", or remove these keys`
        : undefined,
  },
  atMost("rankings.prompts", "data.builtin.rm_prompts", (c) => [c.rankings.prompts, c.data.builtin.rm_prompts], builtinOnly),
  atMost("ppo.prompts_per_iteration", "data.builtin.ppo_prompts", (c) => [c.ppo.prompts_per_iteration, c.data.builtin.ppo_prompts], builtinOnly),
  atMost("evaluation.prompts", "data.builtin.eval_prompts", (c) => [c.evaluation.prompts, c.data.builtin.eval_prompts], builtinOnly),
  atMost("evaluation.samples_in_report", "evaluation.prompts", (c) => [c.evaluation.samples_in_report, c.evaluation.prompts]),
  {
    path: "reward_model.validation_fraction",
    reads: ["reward_model.validation_fraction", "rankings.prompts"],
    doc: "`rankings.prompts` * `reward_model.validation_fraction` rounds to at least 1 held-out prompt and leaves at least 1 for training",
    check: (c) => {
      const held = Math.round(c.rankings.prompts * c.reward_model.validation_fraction);
      return held < 1 || held >= c.rankings.prompts
        ? `leaves ${held} of rankings.prompts (${c.rankings.prompts}) held out; needs at least 1 held out and 1 for training`
        : undefined;
    },
  },
]);

/** The number of held-out ranking prompts a resolved config implies (the rest train the reward model). */
export function rewardModelValidationPrompts(c: RunConfig): number {
  return Math.round(c.rankings.prompts * c.reward_model.validation_fraction);
}

/** The model's shape and vocabulary a resolved config implies. */
export function modelShape(c: RunConfig): ModelShape & { readonly vocab_size: number } {
  return { vocab_size: TOKENIZER_VOCAB_SIZE[c.model.tokenizer], n_positions: c.model.n_positions, n_embd: c.model.n_embd, n_layer: c.model.n_layer, n_head: c.model.n_head };
}
