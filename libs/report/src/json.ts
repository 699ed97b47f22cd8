/**
 * report.json: the data, validated, plus what the report computes (acceptance, KL summary);
 * and the way back, so a saved report.json can be rendered again.
 */
import { InvalidArgumentError } from "@rlhf/errors";
import { type AcceptanceCheck, type KlSummary, acceptanceChecks, acceptanceSummary, allApplicablePassed, klSummary } from "./acceptance";
import {
  CURVE_STAGES,
  type CurveStage,
  type FamilyEvaluation,
  type IterationMetrics,
  MODEL_NAMES,
  type ModelEvaluation,
  type ModelName,
  OPTIONAL_METRICS,
  type OptionalMetric,
  PPO_VARIANTS,
  type PpoVariant,
  type ReportData,
  type RewardModelSummary,
  type RunSummary,
  type SampleRow,
  type TimelineSpan,
  type WinRate,
} from "./types";

/**
 * Version of the report.json layout; bumped on incompatible changes. 2: the gold-answer and
 * labeler metrics may be null, with `not_applicable` saying why. 3: exact match per model, the
 * gold-tie share of the ranked pairs, the loss curves and the pretraining cache (versions 1 and 2
 * still read; their absent fields read as null).
 */
export const REPORT_SCHEMA_VERSION = 3;
/** Layout versions {@link reportDataFromJson} reads. */
const READABLE_VERSIONS: readonly number[] = [1, 2, 3];

/** The content of report.json. */
export interface ReportJson {
  readonly schema_version: typeof REPORT_SCHEMA_VERSION;
  readonly run: RunSummary;
  readonly not_applicable?: ReportData["not_applicable"];
  readonly acceptance: { readonly passed: boolean; readonly summary: string; readonly checks: readonly AcceptanceCheck[] };
  readonly models: ReportData["models"];
  readonly reward_model?: RewardModelSummary;
  readonly kl?: KlSummary;
  readonly iterations?: ReportData["iterations"];
  readonly samples?: readonly SampleRow[];
  readonly curves?: ReportData["curves"];
  readonly timeline?: readonly TimelineSpan[];
}

type Obj = Record<string, unknown>;

function fail(path: string, message: string): never {
  throw new InvalidArgumentError(path, message);
}

function obj(v: unknown, path: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(path, `must be an object, got ${v === null ? "null" : Array.isArray(v) ? "an array" : typeof v}`);
  return v as Obj;
}

function arr(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) fail(path, `must be an array, got ${typeof v}`);
  return v;
}

function finite(v: unknown, path: string, min = -Infinity, max = Infinity): number {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(path, `must be a finite number, got ${String(v)}`);
  if (v < min || v > max) fail(path, `must be in ${min}..${max}, got ${v}`);
  return v;
}

function fraction(v: unknown, path: string): number {
  return finite(v, path, 0, 1);
}

function fractionOrNull(v: unknown, path: string): number | null {
  return v === null ? null : fraction(v, path);
}

function count(v: unknown, path: string): number {
  const n = finite(v, path, 0);
  if (!Number.isInteger(n)) fail(path, `must be an integer >= 0, got ${n}`);
  return n;
}

function str(v: unknown, path: string): string {
  if (typeof v !== "string") fail(path, `must be a string, got ${typeof v}`);
  return v;
}

function onlyKeys(o: Obj, path: string, known: readonly string[]): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) fail(`${path}.${k}`, `unknown field; known: ${known.join(", ")}`);
}

function winRateOf(v: unknown, path: string): WinRate | null {
  if (v === null) return null;
  const o = obj(v, path);
  onlyKeys(o, path, ["rate", "comparisons", "ci95"]);
  const ci = arr(o.ci95, `${path}.ci95`);
  if (ci.length !== 2) fail(`${path}.ci95`, `must be [low, high], got ${ci.length} values`);
  const lo = fraction(ci[0], `${path}.ci95[0]`);
  const hi = fraction(ci[1], `${path}.ci95[1]`);
  if (lo > hi) fail(`${path}.ci95`, `low (${lo}) exceeds high (${hi})`);
  return { rate: fraction(o.rate, `${path}.rate`), comparisons: count(o.comparisons, `${path}.comparisons`), ci95: [lo, hi] };
}

function byFamilyOf(v: unknown, path: string): Record<string, FamilyEvaluation> {
  const out: Record<string, FamilyEvaluation> = {};
  for (const [family, x] of Object.entries(obj(v, path))) {
    const p = `${path}.${family}`;
    const o = obj(x, p);
    onlyKeys(o, p, ["prompts", "win_rate_vs_sft", "same_as_sft", "gold_helpfulness", "exact_match", "hallucination_rate"]);
    out[family] = {
      prompts: count(o.prompts, `${p}.prompts`),
      win_rate_vs_sft: fractionOrNull(o.win_rate_vs_sft ?? null, `${p}.win_rate_vs_sft`),
      same_as_sft: fractionOrNull(o.same_as_sft ?? null, `${p}.same_as_sft`),
      gold_helpfulness: fraction(o.gold_helpfulness, `${p}.gold_helpfulness`),
      exact_match: fraction(o.exact_match, `${p}.exact_match`),
      hallucination_rate: fraction(o.hallucination_rate, `${p}.hallucination_rate`),
    };
  }
  return out;
}

function modelOf(v: unknown, path: string): ModelEvaluation {
  const o = obj(v, path);
  const keys = ["win_rate_vs_sft", "gold_helpfulness", "exact_match", "hallucination_rate", "blocklist_rate", "pretrain_validation_loss", "mean_response_tokens", "eos_rate", "by_family"] as const;
  onlyKeys(o, path, keys);
  return {
    ...(o.by_family === undefined ? {} : { by_family: byFamilyOf(o.by_family, `${path}.by_family`) }),
    win_rate_vs_sft: winRateOf(o.win_rate_vs_sft ?? null, `${path}.win_rate_vs_sft`),
    gold_helpfulness: fractionOrNull(o.gold_helpfulness, `${path}.gold_helpfulness`),
    exact_match: fractionOrNull(o.exact_match ?? null, `${path}.exact_match`),
    hallucination_rate: fractionOrNull(o.hallucination_rate, `${path}.hallucination_rate`),
    blocklist_rate: fractionOrNull(o.blocklist_rate, `${path}.blocklist_rate`),
    pretrain_validation_loss: finite(o.pretrain_validation_loss, `${path}.pretrain_validation_loss`, 0),
    mean_response_tokens: finite(o.mean_response_tokens, `${path}.mean_response_tokens`, 0),
    eos_rate: fraction(o.eos_rate, `${path}.eos_rate`),
  };
}

function runOf(v: unknown): RunSummary {
  const o = obj(v, "run");
  onlyKeys(o, "run", ["id", "created", "finished", "config", "elapsed_ms", "backend", "compute", "pretrain_from_cache"]);
  if (o.pretrain_from_cache !== undefined && typeof o.pretrain_from_cache !== "boolean") fail("run.pretrain_from_cache", `must be a boolean, got ${typeof o.pretrain_from_cache}`);
  const elapsed = obj(o.elapsed_ms ?? {}, "run.elapsed_ms");
  const elapsedMs: Record<string, number> = {};
  for (const [k, x] of Object.entries(elapsed)) elapsedMs[k] = finite(x, `run.elapsed_ms.${k}`, 0);
  return {
    id: str(o.id, "run.id"),
    created: str(o.created, "run.created"),
    finished: o.finished === null || o.finished === undefined ? null : str(o.finished, "run.finished"),
    config: JSON.parse(JSON.stringify(obj(o.config, "run.config"))) as RunSummary["config"],
    elapsed_ms: elapsedMs,
    backend: str(o.backend, "run.backend"),
    ...(o.compute !== undefined ? { compute: str(o.compute, "run.compute") } : {}),
    ...(typeof o.pretrain_from_cache === "boolean" ? { pretrain_from_cache: o.pretrain_from_cache } : {}),
  };
}

/**
 * Checks that `value` is a well-formed ReportData and returns a clean copy (only known fields,
 * numbers finite, rates within 0..1). Errors are InvalidArgumentError naming the field
 * (`models.ppo_ptx.eos_rate: must be in 0..1, got 1.2`).
 */
export function validateReportData(value: unknown): ReportData {
  const o = obj(value, "report");
  const out: {
    -readonly [K in keyof ReportData]: ReportData[K];
  } = { run: runOf(o.run), models: {} };
  if (o.not_applicable !== undefined) {
    const na = obj(o.not_applicable, "not_applicable");
    onlyKeys(na, "not_applicable", OPTIONAL_METRICS);
    const res: Partial<Record<OptionalMetric, string>> = {};
    for (const k of OPTIONAL_METRICS) {
      if (na[k] === undefined) continue;
      const reason = str(na[k], `not_applicable.${k}`);
      if (reason.trim() === "") fail(`not_applicable.${k}`, "must say why (a non-empty string)");
      res[k] = reason;
    }
    out.not_applicable = res;
  }
  const models = obj(o.models ?? {}, "models");
  onlyKeys(models, "models", MODEL_NAMES);
  const m: Partial<Record<ModelName, ModelEvaluation>> = {};
  for (const name of MODEL_NAMES) if (models[name] !== undefined) m[name] = modelOf(models[name], `models.${name}`);
  out.models = m;
  if (o.reward_model !== undefined) {
    const r = obj(o.reward_model, "reward_model");
    onlyKeys(r, "reward_model", ["heldout_accuracy", "labeler_agreement", "gold_tie_share", "train_loss", "pairs"]);
    const pairs = obj(r.pairs, "reward_model.pairs");
    onlyKeys(pairs, "reward_model.pairs", ["train", "heldout"]);
    out.reward_model = {
      heldout_accuracy: fraction(r.heldout_accuracy, "reward_model.heldout_accuracy"),
      labeler_agreement: fractionOrNull(r.labeler_agreement, "reward_model.labeler_agreement"),
      gold_tie_share: fractionOrNull(r.gold_tie_share ?? null, "reward_model.gold_tie_share"),
      train_loss: finite(r.train_loss, "reward_model.train_loss", 0),
      pairs: { train: count(pairs.train, "reward_model.pairs.train"), heldout: count(pairs.heldout, "reward_model.pairs.heldout") },
    };
  }
  if (o.kl !== undefined) {
    const k = obj(o.kl, "kl");
    // report.json's kl also holds the computed max_observed / within_bound: accepted and recomputed.
    onlyKeys(k, "kl", ["max_mean_kl", "max_observed", "within_bound"]);
    out.kl = { max_mean_kl: finite(k.max_mean_kl, "kl.max_mean_kl", 0) };
  }
  if (o.iterations !== undefined) {
    const its = obj(o.iterations, "iterations");
    onlyKeys(its, "iterations", PPO_VARIANTS);
    const res: Partial<Record<PpoVariant, IterationMetrics[]>> = {};
    for (const v of PPO_VARIANTS) {
      if (its[v] === undefined) continue;
      res[v] = arr(its[v], `iterations.${v}`).map((x, i) => {
        const p = `iterations.${v}[${i}]`;
        const it = obj(x, p);
        onlyKeys(it, p, ["iteration", "values"]);
        const values: Record<string, number> = {};
        for (const [name, val] of Object.entries(obj(it.values, `${p}.values`))) values[name] = finite(val, `${p}.values.${name}`);
        return { iteration: count(it.iteration, `${p}.iteration`), values };
      });
    }
    out.iterations = res;
  }
  if (o.samples !== undefined) {
    out.samples = arr(o.samples, "samples").map((x, i) => {
      const p = `samples[${i}]`;
      const s = obj(x, p);
      onlyKeys(s, p, ["prompt", "gold", "responses"]);
      const responses = obj(s.responses, `${p}.responses`);
      onlyKeys(responses, `${p}.responses`, MODEL_NAMES);
      const r: Partial<Record<ModelName, string>> = {};
      for (const name of MODEL_NAMES) if (responses[name] !== undefined) r[name] = str(responses[name], `${p}.responses.${name}`);
      return { prompt: str(s.prompt, `${p}.prompt`), gold: s.gold === null || s.gold === undefined ? null : str(s.gold, `${p}.gold`), responses: r };
    });
  }
  if (o.curves !== undefined) {
    const c = obj(o.curves, "curves");
    onlyKeys(c, "curves", CURVE_STAGES);
    const res: Partial<Record<CurveStage, [number, number][]>> = {};
    for (const st of CURVE_STAGES) {
      if (c[st] === undefined) continue;
      res[st] = arr(c[st], `curves.${st}`).map((x, i) => {
        const p = `curves.${st}[${i}]`;
        const pt = arr(x, p);
        if (pt.length !== 2) fail(p, `must be [step, loss], got ${pt.length} values`);
        return [count(pt[0], `${p}[0]`), finite(pt[1], `${p}[1]`)];
      });
    }
    out.curves = res;
  }
  if (o.timeline !== undefined) {
    out.timeline = arr(o.timeline, "timeline").map((x, i) => {
      const p = `timeline[${i}]`;
      const s = obj(x, p);
      onlyKeys(s, p, ["name", "service", "startMs", "durationMs", "depth", "attributes"]);
      const span: { -readonly [K in keyof TimelineSpan]: TimelineSpan[K] } = {
        name: str(s.name, `${p}.name`),
        service: str(s.service, `${p}.service`),
        startMs: finite(s.startMs, `${p}.startMs`, 0),
        durationMs: finite(s.durationMs, `${p}.durationMs`, 0),
        depth: count(s.depth, `${p}.depth`),
      };
      if (s.attributes !== undefined) {
        const attributes: Record<string, string | number | boolean> = {};
        for (const [k, v] of Object.entries(obj(s.attributes, `${p}.attributes`))) {
          if (typeof v === "number") attributes[k] = finite(v, `${p}.attributes.${k}`);
          else if (typeof v === "string" || typeof v === "boolean") attributes[k] = v;
          else fail(`${p}.attributes.${k}`, `must be a string, number or boolean, got ${v === null ? "null" : typeof v}`);
        }
        span.attributes = attributes;
      }
      return span;
    });
  }
  return out;
}

/**
 * The report.json object of a run: the validated data with the acceptance checks (and whether
 * all passed) and the KL summary computed. Sections whose data is absent are left out.
 */
export function reportJson(data: ReportData): ReportJson {
  const d = validateReportData(data);
  const checks = acceptanceChecks(d);
  const out: { -readonly [K in keyof ReportJson]: ReportJson[K] } = {
    schema_version: REPORT_SCHEMA_VERSION,
    run: d.run,
    ...(d.not_applicable ? { not_applicable: d.not_applicable } : {}),
    acceptance: { passed: allApplicablePassed(checks), summary: acceptanceSummary(checks), checks },
    models: d.models,
  };
  if (d.reward_model) out.reward_model = d.reward_model;
  const kl = klSummary(d);
  if (kl) out.kl = kl;
  if (d.iterations) out.iterations = d.iterations;
  if (d.samples) out.samples = d.samples;
  if (d.curves) out.curves = d.curves;
  if (d.timeline) out.timeline = d.timeline;
  return out;
}

/** Reads report.json content back into ReportData (to render a saved report again); validated. */
export function reportDataFromJson(json: unknown): ReportData {
  const o = obj(json, "report");
  if (!READABLE_VERSIONS.includes(o.schema_version as number)) fail("schema_version", `must be one of ${READABLE_VERSIONS.join(", ")}, got ${JSON.stringify(o.schema_version)}`);
  const rest: Obj = { ...o };
  delete rest.schema_version;
  delete rest.acceptance;
  return validateReportData(rest);
}
