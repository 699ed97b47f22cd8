/** The run's evaluation report (report.json + report.html in the run folder). */
import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import type { ppoCoordinator } from "@rlhf/proto";
import type { RunConfig } from "@rlhf/run-config";
import type { RecipeData, RecipeState } from "./recipe/recipe";

/** Writes report.json (and report.html when the report library is available). */
export async function writeRunReport(run: ppoCoordinator.Run, config: RunConfig, state: RecipeState, data: RecipeData): Promise<void> {
  const ev = state.evaluation ?? {};
  const models = Object.fromEntries(
    Object.entries(ev).map(([name, e]) => [
      name,
      {
        win_rate_vs_sft: e.winRateVsSft,
        comparisons: e.wins + e.losses + e.ties,
        gold_helpfulness: e.goldHelpfulness,
        hallucination_rate: e.hallucinationRate,
        blocklist_rate: e.blocklistRate,
        pretrain_validation_loss: e.pretrainValidationLoss,
        mean_response_tokens: e.meanResponseTokens,
        eos_rate: e.eosRate,
      },
    ]),
  );
  const report = {
    run: { id: run.id, created: run.createTime?.toISOString(), stage_ms: state.stageMs, config },
    models,
    reward_model: state.rewardModel,
    iterations: Object.fromEntries(Object.entries(state.ppo).map(([k, v]) => [k, v?.iterations ?? []])),
    samples: data.eval.slice(0, config.evaluation.samples_in_report).map((t, i) => ({ prompt: t.prompt, gold: t.completion, responses: Object.fromEntries(Object.entries(ev).map(([n, e]) => [n, e.responses[i]])) })),
  };
  await writeFile(join(run.runDir, "report.json"), JSON.stringify(report, null, 2) + "\n");
}
