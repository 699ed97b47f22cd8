/** Stage 2: supervised fine-tuning of the base model on the demonstrations (prompt + completion + EOS). */
import type { RecipeContext } from "../context";
import { demonstrationTokens } from "../data";
import type { RecipeData, RecipeState } from "../records";
import { lossCurve, savePolicy, trainPolicy } from "./shared";

export async function sftStage(ctx: RecipeContext, data: RecipeData, state: RecipeState): Promise<void> {
  const c = ctx.cfg.sft;
  await ctx.services.policy.loadCheckpoint(state.models.base as string);
  const examples = data.sft.map((t) => ({ tokens: demonstrationTokens(data, t), promptLength: data.tok.encode(t.prompt).length }));
  const steps = c.epochs * Math.ceil(examples.length / c.batch_size);
  const optimizer = { learningRate: c.learning_rate, weightDecay: c.weight_decay, maxGradNorm: c.max_grad_norm };
  const settings = { epochs: c.epochs, batchSize: c.batch_size, optimizer, schedule: c.schedule, warmupSteps: c.warmup_steps, minLearningRate: c.learning_rate / 10, seed: ctx.cfg.seed + 2, progressEverySteps: Math.max(1, Math.floor(steps / 50)) };
  const curve = await trainPolicy(ctx, "sft", settings, examples);
  state.curves = { ...state.curves, sft: lossCurve(curve, "loss/lm") };
  state.models.sft = await savePolicy(ctx, "sft", "sft");
}
