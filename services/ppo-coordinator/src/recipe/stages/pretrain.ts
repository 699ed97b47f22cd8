/**
 * Stage 1: a base model, pretrained here on the corpus (or taken from the pretraining cache:
 * `<runs dir>/pretrain-cache/<key>`, shared by the runs of a runs folder) or loaded from
 * `model.base_checkpoint`.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { cp, readFile, rename, rm, writeFile } from "node:fs/promises";
import type { RecipeContext } from "../context";
import type { Example, RecipeData, RecipeState } from "../records";
import { lossCurve, savePolicy, trainPolicy } from "./shared";

/** The metrics a cached pretraining recorded (replayed into a run that reuses it, for its loss curve). */
interface CachedPretrain {
  key: string;
  steps: number;
  elapsedMs: number;
  metrics: { step: number; values: Record<string, number> }[];
}

/** The folder of the pretraining cache: `<runs dir>/pretrain-cache` (beside the run folders). */
export function pretrainCacheRoot(runDir: string): string {
  return join(dirname(runDir), "pretrain-cache");
}

/**
 * The cache key of a pretrained base model: a hash of everything that determines its weights
 * (the model's shape, the tokenizer with its vocabulary, the pretraining settings, the seed, the
 * pretraining text, and the policy's compute: backend, threads and CPU kernels, which decide the
 * last bits). Two runs with the same key would train the same model.
 */
export function pretrainCacheKey(ctx: Pick<RecipeContext, "cfg">, data: RecipeData, compute: { name: string; detail: string }): string {
  const c = ctx.cfg;
  const { enabled: _enabled, cache: _cache, ...settings } = c.pretrain;
  const text = c.data.files.pretrain ? data.files.filter((f) => f.key === "data.files.pretrain").map((f) => f.sha256) : "builtin:brown";
  const vocab = createHash("sha256").update(JSON.stringify(data.tok.encode("The quick brown fox jumps over the lazy dog; 0123456789."))).digest("hex");
  const what = { v: 2, compute: compute.detail || compute.name, model: data.modelConfig, tokenizer: { name: data.tok.name, vocabSize: data.tok.vocabSize, vocab }, pretrain: settings, seed: c.seed, text, validationFraction: c.data.pretrain_validation_fraction };
  return createHash("sha256").update(JSON.stringify(what)).digest("hex").slice(0, 24);
}

export async function pretrainStage(ctx: RecipeContext, data: RecipeData, state: RecipeState): Promise<void> {
  const c = ctx.cfg;
  const policy = ctx.services.policy;
  if (c.model.base_checkpoint) {
    await policy.loadModelDir(c.model.base_checkpoint);
    state.models.base = await savePolicy(ctx, "base", "pretrain");
    return;
  }
  const key = c.pretrain.enabled ? pretrainCacheKey(ctx, data, await policy.backend()) : undefined;
  const cached = key ? join(pretrainCacheRoot(ctx.runDir), key) : undefined;
  if (key && cached && c.pretrain.cache && existsSync(join(cached, "pretrain.json"))) {
    // Pretrained before with these very settings: load that model, replay its loss curve.
    const record = JSON.parse(await readFile(join(cached, "pretrain.json"), "utf8")) as CachedPretrain;
    await policy.loadCheckpoint(join(cached, "checkpoint"));
    for (const m of record.metrics) ctx.events.metrics({ stage: "pretrain", step: m.step, values: m.values });
    state.curves = { ...state.curves, pretrain: lossCurve(record.metrics, "loss/lm") };
    ctx.events.progress({ stage: "pretrain", step: record.steps, totalSteps: record.steps, unit: "optimizer_steps", etaMs: 0, elapsedMs: 0 });
    state.pretrainCache = { key, dir: cached, hit: true, savedMs: record.elapsedMs };
    ctx.log.info({ cache: cached, savedMs: record.elapsedMs }, "base model from the pretraining cache");
    state.models.base = await savePolicy(ctx, "base", "pretrain");
    return;
  }
  await policy.loadRandom(data.modelConfig, c.seed);
  const started = Date.now();
  let metrics: CachedPretrain["metrics"] = [];
  if (c.pretrain.enabled) {
    const p = c.pretrain;
    const total = p.steps * p.batch_size;
    const examples: Example[] = [];
    for (let cursor = 0; cursor < total; cursor += 64) {
      const rows = await ctx.services.pretrainMix.sample("train", Math.min(64, total - cursor), p.sequence_length, cursor, c.seed + 1, data.textCorpus);
      for (const tokens of rows) examples.push({ tokens, promptLength: 1 });
    }
    const optimizer = { learningRate: p.learning_rate, weightDecay: p.weight_decay, maxGradNorm: p.max_grad_norm };
    const settings = { epochs: 1, batchSize: p.batch_size, optimizer, schedule: p.schedule, warmupSteps: p.warmup_steps, minLearningRate: p.learning_rate / 10, seed: c.seed, progressEverySteps: Math.max(1, Math.floor(p.steps / 50)) };
    metrics = await trainPolicy(ctx, "pretrain", settings, examples);
  }
  if (metrics.length) state.curves = { ...state.curves, pretrain: lossCurve(metrics, "loss/lm") };
  state.models.base = await savePolicy(ctx, "base", "pretrain");
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
