/**
 * Simulated labelers. A labeler perceives score(x, y) + σ·z, where score combines the three axes
 * ({@link combineScores}) and z is a standard normal fixed by (labeler, prompt, response): the
 * same labeler judges the same response the same way whatever the call order (so sharding a
 * batch across replicas does not change rankings), identical responses get identical perceived
 * scores and are reported as ties, and two labelers' noises are independent.
 *
 * Two labelers agree on a pair with score difference d with probability p² + (1−p)², where
 * p = Φ(d / (σ√2)); σ is calibrated so that the mean over a distribution of pairs is the target
 * (default 0.73, the paper's inter-labeler agreement).
 */
import { InvalidArgumentError } from "@rlhf/errors";
import { simulateResponses } from "./responses";
import { Rng, hashedNormal } from "./rng";
import { type ScoreWeights, type ScoringOptions, goldScore, rankScores, scoreResponse, combineScores } from "./scoring";
import { DEFAULT_BLOCKLIST, type InstructionTask } from "./tasks";
import { canonicalResponse } from "./words";

/** The paper's inter-labeler agreement on comparisons: 0.73. */
export const DEFAULT_LABELER_AGREEMENT = 0.73;

/** Options of one {@link SimulatedLabeler}. */
export interface LabelerOptions {
  /** The labeler's number; with `seed` it fixes the labeler's noise. */
  id: number;
  /** Seed of the panel (default 0). */
  seed?: number;
  /** σ of the perceived-score noise (>= 0; see {@link calibrateNoiseStd}). */
  noiseStd: number;
  /** Axis weights (default {@link DEFAULT_SCORE_WEIGHTS}). */
  weights?: Partial<ScoreWeights>;
  /** Harmful words (default {@link DEFAULT_BLOCKLIST}). */
  blocklist?: readonly string[];
}

/** A simulated human labeler with its own noise. */
export class SimulatedLabeler {
  /** The labeler's number within its panel. */
  readonly id: number;
  /** The panel seed (with `id`, fixes this labeler's noise). */
  readonly seed: number;
  /** σ of this labeler's perceived-score noise. */
  readonly noiseStd: number;
  /** Axis weights of the noiseless score. */
  readonly weights: Partial<ScoreWeights>;
  /** Harmful words. */
  readonly blocklist: readonly string[];
  private readonly scoring: ScoringOptions;

  constructor(opts: LabelerOptions) {
    if (!Number.isSafeInteger(opts.id)) throw new InvalidArgumentError("id", `must be an integer, got ${opts.id}`);
    if (!(opts.noiseStd >= 0) || !Number.isFinite(opts.noiseStd)) throw new InvalidArgumentError("noiseStd", `must be a finite number >= 0, got ${opts.noiseStd}`);
    this.id = opts.id;
    this.seed = opts.seed ?? 0;
    this.noiseStd = opts.noiseStd;
    this.weights = opts.weights ?? {};
    this.blocklist = opts.blocklist ?? DEFAULT_BLOCKLIST;
    this.scoring = { blocklist: this.blocklist };
  }

  /** The score this labeler perceives (noiseless score + its noise for this prompt and response). */
  perceivedScore(task: InstructionTask, response: string): number {
    const base = combineScores(scoreResponse(task, response, this.scoring), this.weights);
    if (this.noiseStd === 0) return base;
    return base + this.noiseStd * hashedNormal(this.seed, "labeler", this.id, task.prompt, canonicalResponse(response));
  }

  /**
   * Ranks K responses: `ranking[i]` = number of responses this labeler prefers to response i
   * (0 = best); identical responses (after trimming and collapsing whitespace) tie.
   */
  rank(task: InstructionTask, responses: readonly string[]): number[] {
    return rankScores(responses.map((r) => this.perceivedScore(task, r)));
  }

  /** 1 if this labeler prefers `a`, -1 if `b`, 0 for a tie (identical responses). */
  compare(task: InstructionTask, a: string, b: string): 1 | 0 | -1 {
    const d = this.perceivedScore(task, a) - this.perceivedScore(task, b);
    return d > 0 ? 1 : d < 0 ? -1 : 0;
  }
}

/** Standard normal CDF (erfc by the Numerical Recipes Chebyshev fit, |error| < 1.2e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const erfc =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/**
 * Expected agreement of two independent labelers with noise σ over pairs whose noiseless score
 * differences are `scoreDiffs`: mean of p² + (1−p)², p = Φ(d / (σ√2)). With σ = 0 labelers are
 * exact (equal scores tie for both: agreement 1).
 */
export function expectedAgreement(scoreDiffs: readonly number[], noiseStd: number): number {
  if (scoreDiffs.length === 0) throw new InvalidArgumentError("scoreDiffs", "needs at least one pair");
  let sum = 0;
  for (const d of scoreDiffs) {
    if (noiseStd === 0) {
      sum += 1;
      continue;
    }
    const p = normalCdf(d / (noiseStd * Math.SQRT2));
    sum += p * p + (1 - p) * (1 - p);
  }
  return sum / scoreDiffs.length;
}

/** The smallest σ calibration tries: {@link maxAgreement} is the agreement there. */
const MIN_NOISE_STD = 1e-6;

/**
 * The most two noisy labelers can agree on pairs with these score differences (σ → 0): pairs
 * with different scores always agree, pairs with equal scores are a coin toss.
 */
export function maxAgreement(scoreDiffs: readonly number[]): number {
  return expectedAgreement(scoreDiffs, MIN_NOISE_STD);
}

/**
 * The σ at which two labelers agree on `targetAgreement` of the pairs with these score
 * differences (bisection on log σ; agreement falls from its σ→0 limit to 0.5 as σ grows).
 * Throws InvalidArgumentError when the target is outside (0.5, that limit).
 */
export function calibrateNoiseStd(scoreDiffs: readonly number[], targetAgreement: number = DEFAULT_LABELER_AGREEMENT): number {
  if (!(targetAgreement > 0.5 && targetAgreement < 1)) throw new InvalidArgumentError("agreement", `must be in (0.5, 1), got ${targetAgreement}`);
  let lo = MIN_NOISE_STD;
  let hi = 1e3;
  const top = maxAgreement(scoreDiffs);
  if (targetAgreement >= top) {
    throw new InvalidArgumentError("agreement", `${targetAgreement} is unreachable: pairs with equal scores cap agreement at ${top.toFixed(4)} for these responses`);
  }
  for (let i = 0; i < 100; i++) {
    const mid = Math.sqrt(lo * hi);
    if (expectedAgreement(scoreDiffs, mid) > targetAgreement) lo = mid;
    else hi = mid;
  }
  return Math.sqrt(lo * hi);
}

/** Options of {@link simulatedScoreDiffs}. */
export interface ScoreDiffOptions extends ScoringOptions {
  /** Number of random response pairs (default 4000). */
  pairs?: number;
  /** Seed (default 0). */
  seed?: number;
  weights?: Partial<ScoreWeights>;
}

/**
 * Noiseless score differences of random pairs of distinct simulated responses
 * ({@link simulateResponses}) to random tasks: the distribution the default calibration uses.
 */
export function simulatedScoreDiffs(tasks: readonly InstructionTask[], opts: ScoreDiffOptions = {}): number[] {
  if (tasks.length === 0) throw new InvalidArgumentError("tasks", "needs at least one task");
  const rng = new Rng(opts.seed ?? 0, "score-diffs");
  const out: number[] = [];
  for (let i = 0, n = opts.pairs ?? 4000; i < n; i++) {
    const task = rng.pick(tasks);
    const [a, b] = simulateResponses(task, 2, rng, { blocklist: opts.blocklist });
    out.push(goldScore(task, a, opts) - goldScore(task, b, opts));
  }
  return out;
}

/** Responses to one task, as labelers rank them together. */
export interface ResponseGroup {
  readonly task: InstructionTask;
  readonly responses: readonly string[];
}

/**
 * Noiseless score differences of every pair of distinct responses within each group: the pairs a
 * labeler orders when it ranks these groups, for calibrating the noise on them. Identical
 * responses (after trimming and collapsing whitespace) are left out: every labeler ties them.
 */
export function groupScoreDiffs(groups: readonly ResponseGroup[], opts: ScoringOptions & { weights?: Partial<ScoreWeights> } = {}): number[] {
  const out: number[] = [];
  for (const g of groups) {
    const seen = new Map<string, number>();
    for (const r of g.responses) {
      const key = canonicalResponse(r);
      if (!seen.has(key)) seen.set(key, goldScore(g.task, r, opts));
    }
    const scores = [...seen.values()];
    for (let i = 0; i < scores.length; i++) for (let j = i + 1; j < scores.length; j++) out.push(scores[i] - scores[j]);
  }
  return out;
}

/** Result of {@link calibrateOnGroups}. */
export interface GroupCalibration {
  /** The calibrated σ. */
  readonly noiseStd: number;
  /**
   * "all": every pair of different responses; "different_scores": only those whose gold scores
   * differ, because equal scores made the target unreachable on all of them.
   */
  readonly on: "all" | "different_scores";
  /** Pairs of different responses in the groups. */
  readonly pairs: number;
  /** Of those, pairs whose gold scores are equal. */
  readonly equalScorePairs: number;
}

/**
 * The σ at which two labelers agree on `targetAgreement` of the pairs of different responses in
 * these groups (what they rank). Different responses with equal gold scores are a coin toss for
 * any noisy labeler, so when they are too many to reach the target, σ is calibrated on the pairs
 * whose scores differ. Undefined when no pair has different scores (nothing to calibrate on).
 */
export function calibrateOnGroups(
  groups: readonly ResponseGroup[],
  targetAgreement: number = DEFAULT_LABELER_AGREEMENT,
  opts: ScoringOptions & { weights?: Partial<ScoreWeights> } = {},
): GroupCalibration | undefined {
  const diffs = groupScoreDiffs(groups, opts);
  const scored = diffs.filter((d) => d !== 0);
  if (scored.length === 0) return undefined;
  const all = maxAgreement(diffs) > targetAgreement;
  return { noiseStd: calibrateNoiseStd(all ? diffs : scored, targetAgreement), on: all ? "all" : "different_scores", pairs: diffs.length, equalScorePairs: diffs.length - scored.length };
}

/**
 * How often two labelers of a panel agree on the pairs of distinct responses within each group
 * (identical responses, which both tie, are left out): group i is ranked by labeler i mod L and
 * by labeler (i + 1) mod L; a panel of one is compared with a second labeler of its σ.
 */
export function measuredAgreement(groups: readonly ResponseGroup[], labelers: readonly SimulatedLabeler[]): { agree: number; pairs: number } {
  if (labelers.length === 0) throw new InvalidArgumentError("labelers", "needs at least one labeler");
  const first = labelers[0];
  const others = labelers.length > 1 ? labelers : [first, new SimulatedLabeler({ id: first.id + 1, seed: first.seed, noiseStd: first.noiseStd, weights: first.weights, blocklist: first.blocklist })];
  let agree = 0;
  let pairs = 0;
  groups.forEach((g, i) => {
    const keys = g.responses.map(canonicalResponse);
    const r = pairwiseAgreement(others[i % others.length].rank(g.task, g.responses), others[(i + 1) % others.length].rank(g.task, g.responses), (x, y) => keys[x] !== keys[y]);
    agree += r.agree;
    pairs += r.pairs;
  });
  return { agree, pairs };
}

/** Options of {@link createLabelers}. */
export interface LabelerPanelOptions {
  /** Number of labelers (default 4). */
  count?: number;
  /** Target pairwise agreement between two labelers (default {@link DEFAULT_LABELER_AGREEMENT}). */
  agreement?: number;
  /** Seed of the panel's noise and of the calibration pairs (default 0). */
  seed?: number;
  /** σ for every labeler; when given, no calibration is done. */
  noiseStd?: number;
  /** Pairs used for calibration (default: {@link simulatedScoreDiffs} of `tasks`, 4000 pairs). */
  calibrationDiffs?: readonly number[];
  weights?: Partial<ScoreWeights>;
  blocklist?: readonly string[];
}

/**
 * A panel of labelers sharing one σ (each with its own independent noise), calibrated so that
 * any two agree on `agreement` of random pairs of simulated responses to `tasks`. Agreement
 * depends on how different the responses are: for responses from another source (a policy),
 * pass `calibrationDiffs` from those.
 */
export function createLabelers(tasks: readonly InstructionTask[], opts: LabelerPanelOptions = {}): SimulatedLabeler[] {
  const count = opts.count ?? 4;
  if (!Number.isInteger(count) || count < 1) throw new InvalidArgumentError("count", `must be a positive integer, got ${count}`);
  const seed = opts.seed ?? 0;
  const noiseStd =
    opts.noiseStd ??
    calibrateNoiseStd(opts.calibrationDiffs ?? simulatedScoreDiffs(tasks, { seed, blocklist: opts.blocklist, weights: opts.weights }), opts.agreement ?? DEFAULT_LABELER_AGREEMENT);
  return Array.from({ length: count }, (_, id) => new SimulatedLabeler({ id, seed, noiseStd, weights: opts.weights, blocklist: opts.blocklist }));
}

/**
 * How often two rankings of the same responses agree on a pair: over all pairs i < j (those
 * `counts(i, j)` accepts, when given), both prefer i, both prefer j, or both tie.
 */
export function pairwiseAgreement(a: readonly number[], b: readonly number[], counts?: (i: number, j: number) => boolean): { agree: number; pairs: number } {
  if (a.length !== b.length) throw new InvalidArgumentError("b", `length ${b.length} differs from ${a.length}`);
  let agree = 0;
  let pairs = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = i + 1; j < a.length; j++) {
      if (counts && !counts(i, j)) continue;
      pairs++;
      if (Math.sign(a[i] - a[j]) === Math.sign(b[i] - b[j])) agree++;
    }
  }
  return { agree, pairs };
}

/** Result of {@link winRate}. */
export interface WinRate {
  readonly wins: number;
  readonly losses: number;
  readonly ties: number;
  /** (wins + ties/2) / n: how often model A's response is preferred to model B's. */
  readonly winRate: number;
}

/**
 * How often labelers prefer model A's response to model B's on the same prompts (the paper's
 * headline metric): prompt i is judged by labeler i mod L.
 */
export function winRate(tasks: readonly InstructionTask[], responsesA: readonly string[], responsesB: readonly string[], labelers: readonly SimulatedLabeler[]): WinRate {
  if (responsesA.length !== tasks.length) throw new InvalidArgumentError("responsesA", `expected ${tasks.length} responses, got ${responsesA.length}`);
  if (responsesB.length !== tasks.length) throw new InvalidArgumentError("responsesB", `expected ${tasks.length} responses, got ${responsesB.length}`);
  if (labelers.length === 0) throw new InvalidArgumentError("labelers", "needs at least one labeler");
  let wins = 0;
  let losses = 0;
  let ties = 0;
  for (let i = 0; i < tasks.length; i++) {
    const c = labelers[i % labelers.length].compare(tasks[i], responsesA[i], responsesB[i]);
    if (c > 0) wins++;
    else if (c < 0) losses++;
    else ties++;
  }
  return { wins, losses, ties, winRate: tasks.length ? (wins + ties / 2) / tasks.length : 0.5 };
}
