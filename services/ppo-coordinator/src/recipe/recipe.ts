/**
 * The recipe, one function per stage: pretrain -> SFT -> rankings -> reward model -> PPO-ptx (and
 * plain PPO for comparison) -> evaluation. Each stage records what it produced in the run's
 * progress (`RecipeState`), which is saved after every stage and every PPO checkpoint, so a
 * resumed run skips what is done and continues a PPO variant from its last checkpoint.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { cp, mkdir, readFile, rename, rm, readdir, writeFile } from "node:fs/promises";
import { common, ppoCoordinator, pretrainMix, type policy as policyPb, type rewardModel } from "@rlhf/proto";
import {
  buildInstructionDatasets,
  calibrateOnGroups,
  createLabelers,
  groupScoreDiffs,
  demonstrate,
  canonicalResponse,
  evaluateResponses,
  combineScores,
  isExactMatch,
  scoreResponse,
  measuredAgreement,
  winRate,
  type InstructionTask,
  type ResponseGroup,
  type SimulatedLabeler,
} from "@rlhf/data";
import { getTokenizer, presetConfig, type Tokenizer, type GPT2Config } from "@rlhf/model";
import { modelConfigToProto } from "@rlhf/tensor-transport";
import { createKlController, klControllerFromState, type KlControllerState } from "@rlhf/rl";
import type { RecipeContext } from "./context";
import { generateSamples, responseOf } from "./sequences";
import { ppoIteration, type PpoCursor, type PpoSettings, type RolloutJudge } from "./ppo";
import { iterationTrace, phase } from "./trace";
import { fileRankings, heldOutComparisons, loadUserData, type DataFileRecord } from "./user-data";

const Stage = ppoCoordinator.Stage;

/** The models the recipe produces, by name. */
export type ModelName = "base" | "sft" | "ppo" | "ppo_ptx";

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
  stagesDone: ppoCoordinator.Stage[];
  /** Policy checkpoint folders by model. */
  models: Partial<Record<ModelName, string>>;
  rewardModelDir?: string;
  /** `labelerAgreement` is null when the rankings came from a file (no simulated labelers ranked them). */
  rewardModel?: { heldoutAccuracy: number; trainLoss: number; trainPairs: number; pairs: number; labelerAgreement: number | null };
  ppo: Partial<Record<"ppo" | "ppo_ptx", VariantState>>;
  /** The simulated labelers' panel as the rankings stage set it (absent with a rankings file). */
  labelers?: LabelerPanelState;
  evaluation?: Partial<Record<ModelName, ModelEval>>;
  /** Elapsed milliseconds per stage (summed across resumes). */
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
  /** pretrain-mix's TextCorpus for `data.files.pretrain`; undefined: its built-in corpus. */
  textCorpus?: pretrainMix.TextCorpus;
  /** Why the labeler-judged and gold-answer metrics do not apply; undefined when they do. */
  noGold?: string;
  /** The user's data files read, with their SHA-256 (a resume checks them against data-files.json). */
  files: readonly DataFileRecord[];
}

/** Builds the built-in data and keeps the tasks whose prompts fit the context. */
export function recipeData(ctx: RecipeContext): RecipeData {
  const c = ctx.cfg;
  const tok = getTokenizer(c.model.tokenizer);
  const modelConfig = presetConfig(c.model.preset, {
    vocabSize: tok.name === "gpt2" ? 50257 : tok.vocabSize,
    nPositions: c.model.n_positions,
    nEmbd: c.model.n_embd,
    nLayer: c.model.n_layer,
    nHead: c.model.n_head,
  });
  // Users' files: read and checked as at StartRun (the same rules, the same records).
  const user = loadUserData(c, tok);
  const fromFile = { rankingsFile: user.rankings?.groups, textCorpus: user.textCorpus, files: user.files };
  if (c.data.source === "files") {
    return {
      tok,
      modelConfig,
      sft: user.sft ?? [],
      rm: [],
      ...fromFile,
      ppo: user.ppoPrompts ?? [],
      eval: user.evalPrompts ?? [],
      labelers: [],
      noGold: "the data comes from files (data.source \"files\"): no gold answers, which the simulated labelers and the gold scorer judge against",
    };
  }
  const b = c.data.builtin;
  const ds = buildInstructionDatasets({ seed: b.seed, sizes: { sft: b.sft_prompts, rm: b.rm_prompts, ppo: b.ppo_prompts, eval: b.eval_prompts }, families: b.families });
  const longest = Math.max(c.ppo.max_new_tokens, c.rankings.max_new_tokens, c.evaluation.max_new_tokens);
  const fits = (t: InstructionTask) => {
    const p = tok.encode(t.prompt).length;
    return p <= c.data.max_prompt_tokens && p + longest <= modelConfig.nPositions && p + tok.encode(t.completion).length + 1 <= modelConfig.nPositions;
  };
  // With "ranked_samples" the rankings stage recalibrates the panel on the SFT model's samples.
  const labelers = createLabelers(ds.rm, { count: b.labelers, agreement: b.labeler_agreement, seed: b.seed, blocklist: b.blocklist ?? undefined });
  // The demonstrators: gold answers, and a share with one flaw each (data.builtin.demonstrations).
  const sftTasks = ds.sft.filter(fits);
  const d = b.demonstrations;
  const demos = demonstrate(sftTasks, { flawShare: d.flaw_share, count: d.demonstrators, flaws: d.flaws, blocklist: b.blocklist ?? undefined }, b.seed);
  const sft = sftTasks
    .map((t, i) => ({ prompt: t.prompt, completion: demos[i].completion, eos: demos[i].eos }))
    .filter((e) => tok.encode(e.prompt).length + tok.encode(e.completion).length + 1 <= modelConfig.nPositions);
  return { tok, modelConfig, sft, rm: ds.rm.filter(fits), ...fromFile, ppo: ds.ppo.filter(fits).map((t) => ({ prompt: t.prompt, gold: t })), eval: ds.eval.filter(fits).map((t) => ({ prompt: t.prompt, gold: t })), labelers };
}

/** The built-in data's labeler panel with noise σ (the same labelers, seeds and blocklist). */
function labelerPanel(ctx: RecipeContext, data: RecipeData, noiseStd: number): SimulatedLabeler[] {
  const b = ctx.cfg.data.builtin;
  return createLabelers(data.rm, { count: b.labelers, seed: b.seed, noiseStd, blocklist: b.blocklist ?? undefined });
}

/**
 * A resumed run judges with the panel its rankings stage set (its σ is in the run's state), so
 * the evaluation after a resume uses the same labelers as an uninterrupted run.
 */
export function restoreLabelers(ctx: RecipeContext, data: RecipeData, state: RecipeState): void {
  if (state.labelers && data.labelers.length > 0) data.labelers = labelerPanel(ctx, data, state.labelers.noiseStd);
}

/** Emits a stage's progress with an ETA from the rate so far. */
function progress(ctx: RecipeContext, stage: ppoCoordinator.Stage, unit: string, total: number, startedMs: number) {
  // The ETA follows the pace since the first step was reported, not since the stage began: the
  // start (streaming 16k examples, a first step that compiles) would otherwise make the first
  // estimates many times too long (an hour for a 4-minute SFT).
  let first: { step: number; at: number } | undefined;
  return (step: number) => {
    const now = Date.now();
    const elapsed = now - startedMs;
    if (first === undefined && step > 0) first = { step, at: now };
    let etaMs = 0;
    if (total > 0 && first !== undefined && step > first.step) etaMs = Math.round(((now - first.at) / (step - first.step)) * (total - step));
    else if (total > 0 && step > 0) etaMs = Math.round((elapsed / step) * (total - step));
    ctx.events.progress({ stage, step, totalSteps: total, unit, etaMs, elapsedMs: elapsed });
  };
}

const adam = (lr: number, weightDecay: number, maxGradNorm: number): common.OptimizerConfig => ({ learningRate: lr, beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay, maxGradNorm });
const schedule = (s: string) => (s === "cosine" ? common.LearningRateSchedule.LEARNING_RATE_SCHEDULE_COSINE : common.LearningRateSchedule.LEARNING_RATE_SCHEDULE_CONSTANT);

/** Runs an Sft call with streamed examples, reporting progress and metrics under `stage` (and to `onMetrics`). */
async function runSft(
  ctx: RecipeContext,
  stage: ppoCoordinator.Stage,
  config: policyPb.SftConfig,
  examples: { tokens: number[]; promptLength: number }[],
  onMetrics?: (step: number, values: Record<string, number>) => void,
): Promise<policyPb.SftDone> {
  const s = ctx.clients.policy.bidi("sft", { signal: ctx.signal, deadlineMs: 24 * 3600_000 });
  const started = Date.now();
  const report = progress(ctx, stage, "optimizer_steps", config.epochs * Math.ceil(examples.length / config.batchSize), started);
  report(0);
  s.write({ part: { $case: "config", config: { ...config, runId: ctx.runId } } });
  // A few hundred examples per message keeps each well under the 4 MiB limit.
  for (let i = 0; i < examples.length; i += 256) {
    const part = examples.slice(i, i + 256);
    s.write({ part: { $case: "examples", examples: { tokens: part.flatMap((e) => e.tokens), lengths: part.map((e) => e.tokens.length), promptLengths: part.map((e) => e.promptLength) } } });
  }
  s.end();
  let done: policyPb.SftDone | undefined;
  for await (const m of s as AsyncIterable<policyPb.SftResponse>) {
    if (m.part?.$case === "progress") {
      const p = m.part.progress;
      report(p.step);
      const values: Record<string, number> = { "loss/lm": p.loss, "optim/learning_rate": p.learningRate, "optim/grad_norm": p.gradNorm, "throughput/tokens_per_second": p.tokensPerSecond };
      if (p.validationLoss !== undefined) values["loss/lm_validation"] = p.validationLoss;
      ctx.events.metrics({ stage, step: p.step, values });
      onMetrics?.(p.step, values);
    } else if (m.part?.$case === "done") done = m.part.done;
  }
  if (!done) throw new Error("policy.Sft ended without its done message");
  return done;
}

/** Saves the policy service's state to `<run>/checkpoints/<name>` (replacing an older one). */
async function savePolicy(ctx: RecipeContext, name: string, stage: ppoCoordinator.Stage, iteration = 0): Promise<string> {
  const dir = join(ctx.runDir, "checkpoints", name);
  await rm(dir, { recursive: true, force: true });
  const r = await ctx.clients.policy.unary("saveCheckpoint", { dir }, { signal: ctx.signal });
  ctx.events.checkpoint({ dir: r.dir, stage, iteration, weights: [r.policyWeights, r.criticWeights].filter((w): w is common.WeightsRef => Boolean(w)), bytes: r.bytesWritten });
  return r.dir;
}

/** The folder of the pretraining cache: `<runs dir>/pretrain-cache` (beside the run folders). */
export function pretrainCacheRoot(runDir: string): string {
  return join(dirname(runDir), "pretrain-cache");
}

/**
 * The cache key of a pretrained base model: a hash of everything that determines its weights
 * (the model's shape, the tokenizer with its vocabulary, the pretraining settings, the seed and
 * the pretraining text). Two runs with the same key would train the same model.
 */
export function pretrainCacheKey(ctx: RecipeContext, data: RecipeData): string {
  const c = ctx.cfg;
  const { enabled: _enabled, cache: _cache, ...settings } = c.pretrain;
  const text = c.data.files.pretrain ? data.files.filter((f) => f.key === "data.files.pretrain").map((f) => f.sha256) : "builtin:brown";
  const vocab = createHash("sha256").update(JSON.stringify(data.tok.encode("The quick brown fox jumps over the lazy dog; 0123456789."))).digest("hex");
  const what = { v: 1, model: data.modelConfig, tokenizer: { name: data.tok.name, vocabSize: data.tok.vocabSize, vocab }, pretrain: settings, seed: c.seed, text, validationFraction: c.data.pretrain_validation_fraction };
  return createHash("sha256").update(JSON.stringify(what)).digest("hex").slice(0, 24);
}

/** The [step, value] points of one metric in a list of metric events. */
function lossCurve(metrics: readonly { step: number; values: Record<string, number> }[], name: string): [number, number][] {
  return metrics.filter((m) => Number.isFinite(m.values[name])).map((m) => [m.step, m.values[name]]);
}

/** The metrics a cached pretraining recorded (replayed into a run that reuses it, for its loss curve). */
interface CachedPretrain {
  key: string;
  steps: number;
  elapsedMs: number;
  metrics: { step: number; values: Record<string, number> }[];
}

/** Stage 1: a base model, pretrained here on the corpus (or taken from the pretraining cache) or loaded from `model.base_checkpoint`. */
export async function pretrainStage(ctx: RecipeContext, data: RecipeData, state: RecipeState): Promise<void> {
  const c = ctx.cfg;
  if (c.model.base_checkpoint) {
    await ctx.clients.policy.unary("loadCheckpoint", { source: { $case: "modelDir", modelDir: c.model.base_checkpoint }, runId: ctx.runId }, { signal: ctx.signal });
    state.models.base = await savePolicy(ctx, "base", Stage.STAGE_PRETRAIN);
    return;
  }
  const key = c.pretrain.enabled ? pretrainCacheKey(ctx, data) : undefined;
  const cached = key ? join(pretrainCacheRoot(ctx.runDir), key) : undefined;
  if (key && cached && c.pretrain.cache && existsSync(join(cached, "pretrain.json"))) {
    // Pretrained before with these very settings: load that model, replay its loss curve.
    const record = JSON.parse(await readFile(join(cached, "pretrain.json"), "utf8")) as CachedPretrain;
    await ctx.clients.policy.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: join(cached, "checkpoint") }, runId: ctx.runId }, { signal: ctx.signal });
    for (const m of record.metrics) ctx.events.metrics({ stage: Stage.STAGE_PRETRAIN, step: m.step, values: m.values });
    state.curves = { ...state.curves, pretrain: lossCurve(record.metrics, "loss/lm") };
    ctx.events.progress({ stage: Stage.STAGE_PRETRAIN, step: record.steps, totalSteps: record.steps, unit: "optimizer_steps", etaMs: 0, elapsedMs: 0 });
    state.pretrainCache = { key, dir: cached, hit: true, savedMs: record.elapsedMs };
    ctx.log.info({ cache: cached, savedMs: record.elapsedMs }, "base model from the pretraining cache");
    state.models.base = await savePolicy(ctx, "base", Stage.STAGE_PRETRAIN);
    return;
  }
  await ctx.clients.policy.unary("loadCheckpoint", { source: { $case: "randomInit", randomInit: { config: modelConfigToProto(data.modelConfig), seed: c.seed } }, runId: ctx.runId }, { signal: ctx.signal });
  const started = Date.now();
  const metrics: CachedPretrain["metrics"] = [];
  if (c.pretrain.enabled) {
    const p = c.pretrain;
    const total = p.steps * p.batch_size;
    const examples: { tokens: number[]; promptLength: number }[] = [];
    for (let cursor = 0; cursor < total; ) {
      const n = Math.min(64, total - cursor);
      const b = await ctx.clients.pretrainMix.unary("sampleBatch", { split: pretrainMix.Split.SPLIT_TRAIN, sequences: n, sequenceLength: p.sequence_length, cursor, seed: c.seed + 1, textCorpus: data.textCorpus }, { signal: ctx.signal });
      const toks = b.batch?.tokens ?? [];
      for (let i = 0; i < n; i++) examples.push({ tokens: toks.slice(i * p.sequence_length, (i + 1) * p.sequence_length), promptLength: 1 });
      cursor += n;
    }
    await runSft(
      ctx,
      Stage.STAGE_PRETRAIN,
      {
        epochs: 1,
        batchSize: p.batch_size,
        optimizer: adam(p.learning_rate, p.weight_decay, p.max_grad_norm),
        schedule: schedule(p.schedule),
        warmupSteps: p.warmup_steps,
        minLearningRate: p.learning_rate / 10,
        seed: c.seed,
        dataset: undefined,
        validationDataset: undefined,
        progressEverySteps: Math.max(1, Math.floor(p.steps / 50)),
        temperature: 0,
      },
      examples,
      (step, values) => metrics.push({ step, values }),
    );
  }
  if (metrics.length) state.curves = { ...state.curves, pretrain: lossCurve(metrics, "loss/lm") };
  state.models.base = await savePolicy(ctx, "base", Stage.STAGE_PRETRAIN);
  if (key && cached) {
    // Put the base model in the cache (a copy beside the run folders, written whole then renamed).
    const tmp = `${cached}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await cp(state.models.base, join(tmp, "checkpoint"), { recursive: true });
    const record: CachedPretrain = { key, steps: c.pretrain.steps, elapsedMs: Date.now() - started, metrics };
    await writeFile(join(tmp, "pretrain.json"), JSON.stringify(record) + "\n");
    await rm(cached, { recursive: true, force: true });
    await rename(tmp, cached);
    state.pretrainCache = { key, dir: cached, hit: false, savedMs: 0 };
  }
}

/** A demonstration as tokens: prompt, completion and EOS, or no EOS for one that never ends (a rambling demonstrator's). */
function demonstrationTokens(data: RecipeData, t: RecipeData["sft"][number]): number[] {
  return [...data.tok.encode(t.prompt), ...data.tok.encode(t.completion), ...(t.eos === false ? [] : [data.tok.eosId])];
}

/** Stage 2: SFT on the demonstrations (prompt + gold completion + EOS). */
export async function sftStage(ctx: RecipeContext, data: RecipeData, state: RecipeState): Promise<void> {
  const c = ctx.cfg.sft;
  await ctx.clients.policy.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: state.models.base as string }, runId: ctx.runId }, { signal: ctx.signal });
  const examples = data.sft.map((t) => ({ tokens: demonstrationTokens(data, t), promptLength: data.tok.encode(t.prompt).length }));
  const steps = c.epochs * Math.ceil(examples.length / c.batch_size);
  const curve: { step: number; values: Record<string, number> }[] = [];
  await runSft(
    ctx,
    Stage.STAGE_SFT,
    {
      epochs: c.epochs,
      batchSize: c.batch_size,
      optimizer: adam(c.learning_rate, c.weight_decay, c.max_grad_norm),
      schedule: schedule(c.schedule),
      warmupSteps: c.warmup_steps,
      minLearningRate: c.learning_rate / 10,
      seed: ctx.cfg.seed + 2,
      dataset: undefined,
      validationDataset: undefined,
      progressEverySteps: Math.max(1, Math.floor(steps / 50)),
      temperature: 0,
    },
    examples,
    (step, values) => curve.push({ step, values }),
  );
  state.curves = { ...state.curves, sft: lossCurve(curve, "loss/lm") };
  state.models.sft = await savePolicy(ctx, "sft", Stage.STAGE_SFT);
}

/** A ranked group of K sampled responses to one reward-model prompt. */
export interface RankedSamples {
  prompt: number[];
  responses: number[][];
  ranks: number[];
}

/** Stage 3: K samples per reward-model prompt from the SFT model, ranked by the labelers. */
export async function rankingsStage(ctx: RecipeContext, data: RecipeData, state: RecipeState): Promise<RankedSamples[]> {
  const c = ctx.cfg.rankings;
  if (c.source === "file") return fileRankings(ctx, data.rankingsFile ?? [], data.tok);
  await ctx.clients.policy.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: state.models.sft as string }, runId: ctx.runId }, { signal: ctx.signal });
  const tasks = data.rm.slice(0, c.prompts);
  const report = progress(ctx, Stage.STAGE_RANKINGS, "prompts", tasks.length, Date.now());
  report(0);
  const sampled: { prompt: number[]; responses: number[][]; group: ResponseGroup }[] = [];
  const chunk = Math.max(1, Math.floor(256 / c.k));
  for (let i = 0; i < tasks.length; i += chunk) {
    const part = tasks.slice(i, i + chunk);
    const prompts = part.map((t) => data.tok.encode(t.prompt));
    const g = await generateSamples(ctx.clients.policy, prompts, { samplesPerPrompt: c.k, temperature: c.temperature, maxNewTokens: c.max_new_tokens, seed: ctx.cfg.seed * 7919 + i }, ctx.signal);
    part.forEach((task, j) => {
      const responses = g.samples.slice(j * c.k, (j + 1) * c.k).map(responseOf);
      sampled.push({ prompt: prompts[j], responses, group: { task, responses: responses.map((r) => data.tok.decode(r)) } });
    });
    report(Math.min(tasks.length, i + chunk));
  }
  const b = ctx.cfg.data.builtin;
  const groups = sampled.map((s) => s.group);
  let calibratedOn: LabelerPanelState["calibratedOn"] = "simulated_responses";
  if (b.labeler_calibration === "ranked_samples") {
    const cal = calibrateOnGroups(groups, b.labeler_agreement, { blocklist: b.blocklist ?? undefined });
    if (!cal) {
      ctx.log.warn({ prompts: groups.length }, "no sampled pair has different gold scores: the labelers keep the calibration on simulated responses");
    } else {
      data.labelers = labelerPanel(ctx, data, cal.noiseStd);
      calibratedOn = cal.on === "all" ? "ranked_samples" : "ranked_samples_with_different_scores";
      if (cal.on !== "all") {
        ctx.log.warn(
          { pairs: cal.pairs, equalScores: cal.equalScorePairs },
          "too many sampled pairs have equal gold scores to reach data.builtin.labeler_agreement on all of them: the labelers are calibrated on the pairs with different scores",
        );
      }
    }
  }
  const out: RankedSamples[] = sampled.map((s, i) => ({ prompt: s.prompt, responses: s.responses, ranks: data.labelers[i % data.labelers.length].rank(s.group.task, s.group.responses) }));
  const agreement = measuredAgreement(groups, data.labelers);
  const diffs = groupScoreDiffs(groups, { blocklist: b.blocklist ?? undefined });
  const goldTieShare = diffs.length ? diffs.filter((d) => d === 0).length / diffs.length : 0;
  state.labelers = { noiseStd: data.labelers[0].noiseStd, calibratedOn, agreement: agreement.pairs ? agreement.agree / agreement.pairs : 1, pairs: agreement.pairs, goldTieShare };
  ctx.events.metrics({
    stage: Stage.STAGE_RANKINGS,
    step: tasks.length,
    values: { "labelers/noise_std": state.labelers.noiseStd, "labelers/agreement": state.labelers.agreement, "labelers/pairs": agreement.pairs, "labelers/gold_tie_share": goldTieShare },
  });
  return out;
}

/** Stage 4: the reward model from the SFT weights, trained on the rankings, normalised, measured. */
export async function rewardModelStage(ctx: RecipeContext, data: RecipeData, state: RecipeState, ranked: RankedSamples[]): Promise<void> {
  const c = ctx.cfg.reward_model;
  const rmc = ctx.clients.rewardModel;
  await rmc.unary("loadCheckpoint", { source: { $case: "modelDir", modelDir: join(state.models.sft as string, "policy") } }, { signal: ctx.signal });
  const nVal = Math.max(1, Math.round(ranked.length * c.validation_fraction));
  // A file's comparisons are held out evenly through the file (it may be sorted by topic).
  const { validation, train } = ctx.cfg.rankings.source === "file" ? heldOutComparisons(ranked, c.validation_fraction) : { validation: ranked.slice(0, nVal), train: ranked.slice(nVal) };
  const group = (g: RankedSamples): rewardModel.ComparisonGroup => ({ prompt: g.prompt, responses: { tokens: g.responses.flat(), lengths: g.responses.map((r) => r.length), promptLengths: [] }, ranks: g.ranks });
  const s = rmc.bidi("train", { signal: ctx.signal, deadlineMs: 24 * 3600_000 });
  const steps = c.epochs * Math.ceil(train.length / c.batch_size);
  const report = progress(ctx, Stage.STAGE_REWARD_MODEL, "optimizer_steps", steps, Date.now());
  report(0);
  s.write({
    part: {
      $case: "config",
      config: { epochs: c.epochs, batchSize: c.batch_size, optimizer: adam(c.learning_rate, c.weight_decay, c.max_grad_norm), schedule: schedule(c.schedule), warmupSteps: 0, minLearningRate: c.learning_rate / 10, seed: ctx.cfg.seed + 3, progressEverySteps: 1 },
    },
  });
  for (let i = 0; i < train.length; i += 64) s.write({ part: { $case: "comparisons", comparisons: { groups: train.slice(i, i + 64).map(group), pairs: [] } } });
  s.end();
  let trainLoss = 0;
  let trainPairs = 0;
  const rmCurve: [number, number][] = [];
  for await (const m of s as AsyncIterable<rewardModel.TrainResponse>) {
    if (m.part?.$case === "progress") {
      const p = m.part.progress;
      report(p.step);
      if (Number.isFinite(p.loss)) rmCurve.push([p.step, p.loss]);
      ctx.events.metrics({ stage: Stage.STAGE_REWARD_MODEL, step: p.step, values: { "loss/reward_model": p.loss, "reward_model/accuracy": p.accuracy, "optim/learning_rate": p.learningRate } });
    } else if (m.part?.$case === "done") {
      trainLoss = m.part.done.finalLoss;
      trainPairs = m.part.done.pairs;
    }
  }
  state.curves = { ...state.curves, reward_model: rmCurve };
  if (c.normalize) {
    const n = rmc.clientStream("normalize", { signal: ctx.signal });
    const refs = data.sft.slice(0, 256).map((t) => demonstrationTokens(data, t));
    await n.write({ references: { tokens: refs.flat(), lengths: refs.map((r) => r.length), promptLengths: [] } });
    await n.end();
  }
  let pairs = 0;
  let correct = 0;
  for (let i = 0; i < validation.length; i += 16) {
    const a = await rmc.unary("accuracy", { comparisons: { groups: validation.slice(i, i + 16).map(group), pairs: [] } }, { signal: ctx.signal });
    pairs += a.pairs;
    correct += a.correct;
  }
  const dir = join(ctx.runDir, "checkpoints", "reward-model");
  await rm(dir, { recursive: true, force: true });
  const saved = await rmc.unary("saveCheckpoint", { dir }, { signal: ctx.signal });
  state.rewardModelDir = saved.dir;
  ctx.events.checkpoint({ dir: saved.dir, stage: Stage.STAGE_REWARD_MODEL, iteration: 0, weights: saved.weights ? [saved.weights] : [], bytes: saved.bytesWritten });
  const labelerAgreement = ctx.cfg.rankings.source === "file" ? null : (state.labelers?.agreement ?? null);
  state.rewardModel = { heldoutAccuracy: pairs > 0 ? correct / pairs : 0, trainLoss, trainPairs, pairs, labelerAgreement };
  ctx.events.metrics({ stage: Stage.STAGE_REWARD_MODEL, step: steps, values: { "reward_model/heldout_accuracy": state.rewardModel.heldoutAccuracy, "reward_model/heldout_pairs": pairs } });
}

/** The PPO settings of a variant from the config. */
function ppoSettings(ctx: RecipeContext, ptx: boolean): PpoSettings {
  const p = ctx.cfg.ppo;
  return {
    seed: ctx.cfg.seed + (ptx ? 100 : 200),
    promptsPerIteration: p.prompts_per_iteration,
    maxNewTokens: p.max_new_tokens,
    temperature: p.temperature,
    ppoEpochs: p.ppo_epochs,
    minibatchSize: p.minibatch_size,
    clipRange: p.clip_range,
    valueClipRange: p.value_clip_range,
    valueLossCoef: p.value_loss_coef,
    entropyCoef: p.entropy_coef,
    gaeGamma: p.gae_gamma,
    gaeLambda: p.gae_lambda,
    policyLr: p.policy_learning_rate,
    criticLr: p.critic_learning_rate,
    maxGradNorm: p.max_grad_norm,
    missingEosPenalty: p.missing_eos_penalty,
    ptxGamma: ptx ? p.ptx.gamma : 0,
    ptxSequences: p.ptx.sequences,
    ptxSequenceLength: p.ptx.sequence_length,
    runId: ctx.runId,
  };
}

/**
 * Stage 5: PPO-ptx, then (with `compare_without_ptx`) plain PPO from the same SFT model; the
 * reference model holds the SFT weights, the critic starts as the reward model.
 */
export async function ppoStage(ctx: RecipeContext, data: RecipeData, state: RecipeState, saveState: () => Promise<void>): Promise<void> {
  const p = ctx.cfg.ppo;
  // The reward model and the reference may have restarted since their stage (a resume): load both.
  await ctx.clients.rewardModel.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: state.rewardModelDir as string } }, { signal: ctx.signal });
  await ctx.clients.reference.unary("loadWeights", { source: { $case: "checkpointDir", checkpointDir: join(state.models.sft as string, "policy") } }, { signal: ctx.signal });
  const variants: ("ppo_ptx" | "ppo")[] = p.compare_without_ptx ? ["ppo_ptx", "ppo"] : ["ppo_ptx"];
  const totalIterations = variants.length * p.iterations;
  const started = Date.now();
  const report = progress(ctx, Stage.STAGE_PPO, "iterations", totalIterations, started);
  const prompts = data.ppo.map((t) => data.tok.encode(t.prompt));
  const blocklist = ctx.cfg.data.builtin.blocklist ?? undefined;
  for (const [vi, name] of variants.entries()) {
    let v = state.ppo[name];
    if (v?.done) continue;
    const s: PpoSettings = { ...ppoSettings(ctx, name === "ppo_ptx"), textCorpus: data.textCorpus };
    if (v?.checkpoint) {
      // Continue exactly from the checkpoint: the policy service's state, the counters, the KL
      // controller, and the metrics up to it (iterations after it run again, identically).
      const ck = v.checkpoint;
      await ctx.clients.policy.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: ck.dir }, runId: ctx.runId }, { signal: ctx.signal });
      v.cursor = { ...ck.cursor };
      v.kl = ck.kl;
      v.iterations = v.iterations.slice(0, ck.iterations);
    } else {
      const l = await ctx.clients.policy.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: state.models.sft as string }, runId: ctx.runId }, { signal: ctx.signal });
      await ctx.clients.policy.unary("initCritic", { source: { $case: "checkpointDir", checkpointDir: await criticInitDir(ctx, state) } }, { signal: ctx.signal });
      const kl = createKlController(p.kl.controller === "adaptive" ? { kind: "adaptive", initBeta: p.kl.beta, targetKl: p.kl.target as number, horizon: p.kl.horizon as number } : { kind: "fixed", beta: p.kl.beta });
      v = { cursor: { iteration: 0, promptCursor: 0, ptxCursor: 0, policyVersion: l.policyWeights?.version ?? 0 }, kl: kl.state(), iterations: [], done: false };
      state.ppo[name] = v;
    }
    const kl = klControllerFromState(v.kl);
    report(vi * p.iterations + v.cursor.iteration);
    while (v.cursor.iteration < p.iterations) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const start = v.cursor.promptCursor;
      const batch = Array.from({ length: s.promptsPerIteration }, (_, i) => prompts[(start + i) % prompts.length]);
      // Linear warm-up of both learning rates over the first warmup_iterations iterations.
      const warm = Math.min(1, (v.cursor.iteration + 1) / Math.max(1, p.warmup_iterations));
      // One trace per iteration (./trace.ts): the phases of ppoIteration, then the checkpoint.
      // Rollout i answers PPO prompt (start + i): with built-in data, the gold scorer judges it too.
      const judge: RolloutJudge = (i, response) => {
        const task = data.ppo[(start + i) % data.ppo.length].gold;
        if (!task) return undefined;
        const text = data.tok.decode(response.filter((id) => id !== data.tok.eosId));
        const scores = scoreResponse(task, text, { blocklist });
        return { score: combineScores(scores), helpfulness: scores.helpfulness, exact: isExactMatch(task, text) };
      };
      await iterationTrace(ctx, v.cursor.iteration + 1, name, { "rlhf.batch_size": batch.length, "rlhf.weights_version": v.cursor.policyVersion }, async (root) => {
        const values = await ppoIteration(ctx.clients, { ...s, policyLr: s.policyLr * warm, criticLr: s.criticLr * warm }, kl, v.cursor, batch, ctx.signal, judge);
        root.setAttributes({ "rlhf.response_tokens": Math.round((values["response/length_mean"] ?? 0) * batch.length), "rlhf.weights_version_after": v.cursor.policyVersion });
        v.kl = kl.state();
        v.iterations.push({ iteration: v.cursor.iteration, values });
        ctx.events.metrics({ stage: Stage.STAGE_PPO, step: vi * p.iterations + v.cursor.iteration, values: { ...values, "run/variant_ptx": name === "ppo_ptx" ? 1 : 0 } });
        report(vi * p.iterations + v.cursor.iteration);
        if (v.cursor.iteration % ctx.cfg.checkpoint.every_iterations === 0 || v.cursor.iteration === p.iterations) {
          await phase("ppo.checkpoint", { "rlhf.weights_version": v.cursor.policyVersion }, async () => {
            const dir = await savePolicy(ctx, `${name}-${String(v.cursor.iteration).padStart(6, "0")}`, Stage.STAGE_PPO, v.cursor.iteration);
            v.checkpoint = { dir, cursor: { ...v.cursor }, kl: v.kl, iterations: v.iterations.length };
            await pruneCheckpoints(ctx, name, ctx.cfg.checkpoint.keep_last);
            await saveState();
          });
        }
      });
    }
    v.done = true;
    state.models[name] = v.checkpoint?.dir;
    await saveState();
  }
}

/**
 * The folder the critic starts from: the reward model (the paper), or with `critic_init: "sft"`
 * the SFT trunk with a zero head, written once by the reward-model service (which then reloads
 * the reward model it scores with).
 */
async function criticInitDir(ctx: RecipeContext, state: RecipeState): Promise<string> {
  if (ctx.cfg.ppo.critic_init === "reward_model") return state.rewardModelDir as string;
  const dir = join(ctx.runDir, "checkpoints", "critic-init-sft");
  const rmc = ctx.clients.rewardModel;
  await rmc.unary("loadCheckpoint", { source: { $case: "modelDir", modelDir: join(state.models.sft as string, "policy") } }, { signal: ctx.signal });
  await rm(dir, { recursive: true, force: true });
  await rmc.unary("saveCheckpoint", { dir }, { signal: ctx.signal });
  await rmc.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: state.rewardModelDir as string } }, { signal: ctx.signal });
  return dir;
}

async function pruneCheckpoints(ctx: RecipeContext, name: string, keep: number): Promise<void> {
  const dir = join(ctx.runDir, "checkpoints");
  const mine = (await readdir(dir)).filter((d) => new RegExp(`^${name}-\\d{6}$`).test(d)).sort();
  for (const d of mine.slice(0, Math.max(0, mine.length - keep))) await rm(join(dir, d), { recursive: true, force: true });
}

/** Stage 6: every model answers the held-out prompts; labelers compare each with SFT. */
export async function evaluationStage(ctx: RecipeContext, data: RecipeData, state: RecipeState): Promise<void> {
  const e = ctx.cfg.evaluation;
  const tasks = data.eval.slice(0, e.prompts);
  const prompts = tasks.map((t) => data.tok.encode(t.prompt));
  const names = (["base", "sft", "ppo", "ppo_ptx"] as const).filter((n) => state.models[n]);
  const report = progress(ctx, Stage.STAGE_EVALUATION, "models", names.length, Date.now());
  report(0);
  const valLen = Math.min(ctx.cfg.ppo.ptx.sequence_length, data.modelConfig.nPositions);
  const val = await ctx.clients.pretrainMix.unary("sampleBatch", { split: pretrainMix.Split.SPLIT_VALIDATION, sequences: e.pretrain_validation_sequences, sequenceLength: valLen, cursor: 0, seed: 0, textCorpus: data.textCorpus }, { signal: ctx.signal });
  const raw: Partial<Record<ModelName, { texts: string[]; lengths: number[]; eos: boolean[]; valLoss: number }>> = {};
  for (const [k, name] of names.entries()) {
    await ctx.clients.policy.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: state.models[name] as string }, runId: ctx.runId }, { signal: ctx.signal });
    const texts: string[] = [];
    const lengths: number[] = [];
    const eos: boolean[] = [];
    for (let i = 0; i < prompts.length; i += 128) {
      // Temperature 0 is greedy: top_k 1 at temperature 1.
      const g = await generateSamples(ctx.clients.policy, prompts.slice(i, i + 128), { samplesPerPrompt: 1, temperature: e.temperature || 1, topK: e.temperature === 0 ? 1 : 0, maxNewTokens: e.max_new_tokens, seed: ctx.cfg.seed + 5 }, ctx.signal);
      for (const smp of g.samples) {
        texts.push(data.tok.decode(responseOf(smp)));
        lengths.push(smp.tokens.length - smp.promptLength);
        eos.push(smp.eos);
      }
    }
    const vb = val.batch as common.TokenBatch;
    const ev = await ctx.clients.policy.unary("evaluate", { sequences: { ...vb, promptLengths: vb.lengths.map(() => 1) }, temperature: 0, skipValues: true }, { signal: ctx.signal });
    raw[name] = { texts, lengths, eos, valLoss: -ev.logprobs.reduce((a, b) => a + b, 0) / Math.max(ev.logprobs.length, 1) };
    report(k + 1);
  }
  const sft = raw.sft?.texts ?? [];
  // The labelers and the gold scorer judge against gold answers: without them (users' data) those metrics stay null.
  const gold = data.labelers.length > 0 && tasks.every((t) => t.gold) ? tasks.map((t) => t.gold as InstructionTask) : undefined;
  state.evaluation = {};
  for (const name of names) {
    const r = raw[name];
    if (!r) continue;
    const g = gold ? evaluateResponses(gold, r.texts) : undefined;
    const w = gold ? winRate(gold, r.texts, sft, data.labelers) : undefined;
    state.evaluation[name] = {
      winRateVsSft: w ? w.winRate : null,
      wins: w?.wins ?? 0,
      losses: w?.losses ?? 0,
      ties: w?.ties ?? 0,
      goldHelpfulness: g ? g.helpfulness : null,
      exactMatch: g ? g.exactMatch : null,
      hallucinationRate: g ? g.hallucinationRate : null,
      blocklistRate: g ? g.blocklistRate : null,
      pretrainValidationLoss: r.valLoss,
      meanResponseTokens: r.lengths.reduce((a, b) => a + b, 0) / Math.max(1, r.lengths.length),
      eosRate: r.eos.filter(Boolean).length / Math.max(1, r.eos.length),
      responses: r.texts,
    };
    if (gold) state.evaluation[name].byFamily = familyEvals(gold, r.texts, name === "sft" ? undefined : sft, data.labelers);
    const labeled: Record<string, number> = w && g ? { [`eval/${name}/win_rate_vs_sft`]: w.winRate, [`eval/${name}/gold_helpfulness`]: g.helpfulness, [`eval/${name}/exact_match`]: g.exactMatch } : {};
    ctx.events.metrics({ stage: Stage.STAGE_EVALUATION, step: 0, values: { ...labeled, [`eval/${name}/pretrain_validation_loss`]: r.valLoss } });
  }
}

/**
 * The gold measures of `responses` per task family, and against SFT's answers when `sft` is
 * given: where a model gains or loses (one family can carry a win rate that another loses).
 * Prompt i is judged by the labeler that judges it in {@link winRate} over all prompts, so the
 * families' win rates add up to the overall one.
 */
export function familyEvals(tasks: readonly InstructionTask[], responses: readonly string[], sft: readonly string[] | undefined, labelers: readonly SimulatedLabeler[]): Record<string, FamilyEval> {
  const byFamily = new Map<string, number[]>();
  tasks.forEach((t, i) => {
    const idx = byFamily.get(t.family);
    if (idx) idx.push(i);
    else byFamily.set(t.family, [i]);
  });
  const vsSft = sft && tasks.map((t, i) => labelers[i % labelers.length].compare(t, responses[i], sft[i]));
  const out: Record<string, FamilyEval> = {};
  for (const [family, idx] of byFamily) {
    const g = evaluateResponses(
      idx.map((i) => tasks[i]),
      idx.map((i) => responses[i]),
    );
    const share = (f: (i: number) => number) => idx.reduce((a, i) => a + f(i), 0) / idx.length;
    out[family] = {
      prompts: idx.length,
      // A win counts 1, a tie (0) half, as in winRate.
      winRateVsSft: vsSft ? share((i) => (vsSft[i] + 1) / 2) : null,
      sameAsSft: sft ? share((i) => (canonicalResponse(responses[i]) === canonicalResponse(sft[i]) ? 1 : 0)) : null,
      helpfulness: g.helpfulness,
      exactMatch: g.exactMatch,
      hallucinationRate: g.hallucinationRate,
    };
  }
  return out;
}

/** Makes sure the run folder's checkpoint directory exists. */
export async function prepareRunDir(runDir: string): Promise<void> {
  await mkdir(join(runDir, "checkpoints"), { recursive: true });
}
