/** The run's data: the built-in tasks (demonstrations, prompts, the labeler panel) or the user's files. */
import { buildInstructionDatasets, createLabelers, demonstrate, type InstructionTask, type SimulatedLabeler } from "@rlhf/data";
import { getTokenizer, presetConfig } from "@rlhf/model/tokens";
import type { RunConfig } from "@rlhf/run-config";
import type { RecipeContext } from "./context";
import type { RecipeData, RecipeState } from "./records";
import { loadUserData } from "./user-data";
import { inWorker } from "./worker";

/** The part of {@link RecipeData} that is plain data (it crosses from the worker thread that builds it). */
export type PlainRecipeData = Omit<RecipeData, "tok" | "modelConfig" | "labelers"> & {
  /** The labelers' calibrated noise σ (built-in data); undefined: no labelers (users' data). */
  labelerNoiseStd?: number;
};

/**
 * Builds the run's data: the user's files read and checked as at StartRun (the same rules, the
 * same records), or the built-in tasks whose prompts fit the context, the demonstrations and
 * the labelers' calibrated noise. Synchronous and CPU-bound: a run builds it in a worker thread
 * ({@link loadRecipeData}); tests call it directly.
 */
export function plainRecipeData(c: RunConfig): PlainRecipeData {
  const tok = getTokenizer(c.model.tokenizer);
  const modelConfig = modelConfigOf(c);
  const user = loadUserData(c, tok);
  const fromFile = { rankingsFile: user.rankings?.groups, textCorpus: user.textCorpus, files: user.files };
  if (c.data.source === "files") {
    return {
      sft: user.sft ?? [],
      rm: [],
      ...fromFile,
      ppo: user.ppoPrompts ?? [],
      eval: user.evalPrompts ?? [],
      noGold: "the data comes from files (data.source \"files\"): no gold answers, which the simulated labelers and the gold scorer judge against",
    };
  }
  const b = c.data.builtin;
  const ds = buildInstructionDatasets({ seed: b.seed, sizes: { sft: b.sft_prompts, rm: b.rm_prompts, ppo: b.ppo_prompts, eval: b.eval_prompts }, families: b.families });
  const longest = Math.max(c.ppo.max_new_tokens, c.rankings.max_new_tokens, c.evaluation.max_new_tokens);
  const fits = (t: InstructionTask) => {
    const p = tok.encode(t.prompt).length;
    return p <= c.data.max_prompt_tokens && p + longest <= modelConfig.nPositions && p + tok.encode(t.completion).length + 1 <= modelConfig.nPositions;
  };
  // The labelers' noise, calibrated on simulated responses to the reward-model prompts; with
  // "ranked_samples" the rankings stage recalibrates it on the SFT model's samples.
  const labelerNoiseStd = createLabelers(ds.rm, { count: 1, agreement: b.labeler_agreement, seed: b.seed, blocklist: b.blocklist ?? undefined })[0].noiseStd;
  // The demonstrators: gold answers, and a share with one flaw each (data.builtin.demonstrations).
  const sftTasks = ds.sft.filter(fits);
  const d = b.demonstrations;
  const demos = demonstrate(sftTasks, { flawShare: d.flaw_share, count: d.demonstrators, flaws: d.flaws, blocklist: b.blocklist ?? undefined }, b.seed);
  const sft = sftTasks
    .map((t, i) => ({ prompt: t.prompt, completion: demos[i].completion, eos: demos[i].eos }))
    .filter((e) => tok.encode(e.prompt).length + tok.encode(e.completion).length + 1 <= modelConfig.nPositions);
  return { sft, rm: ds.rm.filter(fits), ...fromFile, ppo: ds.ppo.filter(fits).map((t) => ({ prompt: t.prompt, gold: t })), eval: ds.eval.filter(fits).map((t) => ({ prompt: t.prompt, gold: t })), labelerNoiseStd };
}

/** The model's shape: the preset with the config's overrides, the vocabulary of its tokenizer. */
function modelConfigOf(c: RunConfig) {
  const tok = getTokenizer(c.model.tokenizer);
  return presetConfig(c.model.preset, { vocabSize: tok.name === "gpt2" ? 50257 : tok.vocabSize, nPositions: c.model.n_positions, nEmbd: c.model.n_embd, nLayer: c.model.n_layer, nHead: c.model.n_head });
}

/** The plain data with what cannot cross threads: the tokenizer, the model's shape, the labelers (with the calibrated σ). */
export function completeRecipeData(c: RunConfig, plain: PlainRecipeData): RecipeData {
  const { labelerNoiseStd, ...rest } = plain;
  const b = c.data.builtin;
  const labelers = labelerNoiseStd === undefined ? [] : createLabelers(rest.rm, { count: b.labelers, seed: b.seed, noiseStd: labelerNoiseStd, blocklist: b.blocklist ?? undefined });
  return { ...rest, tok: getTokenizer(c.model.tokenizer), modelConfig: modelConfigOf(c), labelers };
}

/** The run's data, built at once (tests; a run uses {@link loadRecipeData}). */
export function recipeData(ctx: Pick<RecipeContext, "cfg">): RecipeData {
  return completeRecipeData(ctx.cfg, plainRecipeData(ctx.cfg));
}

/**
 * The run's data, built in a worker thread: building it takes seconds of CPU (tokenising every
 * task, calibrating the labelers, reading the user's files) that would otherwise stop the
 * coordinator's gRPC server answering (health, GetRun, CancelRun) meanwhile.
 */
export async function loadRecipeData(ctx: Pick<RecipeContext, "cfg">): Promise<RecipeData> {
  return completeRecipeData(ctx.cfg, await inWorker<PlainRecipeData>({ job: "recipe-data", cfg: ctx.cfg }));
}

/** The built-in data's labeler panel with noise σ (the same labelers, seeds and blocklist). */
export function labelerPanel(ctx: Pick<RecipeContext, "cfg">, data: RecipeData, noiseStd: number): SimulatedLabeler[] {
  const b = ctx.cfg.data.builtin;
  return createLabelers(data.rm, { count: b.labelers, seed: b.seed, noiseStd, blocklist: b.blocklist ?? undefined });
}

/**
 * A resumed run judges with the panel its rankings stage set (its σ is in the run's state), so
 * the evaluation after a resume uses the same labelers as an uninterrupted run.
 */
export function restoreLabelers(ctx: Pick<RecipeContext, "cfg">, data: RecipeData, state: RecipeState): void {
  if (state.labelers && data.labelers.length > 0) data.labelers = labelerPanel(ctx, data, state.labelers.noiseStd);
}

/** A demonstration as tokens: prompt, completion and EOS, or no EOS for one that never ends (a rambling demonstrator's). */
export function demonstrationTokens(data: RecipeData, t: RecipeData["sft"][number]): number[] {
  return [...data.tok.encode(t.prompt), ...data.tok.encode(t.completion), ...(t.eos === false ? [] : [data.tok.eosId])];
}
