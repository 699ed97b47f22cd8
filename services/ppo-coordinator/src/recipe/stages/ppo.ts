/**
 * Stage 5: PPO-ptx, then (with `compare_without_ptx`) plain PPO from the same SFT model; the
 * reference model holds the SFT weights, the critic starts as the reward model. Each iteration is
 * one trace (../trace.ts); a checkpoint every `checkpoint.every_iterations` lets a resume
 * continue exactly where it was.
 */
import { join } from "node:path";
import { readdir, rm } from "node:fs/promises";
import { combineScores, isExactMatch, scoreResponse } from "@rlhf/data";
import { createKlController, klControllerFromState } from "@rlhf/rl";
import type { RecipeContext } from "../context";
import { ppoIteration, type PpoSettings, type RolloutJudge } from "../ppo-iteration";
import type { RecipeData, RecipeState } from "../records";
import { iterationTrace, phase } from "../trace";
import { progress, savePolicy } from "./shared";

/** The PPO settings of a variant from the config. */
function ppoSettings(ctx: RecipeContext, data: RecipeData, ptx: boolean): PpoSettings {
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
    textCorpus: data.textCorpus,
  };
}

export async function ppoStage(ctx: RecipeContext, data: RecipeData, state: RecipeState, saveState: () => Promise<void>): Promise<void> {
  const p = ctx.cfg.ppo;
  const { policy } = ctx.services;
  // The reward model and the reference may have restarted since their stage (a resume): load both.
  await ctx.services.rewardModel.loadCheckpoint(state.rewardModelDir as string);
  await ctx.services.reference.load(join(state.models.sft as string, "policy"));
  const variants: ("ppo_ptx" | "ppo")[] = p.compare_without_ptx ? ["ppo_ptx", "ppo"] : ["ppo_ptx"];
  const report = progress(ctx, "ppo", "iterations", variants.length * p.iterations, Date.now());
  const prompts = data.ppo.map((t) => data.tok.encode(t.prompt));
  const blocklist = ctx.cfg.data.builtin.blocklist ?? undefined;
  for (const [vi, name] of variants.entries()) {
    let v = state.ppo[name];
    if (v?.done) continue;
    const s = ppoSettings(ctx, data, name === "ppo_ptx");
    if (v?.checkpoint) {
      // Continue exactly from the checkpoint: the policy service's state, the counters, the KL
      // controller, and the metrics up to it (iterations after it run again, identically).
      const ck = v.checkpoint;
      await policy.loadCheckpoint(ck.dir);
      v.cursor = { ...ck.cursor };
      v.kl = ck.kl;
      v.iterations = v.iterations.slice(0, ck.iterations);
    } else {
      const version = await policy.loadCheckpoint(state.models.sft as string);
      await policy.initCritic(await criticInitDir(ctx, state));
      const kl = createKlController(p.kl.controller === "adaptive" ? { kind: "adaptive", initBeta: p.kl.beta, targetKl: p.kl.target as number, horizon: p.kl.horizon as number } : { kind: "fixed", beta: p.kl.beta });
      v = { cursor: { iteration: 0, promptCursor: 0, ptxCursor: 0, policyVersion: version }, kl: kl.state(), iterations: [], done: false };
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
      // Rollout i answers PPO prompt (start + i): with built-in data, the gold scorer judges it too.
      const judge: RolloutJudge = (i, response) => {
        const task = data.ppo[(start + i) % data.ppo.length].gold;
        if (!task) return undefined;
        const text = data.tok.decode(response.filter((id) => id !== data.tok.eosId));
        const scores = scoreResponse(task, text, { blocklist });
        return { score: combineScores(scores), helpfulness: scores.helpfulness, exact: isExactMatch(task, text) };
      };
      // One trace per iteration: the phases of ppoIteration, then the checkpoint.
      await iterationTrace(ctx, v.cursor.iteration + 1, name, { "rlhf.batch_size": batch.length, "rlhf.weights_version": v.cursor.policyVersion }, async (root) => {
        const values = await ppoIteration(ctx.services, { ...s, policyLr: s.policyLr * warm, criticLr: s.criticLr * warm }, kl, v.cursor, batch, judge);
        root.setAttributes({ "rlhf.response_tokens": Math.round((values["response/length_mean"] ?? 0) * batch.length), "rlhf.weights_version_after": v.cursor.policyVersion });
        v.kl = kl.state();
        v.iterations.push({ iteration: v.cursor.iteration, values });
        ctx.events.metrics({ stage: "ppo", step: vi * p.iterations + v.cursor.iteration, values: { ...values, "run/variant_ptx": name === "ppo_ptx" ? 1 : 0 } });
        report(vi * p.iterations + v.cursor.iteration);
        if (v.cursor.iteration % ctx.cfg.checkpoint.every_iterations === 0 || v.cursor.iteration === p.iterations) {
          await phase("ppo.checkpoint", { "rlhf.weights_version": v.cursor.policyVersion }, async () => {
            const dir = await savePolicy(ctx, `${name}-${String(v.cursor.iteration).padStart(6, "0")}`, "ppo", v.cursor.iteration);
            v.checkpoint = { dir, cursor: { ...v.cursor }, kl: v.kl, iterations: v.iterations.length };
            // The state names the new checkpoint before the old ones go: killed in between, the
            // run resumes from the new one (an old folder left over goes at the next prune);
            // the other way round, a kill there left the state naming a deleted folder.
            await saveState();
            await pruneCheckpoints(ctx, name, ctx.cfg.checkpoint.keep_last);
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
  const rmc = ctx.services.rewardModel;
  await rmc.loadModelDir(join(state.models.sft as string, "policy"));
  await rm(dir, { recursive: true, force: true });
  await rmc.save(dir);
  await rmc.loadCheckpoint(state.rewardModelDir as string);
  return dir;
}

/** Keeps the last `keep` checkpoints of a variant. */
async function pruneCheckpoints(ctx: RecipeContext, name: string, keep: number): Promise<void> {
  const dir = join(ctx.runDir, "checkpoints");
  const mine = (await readdir(dir)).filter((d) => new RegExp(`^${name}-\\d{6}$`).test(d)).sort();
  for (const d of mine.slice(0, Math.max(0, mine.length - keep))) await rm(join(dir, d), { recursive: true, force: true });
}
