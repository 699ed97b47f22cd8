/** What several stages do the same way: progress with an ETA, checkpoints in the run folder, loss curves. */
import { join } from "node:path";
import { rm } from "node:fs/promises";
import type { RecipeContext } from "../context";
import type { Example, StageName, TrainSettings } from "../records";

/** Emits a stage's progress with an ETA from the rate so far. */
export function progress(ctx: RecipeContext, stage: StageName, unit: string, total: number, startedMs: number) {
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

/** Saves the policy service's state to `<run>/checkpoints/<name>` (replacing an older one). */
export async function savePolicy(ctx: RecipeContext, name: string, stage: StageName, iteration = 0): Promise<string> {
  const dir = join(ctx.runDir, "checkpoints", name);
  await rm(dir, { recursive: true, force: true });
  const r = await ctx.services.policy.save(dir);
  ctx.events.checkpoint({ dir: r.dir, stage, iteration, weights: r.weights, bytes: r.bytes });
  return r.dir;
}

/** The [step, value] points of one metric in a list of metric events. */
export function lossCurve(metrics: readonly { step: number; values: Record<string, number> }[], name: string): [number, number][] {
  return metrics.filter((m) => Number.isFinite(m.values[name])).map((m) => [m.step, m.values[name]]);
}

/** A training call's progress as the stage's metrics (`loss/lm`, `optim/learning_rate`, ...). */
export function lmMetrics(p: { loss: number; learningRate: number; gradNorm?: number; tokensPerSecond?: number; validationLoss?: number }): Record<string, number> {
  const values: Record<string, number> = { "loss/lm": p.loss, "optim/learning_rate": p.learningRate, "optim/grad_norm": p.gradNorm ?? 0, "throughput/tokens_per_second": p.tokensPerSecond ?? 0 };
  if (p.validationLoss !== undefined) values["loss/lm_validation"] = p.validationLoss;
  return values;
}

/**
 * Trains the policy on `examples` (Sft), reporting progress and metrics under `stage`; returns
 * every progress message's metrics.
 */
export async function trainPolicy(ctx: RecipeContext, stage: StageName, settings: TrainSettings, examples: readonly Example[]): Promise<{ step: number; values: Record<string, number> }[]> {
  const report = progress(ctx, stage, "optimizer_steps", settings.epochs * Math.ceil(examples.length / settings.batchSize), Date.now());
  report(0);
  const metrics: { step: number; values: Record<string, number> }[] = [];
  await ctx.services.policy.sft(settings, examples, (p) => {
    report(p.step);
    const values = lmMetrics(p);
    ctx.events.metrics({ stage, step: p.step, values });
    metrics.push({ step: p.step, values });
  });
  return metrics;
}
