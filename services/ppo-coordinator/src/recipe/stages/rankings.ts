/**
 * Stage 3: K samples per reward-model prompt from the SFT model, ranked by the simulated
 * labelers (whose noise is calibrated on them with `data.builtin.labeler_calibration`
 * "ranked_samples"); with `rankings.source` "labeling", ranked through the labeling service (by
 * people, or by the same simulated labelers through `rlhf label simulate`); or, with "file", the
 * comparisons of the user's file.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { writeJsonAtomic } from "@rlhf/errors";
import { basename, join } from "node:path";
import { calibrateOnGroups, groupScoreDiffs, measuredAgreement, type ResponseGroup, type SimulatedLabeler } from "@rlhf/data";
import { EMPTY_RESPONSE_TEXT, distinctResponses, panelSource, type ComparisonToRank } from "@rlhf/labeling-client";
import type { RecipeContext } from "../context";
import { labelerPanel } from "../data";
import { responseOf, type LabelerPanelState, type RankedSamples, type RecipeData, type RecipeState } from "../records";
import { progress } from "./shared";

type Sampled = { prompt: number[]; responses: number[][]; group: ResponseGroup };

export async function rankingsStage(ctx: RecipeContext, data: RecipeData, state: RecipeState): Promise<RankedSamples[]> {
  const c = ctx.cfg.rankings;
  if (c.source === "file") return fileRankings(ctx, data);
  const tasks = data.rm.slice(0, c.prompts);
  // A run waiting for people that is resumed ranks the samples it sent (kept in the run folder),
  // not new ones: the batch it submitted is found again by its id.
  const saved = c.source === "labeling" ? await loadSentSamples(ctx, data, tasks.length) : undefined;
  const sampled = saved ?? (await sample(ctx, data, state, tasks));
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
  const out: RankedSamples[] =
    c.source === "labeling"
      ? await labelingRanks(ctx, data, sampled, saved !== undefined)
      : sampled.map((s, i) => ({ prompt: s.prompt, responses: s.responses, ranks: data.labelers[i % data.labelers.length].rank(s.group.task, s.group.responses) }));
  const agreement = measuredAgreement(groups, data.labelers);
  const diffs = groupScoreDiffs(groups, { blocklist: b.blocklist ?? undefined });
  const goldTieShare = diffs.length ? diffs.filter((d) => d === 0).length / diffs.length : 0;
  state.labelers = { noiseStd: data.labelers[0].noiseStd, calibratedOn, agreement: agreement.pairs ? agreement.agree / agreement.pairs : 1, pairs: agreement.pairs, goldTieShare };
  ctx.events.metrics({
    stage: "rankings",
    step: out.length,
    values: { "labelers/noise_std": state.labelers.noiseStd, "labelers/agreement": state.labelers.agreement, "labelers/pairs": agreement.pairs, "labelers/gold_tie_share": goldTieShare },
  });
  return out;
}

/** K samples per prompt from the SFT model (progress: prompts sampled). */
async function sample(ctx: RecipeContext, data: RecipeData, state: RecipeState, tasks: RecipeData["rm"]): Promise<Sampled[]> {
  const c = ctx.cfg.rankings;
  await ctx.services.policy.loadCheckpoint(state.models.sft as string);
  const report = progress(ctx, "rankings", "prompts", tasks.length, Date.now());
  report(0);
  const sampled: Sampled[] = [];
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
  return sampled;
}

/** The file in the run folder that keeps the samples sent to the labeling service. */
const SENT_FILE = "labeling-samples.json";

/** The samples a run sent to the labeling service before it was interrupted, if any. */
async function loadSentSamples(ctx: RecipeContext, data: RecipeData, n: number): Promise<Sampled[] | undefined> {
  const file = join(ctx.runDir, SENT_FILE);
  if (!existsSync(file)) return undefined;
  const sent = JSON.parse(await readFile(file, "utf8")) as { prompt: number[]; responses: number[][] }[];
  if (sent.length !== n) return undefined;
  return sent.map((s, i) => ({ ...s, group: { task: data.rm[i], responses: s.responses.map((r) => data.tok.decode(r)) } }));
}

/**
 * One comparison per prompt for the labeling service: the distinct responses (see
 * {@link foldResponses}), keyed `<task id>#<index>` (the built-in task id, which the simulated
 * labelers of `rlhf label simulate` judge against, and the prompt's place in the batch, which says
 * which of them ranks it). Undefined for a prompt whose K responses are all the same (every
 * labeler ties them: nothing to ask).
 */
export function comparisonOf(s: { group: ResponseGroup }, index: number): { comparison?: ComparisonToRank; indexOf: number[] } {
  const f = foldResponses(s.group.responses);
  return { comparison: f.responses.length < 2 ? undefined : { key: `${s.group.task.id}#${index}`, prompt: s.group.task.prompt, responses: f.responses }, indexOf: f.indexOf };
}

/**
 * Repeated samples folded into one (the service ranks distinct responses; equal ones after
 * trimming and collapsing whitespace, as the labelers compare them, tie anyway); a blank response
 * (the model ended at once) is shown as {@link EMPTY_RESPONSE_TEXT}.
 */
export function foldResponses(responses: readonly string[]): { responses: string[]; indexOf: number[] } {
  return distinctResponses(responses.map((r) => (r.trim() === "" ? EMPTY_RESPONSE_TEXT : r)));
}

/**
 * A ranking of the distinct responses as a ranking of all K samples: rank[i] = how many of the K
 * samples are strictly better than sample i (equal samples tie), as a labeler ranking all K gives.
 */
export function unfoldRanking(distinctRanking: readonly number[], indexOf: readonly number[]): number[] {
  return indexOf.map((d) => indexOf.filter((e) => distinctRanking[e] < distinctRanking[d]).length);
}

/**
 * The ranks of the labeling service: the samples (kept in the run folder first, for a resume)
 * sent as one batch `<run id>-rankings`, the stage waiting until `rankings.labeling.min_ranked`
 * prompts are ranked (progress: ranked prompts), then the first ranking of each mapped back to
 * the K samples. Prompts not ranked by then are left out.
 */
async function labelingRanks(ctx: RecipeContext, data: RecipeData, sampled: readonly Sampled[], resumed: boolean): Promise<RankedSamples[]> {
  const c = ctx.cfg.rankings;
  if (!resumed) {
    await writeJsonAtomic(join(ctx.runDir, SENT_FILE), sampled.map((s) => ({ prompt: s.prompt, responses: s.responses })));
  }
  const folded = sampled.map((s, i) => comparisonOf(s, i));
  const comparisons = folded.flatMap((f) => (f.comparison ? [f.comparison] : []));
  const local = sampled.length - comparisons.length;
  const target = Math.min(c.labeling.min_ranked ?? sampled.length, sampled.length);
  const report = progress(ctx, "rankings", "ranked_prompts", target, Date.now());
  report(Math.min(target, local));
  const runId = ctx.runId ?? basename(ctx.runDir);
  const ranked = comparisons.length
    ? await ctx.services.labeling.collect(`${runId}-rankings`, comparisons, {
        minRanked: Math.max(1, target - local),
        overlapFraction: c.labeling.overlap ?? undefined,
        source: `run ${runId}, rankings stage; ${panelSource(panelOf(data.labelers, ctx.cfg.data.builtin.seed))}`,
        onProgress: (p) => report(Math.min(target, p.ranked + local)),
      })
    : [];
  const byKey = new Map(ranked.map((r) => [r.key, r]));
  const out: RankedSamples[] = [];
  sampled.forEach((s, i) => {
    const f = folded[i];
    if (!f.comparison) out.push({ prompt: s.prompt, responses: s.responses, ranks: s.responses.map(() => 0) });
    else {
      const r = byKey.get(f.comparison.key);
      if (r) out.push({ prompt: s.prompt, responses: s.responses, ranks: unfoldRanking(r.ranking, f.indexOf) });
    }
  });
  ctx.log.info({ prompts: sampled.length, sent: comparisons.length, ranked: ranked.length, allEqual: local }, "rankings from the labeling service");
  return out;
}

/** The simulated panel the in-process ranking would use: `rlhf label simulate` ranks the batch as it would. */
function panelOf(labelers: readonly SimulatedLabeler[], seed: number) {
  return { labelers: labelers.length, seed, noiseStd: labelers[0]?.noiseStd ?? 0 };
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
