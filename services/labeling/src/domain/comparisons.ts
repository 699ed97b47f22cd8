/**
 * The labeling domain without storage or transport: what a batch and a ranking may hold (limits
 * with messages naming the field), how an ordering with ties becomes a ranking, and the paper's
 * agreement metric over labelers who ranked the same comparisons.
 */
import { createHash } from "node:crypto";
import { InvalidArgumentError } from "@rlhf/errors";
import { canonicalResponse, pairwiseAgreement } from "@rlhf/data";

/** Fewest responses per comparison. */
export const MIN_RESPONSES = 2;
/** Most responses per comparison: the reward model's K limit (the paper used 4..9). */
export const MAX_RESPONSES = 16;
/** Most characters of a comparison key. */
export const MAX_KEY_CHARS = 128;
/** Most characters of a batch's source text. */
export const MAX_SOURCE_CHARS = 256;
/** Lowest and highest quality score (the paper's 1..7 Likert scale). */
export const MIN_SCORE = 1;
export const MAX_SCORE = 7;
/** Batch ids: 1..64 of [A-Za-z0-9._:-]. */
export const BATCH_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/** Limits a deployment may tune (GetInfo reports them). */
export interface Limits {
  /** Most characters of a prompt or of one response. Default 8,000. */
  maxTextChars: number;
  /** Most comparisons in one batch. Default 10,000. */
  maxBatchComparisons: number;
}

export const DEFAULT_LIMITS: Limits = { maxTextChars: 8000, maxBatchComparisons: 10_000 };

/** One prompt with the responses to rank. */
export interface ComparisonInput {
  key: string;
  prompt: string;
  responses: string[];
}

/** A batch as a client submits it. */
export interface BatchInput {
  batchId: string;
  comparisons: ComparisonInput[];
  /** Share of comparisons that go to two labelers, [0, 1]. */
  overlapFraction: number;
  source: string;
}

/** The paper's per-response flags. */
export interface ResponseFlags {
  failsInstruction: boolean;
  madeUpFacts: boolean;
  harmful: boolean;
}

export const NO_FLAGS: ResponseFlags = { failsInstruction: false, madeUpFacts: false, harmful: false };

function text(field: string, v: unknown, max: number): string {
  if (typeof v !== "string") throw new InvalidArgumentError(field, `must be a string`);
  if (v.trim() === "") throw new InvalidArgumentError(field, "must not be empty");
  if (v.length > max) throw new InvalidArgumentError(field, `has ${v.length} characters, more than the limit of ${max}`);
  return v;
}

/** Checks a batch against the limits; throws InvalidArgumentError naming the field and the limit. */
export function checkBatch(b: BatchInput, limits: Limits): void {
  if (!BATCH_ID_PATTERN.test(b.batchId)) throw new InvalidArgumentError("batch_id", `must be 1..64 characters of [A-Za-z0-9._:-], got "${b.batchId.slice(0, 80)}"`);
  if (b.comparisons.length === 0) throw new InvalidArgumentError("comparisons", "must hold at least one comparison");
  if (b.comparisons.length > limits.maxBatchComparisons) throw new InvalidArgumentError("comparisons", `has ${b.comparisons.length} comparisons, more than the limit of ${limits.maxBatchComparisons}`);
  if (!(b.overlapFraction >= 0 && b.overlapFraction <= 1)) throw new InvalidArgumentError("overlap_fraction", `must be in [0, 1], got ${b.overlapFraction}`);
  if (b.source.length > MAX_SOURCE_CHARS) throw new InvalidArgumentError("source", `has ${b.source.length} characters, more than the limit of ${MAX_SOURCE_CHARS}`);
  const keys = new Map<string, number>();
  b.comparisons.forEach((c, i) => {
    const f = `comparisons[${i}]`;
    if (c.key.length < 1 || c.key.length > MAX_KEY_CHARS) throw new InvalidArgumentError(`${f}.key`, `must be 1..${MAX_KEY_CHARS} characters, got ${c.key.length}`);
    const prev = keys.get(c.key);
    if (prev !== undefined) throw new InvalidArgumentError(`${f}.key`, `"${c.key.slice(0, 40)}" is also the key of comparisons[${prev}]`);
    keys.set(c.key, i);
    text(`${f}.prompt`, c.prompt, limits.maxTextChars);
    const k = c.responses.length;
    if (k < MIN_RESPONSES || k > MAX_RESPONSES) throw new InvalidArgumentError(`${f}.responses`, `K = ${k}: must be ${MIN_RESPONSES}..${MAX_RESPONSES} responses`);
    const seen = new Map<string, number>();
    c.responses.forEach((r, j) => {
      text(`${f}.responses[${j}]`, r, limits.maxTextChars);
      const canon = canonicalResponse(r);
      const dup = seen.get(canon);
      if (dup !== undefined) throw new InvalidArgumentError(`${f}.responses[${j}]`, `duplicate of responses[${dup}] (after trimming and collapsing whitespace): rank distinct responses`);
      seen.set(canon, j);
    });
  });
}

/** SHA-256 of a batch's comparisons: a resubmission with the same id must carry the same ones. */
export function batchDigest(comparisons: readonly ComparisonInput[]): string {
  const h = createHash("sha256");
  for (const c of comparisons) h.update(JSON.stringify([c.key, c.prompt, c.responses])).update("\n");
  return h.digest("hex");
}

/**
 * Whether comparison i of n goes to two labelers: evenly through the batch, floor(n f) of them
 * (i is chosen when floor((i+1) f) > floor(i f)).
 */
export function isOverlapping(i: number, overlapFraction: number): boolean {
  return Math.floor((i + 1) * overlapFraction) > Math.floor(i * overlapFraction);
}

/**
 * An ordering with ties (groups of response indices, best group first) as a ranking:
 * ranking[i] = number of responses in better groups (tied responses share the lowest rank of
 * their group, `[0, 0, 2]`). Every index 0..k-1 exactly once; not everything tied.
 */
export function groupsToRanking(groups: unknown, k: number): number[] {
  if (!Array.isArray(groups) || groups.length === 0) throw new InvalidArgumentError("groups", "must be a non-empty array of arrays of response indices, best first");
  const ranking = new Array<number>(k).fill(-1);
  let better = 0;
  groups.forEach((g: unknown, gi: number) => {
    if (!Array.isArray(g) || g.length === 0) throw new InvalidArgumentError(`groups[${gi}]`, "must be a non-empty array of response indices");
    for (const i of g) {
      if (!Number.isInteger(i) || (i as number) < 0 || (i as number) >= k) throw new InvalidArgumentError(`groups[${gi}]`, `${String(i)} is not a response index 0..${k - 1}`);
      if (ranking[i as number] !== -1) throw new InvalidArgumentError(`groups[${gi}]`, `response ${String(i)} appears twice`);
      ranking[i as number] = better;
    }
    better += g.length;
  });
  const missing = ranking.findIndex((r) => r === -1);
  if (missing >= 0) throw new InvalidArgumentError("groups", `response ${missing} is not placed: order all ${k} responses`);
  if (groups.length === 1) throw new InvalidArgumentError("groups", "all responses are tied: nothing to learn from (skip the comparison instead)");
  return ranking;
}

/** 1..7 scores by response index (null = none given). */
export function checkScores(scores: unknown, k: number): (number | null)[] {
  if (scores === undefined || scores === null) return new Array<number | null>(k).fill(null);
  if (!Array.isArray(scores) || scores.length !== k) throw new InvalidArgumentError("scores", `must be an array of ${k} scores (null for none)`);
  return scores.map((s: unknown, i: number) => {
    if (s === null || s === 0) return null;
    if (!Number.isInteger(s) || (s as number) < MIN_SCORE || (s as number) > MAX_SCORE) throw new InvalidArgumentError(`scores[${i}]`, `must be an integer ${MIN_SCORE}..${MAX_SCORE} or null, got ${JSON.stringify(s)}`);
    return s as number;
  });
}

/** Flags by response index. */
export function checkFlags(flags: unknown, k: number): ResponseFlags[] {
  if (flags === undefined || flags === null) return Array.from({ length: k }, () => ({ ...NO_FLAGS }));
  if (!Array.isArray(flags) || flags.length !== k) throw new InvalidArgumentError("flags", `must be an array of ${k} flag sets`);
  return flags.map((f: unknown, i: number) => {
    if (typeof f !== "object" || f === null) throw new InvalidArgumentError(`flags[${i}]`, "must be an object {failsInstruction, madeUpFacts, harmful}");
    const o = f as Record<string, unknown>;
    const out = { ...NO_FLAGS };
    for (const name of Object.keys(NO_FLAGS) as (keyof ResponseFlags)[]) {
      if (o[name] === undefined) continue;
      if (typeof o[name] !== "boolean") throw new InvalidArgumentError(`flags[${i}].${name}`, "must be true or false");
      out[name] = o[name] as boolean;
    }
    return out;
  });
}

/** A deterministic shuffle of 0..k-1 for one labeler and comparison (position bias differs per labeler). */
export function shownOrder(seed: string, k: number): number[] {
  const order = Array.from({ length: k }, (_, i) => i);
  let h = createHash("sha256").update(seed).digest();
  for (let i = k - 1; i > 0; i--) {
    if (i % 8 === 7) h = createHash("sha256").update(h).digest();
    const j = h.readUInt32BE((i % 8) * 4) % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Agreement over pairs of rankings of the same comparison by two labelers. */
export interface Agreement {
  /** Pairs of responses both labelers ordered the same way (both prefer the same one, or both tie). */
  agree: number;
  /** Pairs of responses compared. */
  pairs: number;
  /** agree / pairs; null without pairs. */
  rate: number | null;
}

/** One ranking for the agreement: who, which comparison, which ranking. */
export interface RankedBy {
  item: string;
  labeler: string;
  simulated: boolean;
  ranking: readonly number[];
}

/**
 * The paper's inter-labeler agreement: over every comparison ranked by two (or more) labelers,
 * every pair of labelers and every pair of responses, the share ordered the same way. Split by
 * who the labelers are (people with people, simulated with simulated, mixed) and per labeler
 * (against anyone who ranked the same comparison).
 */
export function agreementOf(rankings: readonly RankedBy[]): { humans: Agreement; simulated: Agreement; mixed: Agreement; perLabeler: Map<string, Agreement> } {
  const byItem = new Map<string, RankedBy[]>();
  for (const r of rankings) byItem.set(r.item, [...(byItem.get(r.item) ?? []), r]);
  const acc = () => ({ agree: 0, pairs: 0, rate: null as number | null });
  const humans = acc();
  const simulated = acc();
  const mixed = acc();
  const perLabeler = new Map<string, Agreement>();
  const add = (a: Agreement, r: { agree: number; pairs: number }) => {
    a.agree += r.agree;
    a.pairs += r.pairs;
  };
  for (const rs of byItem.values()) {
    for (let x = 0; x < rs.length; x++) {
      for (let y = x + 1; y < rs.length; y++) {
        const a = rs[x];
        const b = rs[y];
        if (a.labeler === b.labeler || a.ranking.length !== b.ranking.length) continue;
        const r = pairwiseAgreement(a.ranking, b.ranking);
        add(a.simulated && b.simulated ? simulated : !a.simulated && !b.simulated ? humans : mixed, r);
        for (const who of [a.labeler, b.labeler]) {
          if (!perLabeler.has(who)) perLabeler.set(who, acc());
          add(perLabeler.get(who) as Agreement, r);
        }
      }
    }
  }
  for (const a of [humans, simulated, mixed, ...perLabeler.values()]) a.rate = a.pairs ? a.agree / a.pairs : null;
  return { humans, simulated, mixed, perLabeler };
}
