/**
 * Stage 4: the reward model from the SFT weights (a zero head on the SFT trunk), trained on the
 * K-way rankings, normalised so that the demonstrations score 0 on average, and measured on the
 * held-out comparisons.
 */
import { join } from "node:path";
import { rm } from "node:fs/promises";
import type { RecipeContext } from "../context";
import { demonstrationTokens } from "../data";
import type { RankedSamples, RecipeData, RecipeState } from "../records";
import { heldOutComparisons } from "../user-data";
import { progress } from "./shared";

export async function rewardModelStage(ctx: RecipeContext, data: RecipeData, state: RecipeState, ranked: RankedSamples[]): Promise<void> {
  const c = ctx.cfg.reward_model;
  const rmc = ctx.services.rewardModel;
  await rmc.loadModelDir(join(state.models.sft as string, "policy"));
  const nVal = Math.max(1, Math.round(ranked.length * c.validation_fraction));
  // A file's comparisons are held out evenly through the file (it may be sorted by topic).
  const { validation, train } = ctx.cfg.rankings.source === "file" ? heldOutComparisons(ranked, c.validation_fraction) : { validation: ranked.slice(0, nVal), train: ranked.slice(nVal) };
  const steps = c.epochs * Math.ceil(train.length / c.batch_size);
  const report = progress(ctx, "reward_model", "optimizer_steps", steps, Date.now());
  report(0);
  const optimizer = { learningRate: c.learning_rate, weightDecay: c.weight_decay, maxGradNorm: c.max_grad_norm };
  const settings = { epochs: c.epochs, batchSize: c.batch_size, optimizer, schedule: c.schedule, warmupSteps: 0, minLearningRate: c.learning_rate / 10, seed: ctx.cfg.seed + 3, progressEverySteps: 1 };
  const rmCurve: [number, number][] = [];
  const done = await rmc.train(settings, train, (p) => {
    report(p.step);
    if (Number.isFinite(p.loss)) rmCurve.push([p.step, p.loss]);
    ctx.events.metrics({ stage: "reward_model", step: p.step, values: { "loss/reward_model": p.loss, "reward_model/accuracy": p.accuracy ?? 0, "optim/learning_rate": p.learningRate } });
  });
  state.curves = { ...state.curves, reward_model: rmCurve };
  if (c.normalize) await rmc.normalize(data.sft.slice(0, 256).map((t) => demonstrationTokens(data, t)));
  const { pairs, correct } = await rmc.accuracy(validation);
  const dir = join(ctx.runDir, "checkpoints", "reward-model");
  await rm(dir, { recursive: true, force: true });
  const saved = await rmc.save(dir);
  state.rewardModelDir = saved.dir;
  ctx.events.checkpoint({ dir: saved.dir, stage: "reward_model", iteration: 0, weights: saved.weights, bytes: saved.bytes });
  const labelerAgreement = ctx.cfg.rankings.source === "file" ? null : (state.labelers?.agreement ?? null);
  state.rewardModel = { heldoutAccuracy: pairs > 0 ? correct / pairs : 0, trainLoss: done.finalLoss, trainPairs: done.pairs, pairs, labelerAgreement };
  ctx.events.metrics({ stage: "reward_model", step: steps, values: { "reward_model/heldout_accuracy": state.rewardModel.heldoutAccuracy, "reward_model/heldout_pairs": pairs } });
}
