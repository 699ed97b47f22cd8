/**
 * What the report computes from the data: the acceptance checks, the KL summary and
 * win rates with their intervals.
 */
import { InvalidArgumentError } from "@rlhf/errors";
import { KL_METRIC, PPO_VARIANTS, type PpoVariant, type ReportData, type WinRate } from "./types";

/** Thresholds of the acceptance checks (issue 6). */
export const ACCEPTANCE_THRESHOLDS = Object.freeze({
  /** Reward model held-out pairwise accuracy, at least. */
  rmHeldoutAccuracy: 0.65,
  /** PPO-ptx win rate against SFT, at least. */
  ppoPtxWinRate: 0.6,
});

/** One acceptance check. */
export interface AcceptanceCheck {
  /** Stable id: `rm_heldout_accuracy`, `ppo_ptx_win_rate`, `ptx_pretrain_loss_closer_to_sft`, `kl_within_bound`. */
  readonly name: string;
  /** What it checks, for people. */
  readonly description: string;
  /** The measured value; null when the data to measure it is absent (the check then fails). */
  readonly value: number | null;
  /** What `value` is compared with; null when that is absent. */
  readonly threshold: number | null;
  /** How: `value >= threshold`, `value < threshold`. */
  readonly comparison: ">=" | "<";
  /** False also when the check does not apply (see `not_applicable`). */
  readonly passed: boolean;
  /** Why the check does not apply to this run (its data cannot exist, e.g. a win rate without gold answers); null when it applies. */
  readonly not_applicable: string | null;
}

/** Whether every check that applies passed (`acceptance.passed` of report.json). */
export function allApplicablePassed(checks: readonly AcceptanceCheck[]): boolean {
  return checks.every((c) => c.passed || c.not_applicable !== null);
}

function compare(value: number | null, threshold: number | null, comparison: ">=" | "<"): boolean {
  if (value === null || threshold === null) return false;
  return comparison === ">=" ? value >= threshold : value < threshold;
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
 * The acceptance checks, each computed from the data (absent data fails its check; a
 * check whose metric is in `data.not_applicable` does not apply, with that reason):
 * - `rm_heldout_accuracy`: the reward model's held-out pairwise accuracy >= 0.65;
 * - `ppo_ptx_win_rate`: PPO-ptx's win rate against SFT >= 0.60;
 * - `ptx_pretrain_loss_closer_to_sft`: |PPO-ptx - SFT| < |PPO - SFT| in pretraining validation
 *   loss (value: PPO-ptx's distance; threshold: plain PPO's);
 * - `kl_within_bound`: the largest per-iteration mean KL of either variant < `kl.max_mean_kl`.
 */
export function acceptanceChecks(data: ReportData): AcceptanceCheck[] {
  const out: AcceptanceCheck[] = [];
  const add = (name: string, description: string, value: number | null, threshold: number | null, comparison: ">=" | "<", notApplicable: string | null = null): void => {
    out.push({ name, description, value, threshold, comparison, passed: notApplicable === null && compare(value, threshold, comparison), not_applicable: notApplicable });
  };
  add(
    "rm_heldout_accuracy",
    "Reward model held-out pairwise accuracy",
    data.reward_model?.heldout_accuracy ?? null,
    ACCEPTANCE_THRESHOLDS.rmHeldoutAccuracy,
    ">=",
  );
  add("ppo_ptx_win_rate", "PPO-ptx win rate against SFT", data.models.ppo_ptx?.win_rate_vs_sft?.rate ?? null, ACCEPTANCE_THRESHOLDS.ppoPtxWinRate, ">=", data.not_applicable?.win_rate_vs_sft ?? null);
  const sft = data.models.sft?.pretrain_validation_loss;
  const dist = (m: "ppo" | "ppo_ptx"): number | null => {
    const loss = data.models[m]?.pretrain_validation_loss;
    return sft === undefined || loss === undefined ? null : Math.abs(loss - sft);
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
