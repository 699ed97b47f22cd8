/**
 * Stage 6: every model (base, SFT, PPO, PPO-ptx) answers the held-out prompts; the labelers
 * compare each answer with SFT's, the gold scorer measures it (built-in data), and the pretraining
 * validation loss shows what RLHF cost the language model (the alignment tax PPO-ptx limits).
 */
import { canonicalResponse, evaluateResponses, winRate, type InstructionTask, type SimulatedLabeler } from "@rlhf/data";
import type { RecipeContext } from "../context";
import { responseOf, type FamilyEval, type ModelName, type RecipeData, type RecipeState } from "../records";
import { progress } from "./shared";

export async function evaluationStage(ctx: RecipeContext, data: RecipeData, state: RecipeState): Promise<void> {
  const e = ctx.cfg.evaluation;
  const tasks = data.eval.slice(0, e.prompts);
  const prompts = tasks.map((t) => data.tok.encode(t.prompt));
  const names = (["base", "sft", "ppo", "ppo_ptx"] as const).filter((n) => state.models[n]);
  const report = progress(ctx, "evaluation", "models", names.length, Date.now());
  report(0);
  const valLen = Math.min(ctx.cfg.ppo.ptx.sequence_length, data.modelConfig.nPositions);
  const validation = (await ctx.services.pretrainMix.sample("validation", e.pretrain_validation_sequences, valLen, 0, 0, data.textCorpus)).map((tokens) => ({ tokens, promptLength: 1, eos: false }));
  const raw: Partial<Record<ModelName, { texts: string[]; lengths: number[]; eos: boolean[]; valLoss: number }>> = {};
  for (const [k, name] of names.entries()) {
    await ctx.services.policy.loadCheckpoint(state.models[name] as string);
    const texts: string[] = [];
    const lengths: number[] = [];
    const eos: boolean[] = [];
    for (let i = 0; i < prompts.length; i += 128) {
      // Temperature 0 is greedy: top_k 1 at temperature 1.
      const g = await ctx.services.policy.generate(prompts.slice(i, i + 128), { samplesPerPrompt: 1, temperature: e.temperature || 1, topK: e.temperature === 0 ? 1 : 0, maxNewTokens: e.max_new_tokens, seed: ctx.cfg.seed + 5 });
      for (const smp of g.samples) {
        texts.push(data.tok.decode(responseOf(smp)));
        lengths.push(smp.tokens.length - smp.promptLength);
        eos.push(smp.eos);
      }
    }
    // The pretraining loss of every token after the first (prompt length 1).
    const ev = await ctx.services.policy.evaluate(validation, 0, true);
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
    ctx.events.metrics({ stage: "evaluation", step: 0, values: { ...labeled, [`eval/${name}/pretrain_validation_loss`]: r.valLoss } });
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
