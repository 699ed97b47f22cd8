/** The run's evaluation report: report.json and report.html (libs/report) in the run folder. */
import { acceptanceChecks, winRate, writeReport, type ModelEvaluation, type ReportData } from "@rlhf/report";
import type { ppoCoordinator } from "@rlhf/proto";
import type { RunConfig } from "@rlhf/run-config";
import type { RecipeData, RecipeState, ModelName } from "./recipe/recipe";

/** Stage keys of RecipeState.stageMs ("STAGE_SFT") as the report names them ("sft"). */
const stageName = (k: string) => k.replace(/^STAGE_/, "").toLowerCase();

/** The report's data from the run's state. */
export function reportData(run: ppoCoordinator.Run, config: RunConfig, state: RecipeState, data: RecipeData, backend: string): ReportData {
  const ev = state.evaluation ?? {};
  const models: { [M in ModelName]?: ModelEvaluation } = {};
  for (const [name, e] of Object.entries(ev) as [ModelName, NonNullable<RecipeState["evaluation"]>[ModelName]][]) {
    if (!e) continue;
    const n = e.wins + e.losses + e.ties;
    models[name] = {
      win_rate_vs_sft: name === "sft" || n === 0 ? null : winRate(e.wins, e.ties, n),
      gold_helpfulness: e.goldHelpfulness,
      hallucination_rate: e.hallucinationRate,
      blocklist_rate: e.blocklistRate,
      pretrain_validation_loss: e.pretrainValidationLoss,
      mean_response_tokens: e.meanResponseTokens,
      eos_rate: e.eosRate,
    };
  }
  const rm = state.rewardModel;
  return {
    run: {
      id: run.id,
      created: (run.createTime ?? new Date()).toISOString(),
      finished: new Date().toISOString(),
      config: JSON.parse(JSON.stringify(config)),
      elapsed_ms: Object.fromEntries(Object.entries(state.stageMs).map(([k, v]) => [stageName(k), v])),
      backend,
    },
    models,
    reward_model: rm ? { heldout_accuracy: rm.heldoutAccuracy, labeler_agreement: rm.labelerAgreement, train_loss: rm.trainLoss, pairs: { train: rm.trainPairs, heldout: rm.pairs } } : undefined,
    kl: { max_mean_kl: config.ppo.kl.max_mean_kl },
    iterations: Object.fromEntries(Object.entries(state.ppo).map(([k, v]) => [k, v?.iterations ?? []])),
    samples: data.eval.slice(0, Math.min(config.evaluation.samples_in_report, config.evaluation.prompts)).map((t, i) => ({
      prompt: t.prompt,
      gold: t.completion.trim(),
      responses: Object.fromEntries(Object.entries(ev).map(([n, e]) => [n, e?.responses[i] ?? ""])),
    })),
  };
}

/** Writes report.json and report.html; returns the acceptance checks as metric values. */
export function writeRunReport(run: ppoCoordinator.Run, config: RunConfig, state: RecipeState, data: RecipeData, backend: string): Record<string, number> {
  const rd = reportData(run, config, state, data, backend);
  writeReport(run.runDir, rd);
  const values: Record<string, number> = {};
  for (const c of acceptanceChecks(rd)) {
    if (c.value !== null) values[`acceptance/${c.name}`] = c.value;
    values[`acceptance/${c.name}/passed`] = c.passed ? 1 : 0;
  }
  return values;
}
