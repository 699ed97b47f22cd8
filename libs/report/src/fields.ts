/**
 * Documentation of every report.json field: REPORT_JSON_FIELDS is the source, REPORT.md its
 * rendering (`pnpm --filter @rlhf/report run docs`); tests keep both equal to what reportJson
 * writes.
 */

/** One field of report.json. */
export interface ReportField {
  /** Path: `.` between keys, `[]` for array items, `<model>`/`<variant>`/`<stage>`/`<metric>` for keys that vary. */
  readonly path: string;
  readonly type: string;
  /** Unit, or "" when it has none. */
  readonly unit: string;
  readonly meaning: string;
}

const f = (path: string, type: string, unit: string, meaning: string): ReportField => Object.freeze({ path, type, unit, meaning });

/** Every field of report.json, in file order. */
export const REPORT_JSON_FIELDS: readonly ReportField[] = Object.freeze([
  f("schema_version", "integer", "", "Layout version of report.json (3; version 2 had no exact match, gold-tie share, loss curves or pretraining-cache flag; version 1 also no nulls in the gold-answer and labeler metrics and no not_applicable)."),
  f("run", "object", "", "Which run this is."),
  f("run.id", "string", "", "Run id."),
  f("run.created", "string", "ISO 8601, UTC", "When the run was created."),
  f("run.finished", "string | null", "ISO 8601, UTC", "When the run finished; null while unfinished."),
  f("run.config", "object", "", "The resolved run config, every default filled in (see CONFIG.md of @rlhf/run-config)."),
  f("run.elapsed_ms", "object", "", "Wall-clock time per stage; stages that did not run are absent."),
  f("run.elapsed_ms.<stage>", "number", "ms", "Time spent in a stage: pretrain, sft, rankings, reward_model, ppo (both variants), evaluation."),
  f("run.backend", "string", "", "Compute backend of the model services (tensorflow-gpu, tensorflow, torch, wasm or cpu)."),
  f("run.compute", "string", "", "What the figures depend on besides weights and seeds, as the policy service reports it (GetInfo's backend_detail): for torch, libtorch's version, threads, device and CPU kernels (portable: the same bits on every x86-64 machine with AVX2; see docs/compute-backends.md). Absent when the service did not say."),
  f("run.pretrain_from_cache", "boolean", "", "Whether the base model came from the pretraining cache (`<runs dir>/pretrain-cache/`; then elapsed_ms.pretrain is only the loading); absent when the cache was not used."),
  f("not_applicable", "object", "", "Metrics that do not apply to this run, and why (a run on your own data has no gold answers and no simulated labelers); their values are null. Absent on the built-in data."),
  f("not_applicable.<metric>", "string", "", "Why a metric does not apply: win_rate_vs_sft, gold_helpfulness, exact_match, hallucination_rate, blocklist_rate, labeler_agreement, gold_tie_share."),
  f("acceptance", "object", "", "The acceptance checks of the recipe, computed by the report from the fields below."),
  f("acceptance.passed", "boolean", "", "True when every check that applies passed."),
  f("acceptance.summary", "string", "", "The checks in one plain paragraph: how many passed, what each failed one measured against what it needed, which did not apply and why."),
  f(
    "acceptance.checks[]",
    "array",
    "",
    "One entry per check: gold_ties, labeler_agreement, rm_learned, rm_heldout_accuracy, ppo_ptx_win_rate, ppo_ptx_win_rate_lower_bound, ppo_ptx_helpfulness_above_sft, ppo_ptx_exact_match_above_sft, ppo_pretrain_loss_above_sft, ptx_pretrain_loss_closer_to_sft, kl_within_bound.",
  ),
  f("acceptance.checks[].name", "string", "", "Stable id of the check."),
  f("acceptance.checks[].description", "string", "", "What it checks, for people."),
  f("acceptance.checks[].value", "number | null", "as the check", "Measured value (shares, accuracies, win rates and their interval ends: fractions; helpfulness 0..1; losses and their distances: nats/token; KL: nats/sequence); null when its data is absent."),
  f("acceptance.checks[].threshold", "number | null", "as value", "What value is compared with (0.20; 0.73; 0.5; 0.70; 0.65; 0.5; SFT's helpfulness, exact match and pretraining loss; plain PPO's loss distance to SFT; ppo.kl.max_mean_kl); null when absent."),
  f("acceptance.checks[].comparison", "\">=\" | \">\" | \"<\" | \"<=\" | \"within\"", "", "How value is compared with threshold (within: |value - threshold| <= tolerance)."),
  f("acceptance.checks[].tolerance", "number", "as value", "For comparison within only: the allowed distance (0.03 for the labeler agreement)."),
  f("acceptance.checks[].passed", "boolean", "", "Whether the check passed; a check whose value or threshold is null fails, unless it does not apply."),
  f("acceptance.checks[].not_applicable", "string | null", "", "Why the check does not apply to this run (e.g. the win rate without gold answers); null when it applies. A check that does not apply is not passed, and does not fail acceptance.passed."),
  f("models", "object", "", "Evaluation on held-out prompts per model: base, sft, ppo (plain PPO, ptx gamma 0), ppo_ptx; models not trained are absent."),
  f("models.<model>", "object", "", "One model's evaluation."),
  f("models.<model>.win_rate_vs_sft", "object | null", "", "Pairwise comparisons against SFT's response to the same prompt, judged by the simulated labelers; null for SFT itself, and without gold answers (see not_applicable)."),
  f("models.<model>.win_rate_vs_sft.rate", "number", "fraction, 0..1", "(wins + ties / 2) / comparisons."),
  f("models.<model>.win_rate_vs_sft.comparisons", "integer", "comparisons", "Comparisons judged."),
  f("models.<model>.win_rate_vs_sft.ci95", "[number, number]", "fraction, 0..1", "95% Wilson score interval of rate: [low, high]."),
  f("models.<model>.gold_helpfulness", "number | null", "0..1", "Mean agreement of the response with the gold answer (noiseless gold scorer); null without gold answers."),
  f("models.<model>.exact_match", "number | null", "fraction of responses", "Responses exactly the gold answer (after trimming); null without gold answers."),
  f("models.<model>.hallucination_rate", "number | null", "fraction of responses", "Responses with a word that is not in the source sentence; null without gold answers."),
  f("models.<model>.blocklist_rate", "number | null", "fraction of responses", "Responses with a word from the labelers' blocklist; null without gold answers."),
  f("models.<model>.pretrain_validation_loss", "number", "nats per token", "Language-model loss on held-out pretraining text (the alignment tax shows here)."),
  f("models.<model>.mean_response_tokens", "number", "tokens", "Mean response length."),
  f("models.<model>.eos_rate", "number", "fraction of responses", "Responses that ended with EOS instead of being cut at max_new_tokens."),
  f("models.<model>.by_family", "object", "", "The gold measures per task family of the held-out prompts (built-in data only; absent otherwise): where a model gains or loses against SFT."),
  f("models.<model>.by_family.<family>", "object", "", "One family's measures (e.g. count_words)."),
  f("models.<model>.by_family.<family>.prompts", "integer", "prompts", "Held-out prompts of the family."),
  f("models.<model>.by_family.<family>.win_rate_vs_sft", "number | null", "fraction, 0..1", "(wins + ties / 2) / prompts against SFT's answers to the family's prompts; null for SFT."),
  f("models.<model>.by_family.<family>.same_as_sft", "number | null", "fraction of responses", "Answers identical to SFT's (after trimming): a tie for every labeler; null for SFT."),
  f("models.<model>.by_family.<family>.gold_helpfulness", "number", "0..1", "Mean gold helpfulness on the family's prompts."),
  f("models.<model>.by_family.<family>.exact_match", "number", "fraction of responses", "Answers exactly the gold answer."),
  f("models.<model>.by_family.<family>.hallucination_rate", "number", "fraction of responses", "Answers with a word that is not in the source."),
  f("reward_model", "object", "", "The reward model's evaluation; absent when it was not trained."),
  f("reward_model.heldout_accuracy", "number", "fraction of pairs", "Held-out pairs the reward model orders as the labeler did (with a rankings file: as the file does)."),
  f("reward_model.labeler_agreement", "number | null", "fraction of pairs", "How often two simulated labelers agreed on the ranked pairs of different responses (measured on the rankings stage's groups): the yardstick the paper compares the accuracy with (a model of the noiseless preference can exceed it); null when the rankings came from a file."),
  f("reward_model.gold_tie_share", "number | null", "fraction of pairs", "Ranked pairs of different responses whose gold scores tie: a coin toss for any labeler; null when the rankings came from a file."),
  f("reward_model.train_loss", "number", "nats per pair", "Ranking loss -log sigmoid(r_w - r_l) at the end of training."),
  f("reward_model.pairs", "object", "", "Comparison pairs used."),
  f("reward_model.pairs.train", "integer", "pairs", "Pairs trained on (all C(K,2) pairs of each training prompt, ties left out)."),
  f("reward_model.pairs.heldout", "integer", "pairs", "Pairs the accuracy is measured on."),
  f("kl", "object", "", "KL to the reference (SFT) model against the config's bound; absent when PPO did not run."),
  f("kl.max_mean_kl", "number", "nats per sequence", "The bound (ppo.kl.max_mean_kl)."),
  f("kl.max_observed", "object", "", "Largest per-iteration mean KL of each variant."),
  f("kl.max_observed.<variant>", "number", "nats per sequence", "Largest objective/kl over the variant's iterations (ppo, ppo_ptx)."),
  f("kl.within_bound", "boolean", "", "Every iteration of every variant stayed strictly under the bound (false when nothing was observed)."),
  f("iterations", "object", "", "Per-iteration metrics of each PPO variant (ppo, ppo_ptx)."),
  f("iterations.<variant>[]", "array", "", "One entry per PPO iteration, in order."),
  f("iterations.<variant>[].iteration", "integer", "iterations", "1-based iteration."),
  f("iterations.<variant>[].values", "object", "", "Metrics of the iteration by namespaced name (table below)."),
  f("iterations.<variant>[].values.<metric>", "number", "per metric", "One metric's value; durations end in _ms."),
  f("samples[]", "array", "", "Held-out prompts with each model's response side by side; absent when none were kept."),
  f("samples[].prompt", "string", "", "The prompt."),
  f("samples[].gold", "string | null", "", "The gold answer, when the data has one."),
  f("samples[].responses", "object", "", "Responses by model."),
  f("samples[].responses.<model>", "string", "", "The model's response (decoded, EOS dropped)."),
  f("curves", "object", "", "Training-loss curves of the stages before PPO; absent when none was recorded."),
  f("curves.<stage>[]", "array", "", "[optimizer step, loss] points of pretrain and sft (LM loss, nats/token) and reward_model (ranking loss, nats/pair; ln 2 is chance)."),
  f("timeline[]", "array", "", "Spans of one traced PPO iteration (the PPO-ptx one whose trace has spans from the most services, the latest of those), in tree order: the root `ppo.iteration`, its phases, and under each phase the server spans of the calls it made (gRPC client spans left out). From the coordinator's memory and the run folder's traces.jsonl; absent when no iteration was traced."),
  f("timeline[].name", "string", "", "Span name: `ppo.iteration`, a phase (`ppo.generate`, `ppo.score`, `ppo.reference_logprobs`, `ppo.evaluate`, `ppo.advantages`, `ppo.update`, `ppo.ptx_gradients`, `ppo.checkpoint`) or an RPC (`grpc.rlhf.policy.v1.PolicyService/Generate`)."),
  f("timeline[].service", "string", "", "Service that recorded the span (its OTEL_SERVICE_NAME)."),
  f("timeline[].startMs", "number", "ms", "Start, after the iteration's root span started (span start times have millisecond resolution)."),
  f("timeline[].durationMs", "number", "ms", "Duration."),
  f("timeline[].depth", "integer", "", "0 for the root span, 1 for its children, ..."),
  f("timeline[].attributes", "object", "", "The span's `rlhf.*` attributes; absent when it has none."),
  f("timeline[].attributes.<name>", "string | number | boolean", "per attribute", "rlhf.iteration (1-based), rlhf.variant (ppo_ptx, ppo), rlhf.batch_size (prompts), rlhf.response_tokens, rlhf.weights_version (policy version at the start) and rlhf.weights_version_after on the root; rlhf.sequences, rlhf.tokens, rlhf.epoch, rlhf.minibatch, rlhf.weights_version on phases and server spans (rlhf.run_id is left out: it is run.id)."),
]);

/** The per-iteration metrics the report plots (others are plotted under "Other metrics"). */
export const REPORT_ITERATION_METRICS: readonly ReportField[] = Object.freeze([
  f("objective/score", "number", "reward", "Mean reward-model score of the rollout batch (normalised so that demonstrations average 0), without the missing-EOS penalty."),
  f("gold/score", "number", "gold score", "Mean noiseless gold score of the same rollouts (built-in data): what the labelers, and so the reward model, stand for; plotted against objective/kl with objective/score as the over-optimisation curve."),
  f("objective/missing_eos_fraction", "number", "fraction of rollouts", "Rollouts cut at max_new_tokens without EOS; each gets ppo.missing_eos_penalty added to its score."),
  f("objective/reward", "number", "reward", "Mean sequence reward before the KL penalty: the reward-model score plus the missing-EOS penalty (under Other metrics)."),
  f("objective/kl", "number", "nats per sequence", "k1 = log pi_RL - log pi_SFT summed over response tokens, mean over sequences; checked against kl.max_mean_kl."),
  f("objective/beta", "number", "reward per nat", "KL coefficient used in the iteration."),
  f("loss/policy", "number", "", "PPO clipped policy loss, mean over the iteration's minibatches."),
  f("loss/value", "number", "", "Clipped value loss, mean over the minibatches."),
  f("ptx/loss", "number", "nats per token", "Language-model loss on the pretraining windows mixed in (PPO-ptx only; not multiplied by gamma)."),
  f("policy/clip_fraction", "number", "fraction of tokens", "Tokens whose probability ratio was clipped."),
  f("policy/approx_kl", "number", "nats per token", "Approximate KL between the policy before and after the update."),
  f("timing/<phase>_ms", "number", "ms", "Wall-clock time of a phase of the iteration (generate, score, update, ...)."),
]);

function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

function table(rows: readonly ReportField[], first: string): string {
  return [`| ${first} | type | unit | meaning |`, "|---|---|---|---|", ...rows.map((r) => `| \`${cell(r.path)}\` | ${cell(r.type)} | ${cell(r.unit)} | ${cell(r.meaning)} |`)].join("\n");
}

/** REPORT_JSON_FIELDS as a markdown table `path | type | unit | meaning`, then the plotted iteration metrics. */
export function reportFieldsMarkdown(): string {
  return `${table(REPORT_JSON_FIELDS, "path")}\n\nPer-iteration metrics the report plots (\`iterations.<variant>[].values\`):\n\n${table(REPORT_ITERATION_METRICS, "metric")}\n`;
}

/** The whole of REPORT.md. */
export function reportFieldsDocument(): string {
  return [
    "# report.json",
    "",
    "<!-- Generated by `pnpm --filter @rlhf/report run docs` from libs/report/src/fields.ts; do not edit. -->",
    "",
    "Every run writes `report.json` and `report.html` (one self-contained page: Chart.js and the",
    "styles are inlined, it opens offline) into its run folder. Sections whose data is absent are",
    "left out of both. Rates are fractions in 0..1; losses are in nats.",
    "",
    reportFieldsMarkdown(),
  ].join("\n");
}
