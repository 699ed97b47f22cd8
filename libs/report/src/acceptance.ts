/**
 * What the report computes from the data: the acceptance checks, the KL summary and
 * win rates with their intervals.
 */
import { InvalidArgumentError } from "@rlhf/errors";
import { KL_METRIC, PPO_VARIANTS, type PpoVariant, type ReportData, type WinRate } from "./types";

/** Thresholds of the acceptance checks (the demo's targets: issue 15). */
export const ACCEPTANCE_THRESHOLDS = Object.freeze({
  /** Share of ranked pairs of different responses whose gold scores tie, at most. */
  goldTieShare: 0.2,
  /** The labelers' measured agreement: this, within {@link ACCEPTANCE_THRESHOLDS.labelerAgreementTolerance}. */
  labelerAgreement: 0.73,
  labelerAgreementTolerance: 0.03,
  /** Reward model held-out pairwise accuracy, at least. */
  rmHeldoutAccuracy: 0.7,
  /** PPO-ptx win rate against SFT, at least. */
  ppoPtxWinRate: 0.65,
  /** The lower end of PPO-ptx's win-rate interval (and of the reward model's accuracy interval), above. */
  chance: 0.5,
});

/** How a check compares its value with its threshold. */
export type Comparison = ">=" | ">" | "<" | "<=" | "within";

/** One acceptance check. */
export interface AcceptanceCheck {
  /** Stable id, e.g. `rm_heldout_accuracy`, `ppo_ptx_win_rate` (see {@link acceptanceChecks}). */
  readonly name: string;
  /** What it checks, for people. */
  readonly description: string;
  /** The measured value; null when the data to measure it is absent (the check then fails). */
  readonly value: number | null;
  /** What `value` is compared with; null when that is absent. */
  readonly threshold: number | null;
  /** How: `value >= threshold`, `value > threshold`, `value < threshold`, `value <= threshold`, or `within`: |value - threshold| <= tolerance. */
  readonly comparison: Comparison;
  /** For `within` only: the allowed distance from the threshold. */
  readonly tolerance?: number;
  /** False also when the check does not apply (see `not_applicable`). */
  readonly passed: boolean;
  /** Why the check does not apply to this run (its data cannot exist, e.g. a win rate without gold answers); null when it applies. */
  readonly not_applicable: string | null;
}

/** Whether every check that applies passed (`acceptance.passed` of report.json). */
export function allApplicablePassed(checks: readonly AcceptanceCheck[]): boolean {
  return checks.every((c) => c.passed || c.not_applicable !== null);
}

function compare(value: number | null, threshold: number | null, comparison: Comparison, tolerance = 0): boolean {
  if (value === null || threshold === null) return false;
  switch (comparison) {
    case ">=":
      return value >= threshold;
    case ">":
      return value > threshold;
    case "<":
      return value < threshold;
    case "<=":
      return value <= threshold;
    case "within":
      return Math.abs(value - threshold) <= tolerance + 1e-12;
  }
}

/** The per-iteration KL values of a variant (iterations without the metric are skipped). */
export function observedKl(data: ReportData, variant: PpoVariant): number[] {
  return (data.iterations?.[variant] ?? []).map((it) => it.values[KL_METRIC]).filter((v): v is number => typeof v === "number");
}

/** The KL section of report.json: the bound, what each variant reached, and whether every iteration stayed under the bound. */
export interface KlSummary {
  /** The bound, nats per sequence. */
  readonly max_mean_kl: number;
  /** Largest per-iteration mean KL of each variant that ran, nats per sequence. */
  readonly max_observed: { readonly [V in PpoVariant]?: number };
  /** True when every iteration of every variant stayed strictly under the bound (false when none was observed). */
  readonly within_bound: boolean;
}

/** Builds the KL summary; undefined when the data has no bound. */
export function klSummary(data: ReportData): KlSummary | undefined {
  if (!data.kl) return undefined;
  const maxObserved: { [V in PpoVariant]?: number } = {};
  for (const v of PPO_VARIANTS) {
    const kl = observedKl(data, v);
    if (kl.length) maxObserved[v] = Math.max(...kl);
  }
  const all = Object.values(maxObserved);
  return { max_mean_kl: data.kl.max_mean_kl, max_observed: maxObserved, within_bound: all.length > 0 && all.every((x) => x < data.kl!.max_mean_kl) };
}

/**
 * The acceptance checks, each computed from the data (absent data fails its check; a check whose
 * metric is in `data.not_applicable` does not apply, with that reason):
 * - `gold_ties`: at most 20% of the ranked pairs of different responses tie in gold;
 * - `labeler_agreement`: two labelers agree on 73% ± 3% of those pairs;
 * - `rm_learned`: the lower end of the 95% interval of the reward model's held-out accuracy is
 *   above 0.5 (a model at chance, or measured on too few pairs to tell, fails);
 * - `rm_heldout_accuracy`: its held-out pairwise accuracy >= 0.70;
 * - `ppo_ptx_win_rate`: PPO-ptx's win rate against SFT >= 0.65;
 * - `ppo_ptx_win_rate_lower_bound`: the lower end of its 95% interval > 0.5;
 * - `ppo_ptx_helpfulness_above_sft`, `ppo_ptx_exact_match_above_sft`: PPO-ptx's gold helpfulness
 *   and exact match above SFT's;
 * - `ppo_pretrain_loss_above_sft`: plain PPO's pretraining validation loss above SFT's (the
 *   alignment tax);
 * - `ptx_pretrain_loss_closer_to_sft`: |PPO-ptx - SFT| < |PPO - SFT| in that loss;
 * - `kl_within_bound`: the largest per-iteration mean KL of either variant < `kl.max_mean_kl`.
 */
export function acceptanceChecks(data: ReportData): AcceptanceCheck[] {
  const out: AcceptanceCheck[] = [];
  const T = ACCEPTANCE_THRESHOLDS;
  const add = (name: string, description: string, value: number | null, threshold: number | null, comparison: Comparison, notApplicable: string | null = null, tolerance?: number): void => {
    out.push({
      name,
      description,
      value,
      threshold,
      comparison,
      ...(tolerance !== undefined ? { tolerance } : {}),
      passed: notApplicable === null && compare(value, threshold, comparison, tolerance),
      not_applicable: notApplicable,
    });
  };
  const na = data.not_applicable ?? {};
  const rm = data.reward_model;
  const labelers = na.labeler_agreement ?? na.gold_tie_share ?? null;
  add("gold_ties", "Ranked pairs of different responses whose gold scores tie (a coin toss for any labeler)", rm?.gold_tie_share ?? null, T.goldTieShare, "<=", labelers);
  add("labeler_agreement", "Two labelers agree on the ranked pairs of different responses as often as the paper's (73%)", rm?.labeler_agreement ?? null, T.labelerAgreement, "within", labelers, T.labelerAgreementTolerance);
  const accLow = rm && rm.pairs.heldout > 0 ? winRate(Math.round(rm.heldout_accuracy * rm.pairs.heldout), 0, rm.pairs.heldout).ci95[0] : null;
  add("rm_learned", "The reward model learned: the lower end of the 95% interval of its held-out accuracy is above chance", accLow, T.chance, ">");
  add("rm_heldout_accuracy", "Reward model held-out pairwise accuracy", rm?.heldout_accuracy ?? null, T.rmHeldoutAccuracy, ">=");
  const win = data.models.ppo_ptx?.win_rate_vs_sft ?? null;
  add("ppo_ptx_win_rate", "PPO-ptx win rate against SFT", win?.rate ?? null, T.ppoPtxWinRate, ">=", na.win_rate_vs_sft ?? null);
  add("ppo_ptx_win_rate_lower_bound", "Lower end of the 95% interval of PPO-ptx's win rate against SFT", win?.ci95[0] ?? null, T.chance, ">", na.win_rate_vs_sft ?? null);
  const sft = data.models.sft;
  const ptx = data.models.ppo_ptx;
  add("ppo_ptx_helpfulness_above_sft", "PPO-ptx's gold helpfulness is above SFT's", ptx?.gold_helpfulness ?? null, sft?.gold_helpfulness ?? null, ">", na.gold_helpfulness ?? null);
  add("ppo_ptx_exact_match_above_sft", "PPO-ptx's exact match is above SFT's", ptx?.exact_match ?? null, sft?.exact_match ?? null, ">", na.exact_match ?? na.gold_helpfulness ?? null);
  add(
    "ppo_pretrain_loss_above_sft",
    "Plain PPO's pretraining validation loss is above SFT's (the alignment tax, nats/token)",
    data.models.ppo?.pretrain_validation_loss ?? null,
    sft?.pretrain_validation_loss ?? null,
    ">",
  );
  const dist = (m: "ppo" | "ppo_ptx"): number | null => {
    const loss = data.models[m]?.pretrain_validation_loss;
    return sft === undefined || loss === undefined ? null : Math.abs(loss - sft.pretrain_validation_loss);
  };
  add(
    "ptx_pretrain_loss_closer_to_sft",
    "PPO-ptx's pretraining validation loss is closer to SFT's than plain PPO's (|PPO-ptx - SFT| < |PPO - SFT|, nats/token)",
    dist("ppo_ptx"),
    dist("ppo"),
    "<",
  );
  const kl = klSummary(data);
  const observed = kl ? Object.values(kl.max_observed) : [];
  add(
    "kl_within_bound",
    "Largest per-iteration mean KL to the reference stays under the config's bound (nats/sequence)",
    observed.length ? Math.max(...observed) : null,
    kl?.max_mean_kl ?? null,
    "<",
  );
  return out;
}

function fmt(v: number, digits = 3): string {
  return Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v * 100) / 100) : v.toFixed(digits).replace(/0+$/, "").replace(/\.$/, "");
}

/**
 * Digits after the point (at least `min`) that a check's value needs so that it does not read as
 * one of its bounds when it differs from it: a held-out accuracy of 0.6997 against ">= 0.7" shows
 * as 0.6997 (failed), not 0.700 (which reads as passed).
 */
export function checkDigits(c: Pick<AcceptanceCheck, "value" | "threshold" | "tolerance" | "comparison">, min = 3): number {
  const v = c.value;
  if (v === null || c.threshold === null || !Number.isFinite(v)) return min;
  const t = c.threshold;
  const bounds = c.comparison === "within" ? [t - (c.tolerance ?? 0), t + (c.tolerance ?? 0)] : [t];
  let d = min;
  for (const b of bounds) {
    while (d < 10 && v !== b && Number(v.toFixed(d)) === Number(b.toFixed(d))) d++;
  }
  return d;
}

/** The condition a check asks for, in words: `>= 0.7`, `within 0.73 ± 0.03`. */
export function checkTarget(c: AcceptanceCheck): string {
  if (c.threshold === null) return "(no threshold)";
  if (c.comparison === "within") return `within ${fmt(c.threshold)} ± ${fmt(c.tolerance ?? 0)}`;
  return `${c.comparison} ${fmt(c.threshold)}`;
}

/**
 * A plain-language summary of the checks: how many passed and, for each that did not, what was
 * measured against what it needed (or why it could not be measured), and which did not apply.
 */
export function acceptanceSummary(checks: readonly AcceptanceCheck[]): string {
  const applicable = checks.filter((c) => c.not_applicable === null);
  const failed = applicable.filter((c) => !c.passed);
  const head = failed.length === 0 ? `All ${applicable.length} checks that apply passed.` : `${applicable.length - failed.length} of ${applicable.length} checks passed.`;
  const why = failed.map((c) => (c.value === null ? `${c.description}: not measured in this run` : `${c.description}: ${fmt(c.value, checkDigits(c))}, needed ${checkTarget(c)}`));
  const skipped = checks.filter((c) => c.not_applicable !== null).map((c) => `${c.name} (${c.not_applicable})`);
  return [head, ...(why.length ? [`Not met — ${why.join("; ")}.`] : []), ...(skipped.length ? [`Not applicable: ${skipped.join("; ")}.`] : [])].join(" ");
}

/**
 * A win rate with its 95% Wilson score interval: rate = (wins + ties/2) / comparisons. Ties
 * count as half a win in the interval too. Throws on counts that are not integers >= 0 or that
 * do not fit in `comparisons`.
 */
export function winRate(wins: number, ties: number, comparisons: number): WinRate {
  for (const [k, v] of [["wins", wins], ["ties", ties], ["comparisons", comparisons]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new InvalidArgumentError(k, `must be an integer >= 0, got ${v}`);
  }
  if (comparisons === 0) throw new InvalidArgumentError("comparisons", "must be > 0");
  if (wins + ties > comparisons) throw new InvalidArgumentError("wins", `wins + ties (${wins + ties}) exceed comparisons (${comparisons})`);
  const n = comparisons;
  const p = (wins + ties / 2) / n;
  const z = 1.959963984540054;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denom;
  // At p = 0 or 1 the bound is exactly 0 or 1; rounding would leave 1e-16 off.
  const low = p === 0 ? 0 : Math.max(0, centre - half);
  const high = p === 1 ? 1 : Math.min(1, centre + half);
  return { rate: p, comparisons: n, ci95: [low, high] };
}
