/** The run's evaluation report: report.json and report.html (libs/report) in the run folder. */
import { acceptanceChecks, winRate, writeReport, type ModelEvaluation, type ReportData } from "@rlhf/report";
import type { ppoCoordinator } from "@rlhf/proto";
import type { RunConfig } from "@rlhf/run-config";
import type { RecipeData, RecipeState, ModelName } from "./recipe/records";
import { join } from "node:path";
import { ATTR_RUN_ID, iterationTimeline, readTraceFile, recentRunTraces, TRACES_FILE, type TimelineRow } from "@rlhf/telemetry";

/** `acceptance/<check>/comparison` codes: the index of the check's comparison in this list. */
export const COMPARISON_CODES = [">=", ">", "<", "<=", "within"] as const;

/** Why the labeler metrics do not apply to a run whose rankings came from a file. */
const FROM_FILE = 'the rankings came from a file (rankings.source "file"): no simulated labelers ranked them';

/** Stage keys of RecipeState.stageMs ("STAGE_SFT") as the report names them ("sft"). */
const stageName = (k: string) => k.replace(/^STAGE_/, "").toLowerCase();

/**
 * The timeline of one traced PPO iteration of the run: the coordinator's own spans kept in memory,
 * plus what the run folder's traces.jsonl holds (every service's spans when the `rlhf` CLI
 * collected them, the coordinator's when it had no endpoint). Undefined when none was traced.
 */
export async function runTimeline(runId: string, runDir: string): Promise<TimelineRow[] | undefined> {
  const file = await readTraceFile(join(runDir, TRACES_FILE), (s) => s.attributes[ATTR_RUN_ID] === runId).catch(() => ({ spans: [] }));
  const tl = iterationTimeline([...recentRunTraces.spans(runId), ...file.spans], { runId });
  return tl?.rows;
}

/** The report's data from the run's state (and the timeline of one traced iteration, when there is one). */
export function reportData(run: ppoCoordinator.Run, config: RunConfig, state: RecipeState, data: RecipeData, backend: { name: string; detail: string }, timeline?: TimelineRow[]): ReportData {
  const ev = state.evaluation ?? {};
  const models: { [M in ModelName]?: ModelEvaluation } = {};
  for (const [name, e] of Object.entries(ev) as [ModelName, NonNullable<RecipeState["evaluation"]>[ModelName]][]) {
    if (!e) continue;
    const n = e.wins + e.losses + e.ties;
    models[name] = {
      win_rate_vs_sft: name === "sft" || n === 0 ? null : winRate(e.wins, e.ties, n),
      gold_helpfulness: e.goldHelpfulness,
      exact_match: e.exactMatch ?? null,
      hallucination_rate: e.hallucinationRate,
      blocklist_rate: e.blocklistRate,
      pretrain_validation_loss: e.pretrainValidationLoss,
      mean_response_tokens: e.meanResponseTokens,
      eos_rate: e.eosRate,
      ...(e.byFamily
        ? {
            by_family: Object.fromEntries(
              Object.entries(e.byFamily).map(([f, x]) => [
                f,
                { prompts: x.prompts, win_rate_vs_sft: x.winRateVsSft, same_as_sft: x.sameAsSft, gold_helpfulness: x.helpfulness, exact_match: x.exactMatch, hallucination_rate: x.hallucinationRate },
              ]),
            ),
          }
        : {}),
    };
  }
  const rm = state.rewardModel;
  // What does not apply to this run, and why (users' data has no gold answers; a rankings file no labelers).
  const notApplicable: NonNullable<ReportData["not_applicable"]> = {
    ...(data.noGold
      ? { win_rate_vs_sft: data.noGold, gold_helpfulness: data.noGold, exact_match: data.noGold, hallucination_rate: data.noGold, blocklist_rate: data.noGold }
      : {}),
    ...(rm && rm.labelerAgreement === null
      ? { labeler_agreement: FROM_FILE, gold_tie_share: FROM_FILE }
      : {}),
  };
  return {
    run: {
      id: run.id,
      created: (run.createTime ?? new Date()).toISOString(),
      finished: new Date().toISOString(),
      config: JSON.parse(JSON.stringify(config)),
      elapsed_ms: Object.fromEntries(Object.entries(state.stageMs).map(([k, v]) => [stageName(k), v])),
      backend: backend.name,
      ...(backend.detail ? { compute: backend.detail } : {}),
      ...(state.pretrainCache ? { pretrain_from_cache: state.pretrainCache.hit } : {}),
    },
    ...(Object.keys(notApplicable).length ? { not_applicable: notApplicable } : {}),
    models,
    reward_model: rm
      ? {
          heldout_accuracy: rm.heldoutAccuracy,
          labeler_agreement: rm.labelerAgreement,
          gold_tie_share: rm.labelerAgreement === null ? null : (state.labelers?.goldTieShare ?? null),
          train_loss: rm.trainLoss,
          pairs: { train: rm.trainPairs, heldout: rm.pairs },
        }
      : undefined,
    ...(state.curves ? { curves: state.curves } : {}),
    kl: { max_mean_kl: config.ppo.kl.max_mean_kl },
    iterations: Object.fromEntries(Object.entries(state.ppo).map(([k, v]) => [k, v?.iterations ?? []])),
    samples: data.eval.slice(0, Math.min(config.evaluation.samples_in_report, config.evaluation.prompts)).map((t, i) => ({
      prompt: t.prompt,
      gold: t.gold ? t.gold.completion.trim() : null,
      responses: Object.fromEntries(Object.entries(ev).map(([n, e]) => [n, e?.responses[i] ?? ""])),
    })),
    ...(timeline?.length ? { timeline } : {}),
  };
}

/** Writes report.json and report.html; returns the acceptance checks as metric values. */
export async function writeRunReport(run: ppoCoordinator.Run, config: RunConfig, state: RecipeState, data: RecipeData, backend: { name: string; detail: string }): Promise<Record<string, number>> {
  const rd = reportData(run, config, state, data, backend, await runTimeline(run.id, run.runDir));
  writeReport(run.runDir, rd);
  const values: Record<string, number> = {};
  for (const c of acceptanceChecks(rd)) {
    if (c.not_applicable !== null) {
      values[`acceptance/${c.name}/not_applicable`] = 1; // neither passed nor failed
      continue;
    }
    if (c.value !== null) values[`acceptance/${c.name}`] = c.value;
    values[`acceptance/${c.name}/passed`] = c.passed ? 1 : 0;
    // What the check needed, so that `rlhf demo/run/watch` can print it beside the value.
    if (c.threshold !== null) values[`acceptance/${c.name}/threshold`] = c.threshold;
    values[`acceptance/${c.name}/comparison`] = COMPARISON_CODES.indexOf(c.comparison);
    if (c.tolerance !== undefined) values[`acceptance/${c.name}/tolerance`] = c.tolerance;
  }
  return values;
}
