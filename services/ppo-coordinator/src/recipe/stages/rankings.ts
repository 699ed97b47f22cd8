/**
 * Stage 3: K samples per reward-model prompt from the SFT model, ranked by the simulated
 * labelers (whose noise is calibrated on them with `data.builtin.labeler_calibration`
 * "ranked_samples"); or, with `rankings.source` "file", the comparisons of the user's file.
 */
import { calibrateOnGroups, groupScoreDiffs, measuredAgreement, type ResponseGroup } from "@rlhf/data";
import type { RecipeContext } from "../context";
import { labelerPanel } from "../data";
import { responseOf, type LabelerPanelState, type RankedSamples, type RecipeData, type RecipeState } from "../records";
import { progress } from "./shared";

export async function rankingsStage(ctx: RecipeContext, data: RecipeData, state: RecipeState): Promise<RankedSamples[]> {
  const c = ctx.cfg.rankings;
  if (c.source === "file") return fileRankings(ctx, data);
  await ctx.services.policy.loadCheckpoint(state.models.sft as string);
  const tasks = data.rm.slice(0, c.prompts);
  const report = progress(ctx, "rankings", "prompts", tasks.length, Date.now());
  report(0);
  const sampled: { prompt: number[]; responses: number[][]; group: ResponseGroup }[] = [];
  const chunk = Math.max(1, Math.floor(256 / c.k));
  for (let i = 0; i < tasks.length; i += chunk) {
    const part = tasks.slice(i, i + chunk);
    const prompts = part.map((t) => data.tok.encode(t.prompt));
    const g = await ctx.services.policy.generate(prompts, { samplesPerPrompt: c.k, temperature: c.temperature, maxNewTokens: c.max_new_tokens, seed: ctx.cfg.seed * 7919 + i });
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
    stage: "rankings",
    step: tasks.length,
    values: { "labelers/noise_std": state.labelers.noiseStd, "labelers/agreement": state.labelers.agreement, "labelers/pairs": agreement.pairs, "labelers/gold_tie_share": goldTieShare },
  });
  return out;
}

/**
 * The comparisons file's records as the reward model's groups: the prompt's ids and each
 * response's ids followed by EOS (as a sampled response that ended), with the file's ranks.
 * Nothing is sampled.
 */
function fileRankings(ctx: RecipeContext, data: RecipeData): RankedSamples[] {
  const started = Date.now();
  const groups = data.rankingsFile ?? [];
  const tok = data.tok;
  ctx.events.progress({ stage: "rankings", step: 0, totalSteps: groups.length, unit: "prompts", etaMs: 0, elapsedMs: 0 });
  const out = groups.map((g) => ({ prompt: tok.encode(g.prompt), responses: g.responses.map((r) => [...tok.encode(r), tok.eosId]), ranks: [...g.ranking] }));
  ctx.events.progress({ stage: "rankings", step: groups.length, totalSteps: groups.length, unit: "prompts", etaMs: 0, elapsedMs: Date.now() - started });
  return out;
}
