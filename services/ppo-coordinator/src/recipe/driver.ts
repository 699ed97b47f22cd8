/**
 * The recipe, one line per stage: pretrain -> SFT -> rankings -> reward model -> PPO-ptx (and
 * plain PPO for comparison) -> evaluation and the report. A stage already in the run's state is
 * skipped, so a resumed run continues where it stopped (PPO from its last checkpoint). The run
 * store (../runs.ts) persists the state and turns the hooks into events.
 */
import type { RecipeContext } from "./context";
import { loadRecipeData, restoreLabelers } from "./data";
import { stageKey, type RankedSamples, type RecipeData, type RecipeState, type StageName } from "./records";
import { evaluationStage } from "./stages/evaluation";
import { ppoStage } from "./stages/ppo";
import { pretrainStage } from "./stages/pretrain";
import { rankingsStage } from "./stages/rankings";
import { rewardModelStage } from "./stages/reward-model";
import { sftStage } from "./stages/sft";
import { stageTrace } from "./trace";
import { checkRunInputs } from "./user-data";

/** What the run store does around the stages. */
export interface RecipeHooks {
  /** A stage starts (its clock starts). */
  stageStarted(stage: StageName): void;
  /** A stage's work is done: its elapsed milliseconds, this attempt's added to earlier ones'. */
  stageElapsed(stage: StageName): number;
  /** A stage is done and in the state: save the run (its state and its record). */
  stageDone(stage: StageName): Promise<void>;
  /** Saves the run's state (after every PPO checkpoint). */
  saveState(): Promise<void>;
  /** Writes report.json and report.html (inside the evaluation stage, whose time it includes). */
  writeReport(data: RecipeData, state: RecipeState, backend: { name: string; detail: string }): Promise<void>;
}

export async function runRecipe(ctx: RecipeContext, state: RecipeState, hooks: RecipeHooks): Promise<void> {
  const data = await loadRecipeData(ctx);
  restoreLabelers(ctx, data, state);
  // Exact resume needs the same data files; the corpus must be tokenised as the policy's.
  await checkRunInputs(ctx, data.files);
  const stage = async (name: StageName, fn: () => Promise<void>) => {
    if (state.stagesDone.includes(name)) return;
    if (ctx.signal.aborted) throw ctx.signal.reason;
    hooks.stageStarted(name);
    // Each stage is one trace (a root span `stage.<name>`; ./trace.ts).
    await stageTrace(ctx, name, fn);
    state.stageMs[stageKey(name)] = hooks.stageElapsed(name);
    state.stagesDone.push(name);
    await hooks.stageDone(name);
  };

  await stage("pretrain", () => pretrainStage(ctx, data, state));
  await stage("sft", () => sftStage(ctx, data, state));
  // Rankings are the reward model's input: a resume that redoes the reward model redoes them.
  if (!state.stagesDone.includes("reward_model")) {
    state.stagesDone = state.stagesDone.filter((s) => s !== "rankings");
    let ranked: RankedSamples[] = [];
    await stage("rankings", async () => void (ranked = await rankingsStage(ctx, data, state)));
    await stage("reward_model", () => rewardModelStage(ctx, data, state, ranked));
  }
  await stage("ppo", () => ppoStage(ctx, data, state, hooks.saveState));
  await stage("evaluation", async () => {
    await evaluationStage(ctx, data, state);
    // The report is written inside this stage: its time so far is its time in the report.
    const backend = await ctx.services.policy.backend();
    const key = stageKey("evaluation");
    await hooks.writeReport(data, { ...state, stageMs: { ...state.stageMs, [key]: hooks.stageElapsed("evaluation") } }, backend);
  });
}
