/**
 * The report as ONE self-contained HTML page: Chart.js (read from node_modules at generation
 * time) and the page's CSS are inlined, the charts' data travels in an inline JSON block, and a
 * Content-Security-Policy forbids loading anything, so the file opens offline from disk.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { FailedPreconditionError } from "@rlhf/errors";
import { checkDigits, type AcceptanceCheck } from "./acceptance";
import { type ReportJson, reportJson } from "./json";
import { CURVE_STAGES, type CurveStage, KL_METRIC, MODEL_LABELS, MODEL_NAMES, type ModelName, PPO_VARIANTS, type PpoVariant, type ReportData, STAGE_NAMES, type TimelineSpan } from "./types";

/** Chart.js's browser bundle and version. */
export interface PlotLibrary {
  readonly name: string;
  readonly version: string;
  readonly license: string;
  readonly code: string;
}

let cachedLibrary: PlotLibrary | undefined;

/**
 * Chart.js's UMD bundle (which registers every chart type) from the installed package. Its
 * package `exports` do not list the bundle, so it is found beside the resolved main file.
 */
export function plotLibrary(): PlotLibrary {
  if (cachedLibrary) return cachedLibrary;
  const main = require.resolve("chart.js");
  const dist = dirname(main);
  const pkg = JSON.parse(readFileSync(join(dist, "..", "package.json"), "utf8")) as { version: string; license: string };
  let code: string | undefined;
  for (const name of ["chart.umd.min.js", "chart.umd.js"]) {
    try {
      code = readFileSync(join(dist, name), "utf8");
      break;
    } catch {
      // try the next name
    }
  }
  if (code === undefined) throw new FailedPreconditionError(`chart.js ${pkg.version}: no UMD bundle (chart.umd.min.js / chart.umd.js) in ${dist}`);
  cachedLibrary = { name: "Chart.js", version: pkg.version, license: pkg.license, code };
  return cachedLibrary;
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

/** Makes script text safe inside <script>: no "</script" (or "<!--") can end or confuse the element. */
function scriptSafe(code: string): string {
  return code.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\u0021--");
}

/** JSON inside <script type="application/json">: `<` escaped, so no text in it can close the element. */
function jsonForScript(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

const COLORS: Readonly<Record<ModelName, string>> = { base: "#7f8c8d", sft: "#2874a6", ppo: "#d35400", ppo_ptx: "#1e8449" };
const BOUND_COLOR = "#c0392b";

/** A chart: the canvas id, its heading, and a plain-JSON Chart.js configuration. */
export interface ChartSpec {
  readonly id: string;
  readonly title: string;
  /** Height of the canvas in CSS pixels, when not the default. */
  readonly height?: number;
  readonly config: Record<string, unknown>;
}

interface PlotMetric {
  readonly metric: string;
  readonly title: string;
  readonly yLabel: string;
}

/** The per-iteration charts always shown when their metric is present, in this order. */
const PRIMARY_METRICS: readonly PlotMetric[] = [
  { metric: "objective/score", title: "Reward-model score (batch mean; without the missing-EOS penalty)", yLabel: "reward-model score" },
  { metric: "gold/score", title: "Gold score of the same rollouts (what the reward model stands for)", yLabel: "gold score" },
  { metric: "objective/missing_eos_fraction", title: "Rollouts without EOS (each one gets ppo.missing_eos_penalty)", yLabel: "fraction of rollouts" },
  { metric: KL_METRIC, title: "KL to the reference (per-sequence k1 sum, batch mean)", yLabel: "nats per sequence" },
  { metric: "loss/policy", title: "Policy loss", yLabel: "loss" },
  { metric: "loss/value", title: "Value loss", yLabel: "loss" },
  { metric: "ptx/loss", title: "Pretraining (ptx) loss", yLabel: "nats per token" },
];

function lineConfig(datasets: Record<string, unknown>[], xLabel: string, yLabel: string): Record<string, unknown> {
  return {
    type: "line",
    data: { datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: true,
      scales: {
        x: { type: "linear", title: { display: true, text: xLabel }, ticks: { precision: 0 } },
        y: { title: { display: true, text: yLabel } },
      },
      plugins: { legend: { position: "bottom" } },
    },
  };
}

function seriesOf(data: ReportData, variant: PpoVariant, metric: string): { x: number; y: number }[] {
  return (data.iterations?.[variant] ?? []).filter((it) => typeof it.values[metric] === "number").map((it) => ({ x: it.iteration, y: it.values[metric] }));
}

function metricDataset(variant: PpoVariant, points: { x: number; y: number }[]): Record<string, unknown> {
  return { label: MODEL_LABELS[variant], data: points, borderColor: COLORS[variant], backgroundColor: COLORS[variant], borderWidth: 2, pointRadius: 2, tension: 0 };
}

function slug(s: string): string {
  return s.replace(/[^a-zA-Z0-9]+/g, "-").replace(/^-|-$/g, "").toLowerCase();
}

/** What each metric namespace means, for the headings of the other per-iteration charts. */
const METRIC_GROUPS: readonly [string, string][] = [
  ["objective", "The objective: rewards, KL to the reference, the KL coefficient"],
  ["gold", "The gold scorer on the rollouts (built-in data)"],
  ["loss", "Losses of the update"],
  ["policy", "The policy update: clipping, approximate KL, entropy, gradient norm"],
  ["value", "The critic"],
  ["ptx", "Pretraining gradients mixed in (PPO-ptx)"],
  ["response", "The rollouts"],
  ["timing", "Where the time goes (milliseconds per phase)"],
];

/** The namespace of a metric (`objective/kl` -> `objective`). */
function groupOf(metric: string): string {
  return metric.includes("/") ? metric.slice(0, metric.indexOf("/")) : "other";
}

/**
 * The per-iteration charts: the primary metrics, then every other metric present grouped by its
 * namespace (each group with a heading that says what it measures), both variants on the same axes.
 */
export function iterationCharts(data: ReportData): { primary: ChartSpec[]; other: ChartSpec[]; groups: { name: string; title: string; charts: ChartSpec[] }[] } {
  const present = new Set<string>();
  for (const v of PPO_VARIANTS) for (const it of data.iterations?.[v] ?? []) for (const k of Object.keys(it.values)) present.add(k);
  const chart = (m: PlotMetric): ChartSpec | undefined => {
    const datasets: Record<string, unknown>[] = [];
    const xs: number[] = [];
    for (const v of PPO_VARIANTS) {
      const pts = seriesOf(data, v, m.metric);
      if (pts.length) {
        datasets.push(metricDataset(v, pts));
        xs.push(...pts.map((p) => p.x));
      }
    }
    if (!datasets.length) return undefined;
    if (m.metric === KL_METRIC && data.kl) {
      const bound = data.kl.max_mean_kl;
      datasets.push({
        label: `bound (ppo.kl.max_mean_kl = ${bound})`,
        data: [
          { x: Math.min(...xs), y: bound },
          { x: Math.max(...xs), y: bound },
        ],
        borderColor: BOUND_COLOR,
        backgroundColor: BOUND_COLOR,
        borderDash: [6, 4],
        borderWidth: 2,
        pointRadius: 0,
      });
    }
    return { id: `chart-${slug(m.metric)}`, title: m.title === m.metric ? m.metric : `${m.title} — ${m.metric}`, config: lineConfig(datasets, "PPO iteration", m.yLabel) };
  };
  const primary = PRIMARY_METRICS.map(chart).filter((c): c is ChartSpec => c !== undefined);
  const primaryNames = new Set(PRIMARY_METRICS.map((m) => m.metric));
  const rest = [...present].filter((k) => !primaryNames.has(k)).sort();
  const known = METRIC_GROUPS.map(([g]) => g);
  const names = [...known.filter((g) => rest.some((k) => groupOf(k) === g)), ...[...new Set(rest.map(groupOf))].filter((g) => !known.includes(g)).sort()];
  const groups = names.map((g) => ({
    name: g,
    title: METRIC_GROUPS.find(([n]) => n === g)?.[1] ?? g,
    charts: rest
      .filter((k) => groupOf(k) === g)
      .map((k) => chart({ metric: k, title: k, yLabel: k.endsWith("_ms") ? "ms" : k }))
      .filter((c): c is ChartSpec => c !== undefined),
  }));
  return { primary, other: groups.flatMap((g) => g.charts), groups };
}

/**
 * The headline chart: each model's win rate against SFT with its 95% interval (a bar from the
 * low to the high end, the rate as a point), 0.5 (SFT against itself) as the line to beat.
 */
function winRateChart(data: ReportData): ChartSpec | undefined {
  const models = MODEL_NAMES.filter((m) => m !== "sft" && data.models[m]?.win_rate_vs_sft);
  if (!models.length) return undefined;
  const labels = models.map((m) => MODEL_LABELS[m]);
  return {
    id: "chart-win-rate",
    title: "Win rate against SFT on held-out prompts, with 95% intervals (0.5: as good as SFT)",
    config: {
      type: "bar",
      data: {
        labels,
        datasets: [
          { type: "line", label: "win rate", data: models.map((m) => data.models[m]!.win_rate_vs_sft!.rate), borderColor: "#1c2833", backgroundColor: "#1c2833", showLine: false, pointRadius: 6 },
          { type: "bar", label: "95% interval", data: models.map((m) => [...data.models[m]!.win_rate_vs_sft!.ci95]), backgroundColor: models.map((m) => COLORS[m]) },
          { type: "line", label: "SFT (0.5)", data: models.map(() => 0.5), borderColor: BOUND_COLOR, borderDash: [6, 4], borderWidth: 2, pointRadius: 0 },
        ],
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { min: 0, max: 1, title: { display: true, text: "win rate vs SFT" } } }, plugins: { legend: { position: "bottom" } } },
    },
  };
}

/**
 * Over-optimisation (Gao et al. 2022): the gold score and the reward model's score of each
 * iteration's rollouts against their KL to the SFT model. While the two rise together the reward
 * model is a good proxy; where the RM score keeps rising and the gold score turns down, PPO
 * exploits the reward model.
 */
function overOptimisationChart(data: ReportData): ChartSpec | undefined {
  const datasets: Record<string, unknown>[] = [];
  for (const v of PPO_VARIANTS) {
    const its = (data.iterations?.[v] ?? []).filter((it) => typeof it.values[KL_METRIC] === "number");
    const gold = its.filter((it) => typeof it.values["gold/score"] === "number").map((it) => ({ x: it.values[KL_METRIC], y: it.values["gold/score"] }));
    const rm = its.filter((it) => typeof it.values["objective/score"] === "number").map((it) => ({ x: it.values[KL_METRIC], y: it.values["objective/score"] }));
    if (gold.length) datasets.push({ label: `${MODEL_LABELS[v]}: gold score`, data: gold, borderColor: COLORS[v], backgroundColor: COLORS[v], showLine: true, borderWidth: 2, pointRadius: 3 });
    if (rm.length) datasets.push({ label: `${MODEL_LABELS[v]}: reward-model score`, data: rm, borderColor: COLORS[v], backgroundColor: COLORS[v], showLine: true, borderDash: [5, 4], borderWidth: 1, pointRadius: 2 });
  }
  if (!datasets.some((d) => String(d.label).endsWith("gold score"))) return undefined;
  return {
    id: "chart-over-optimisation",
    title: "Over-optimisation: gold score (solid) and reward-model score (dashed) against KL to SFT",
    config: {
      type: "scatter",
      data: { datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: { type: "linear", title: { display: true, text: "KL to SFT (nats per sequence)" } }, y: { title: { display: true, text: "score" } } },
        plugins: { legend: { position: "bottom" } },
      },
    },
  };
}

/** Training-loss curves of pretraining, SFT and the reward model, one chart each. */
function lossCurveCharts(data: ReportData): ChartSpec[] {
  const what: Record<CurveStage, [string, string]> = {
    pretrain: ["Pretraining loss", "nats per token"],
    sft: ["SFT loss (completion tokens)", "nats per token"],
    reward_model: ["Reward-model ranking loss (ln 2 = chance)", "nats per pair"],
  };
  const out: ChartSpec[] = [];
  for (const st of CURVE_STAGES) {
    const pts = data.curves?.[st];
    if (!pts?.length) continue;
    const datasets: Record<string, unknown>[] = [{ label: what[st][0], data: pts.map(([x, y]) => ({ x, y })), borderColor: "#2874a6", backgroundColor: "#2874a6", borderWidth: 2, pointRadius: 1 }];
    if (st === "reward_model") {
      const xs = pts.map((p) => p[0]);
      datasets.push({ label: "chance (ln 2)", data: [{ x: Math.min(...xs), y: Math.LN2 }, { x: Math.max(...xs), y: Math.LN2 }], borderColor: BOUND_COLOR, borderDash: [6, 4], borderWidth: 2, pointRadius: 0 });
    }
    out.push({ id: `chart-curve-${st.replace(/_/g, "-")}`, title: what[st][0], config: lineConfig(datasets, "optimizer step", what[st][1]) });
  }
  return out;
}

function modelsChart(data: ReportData): ChartSpec | undefined {
  const models = MODEL_NAMES.filter((m) => data.models[m]);
  if (!models.length) return undefined;
  const metrics: [keyof NonNullable<ReportData["models"]["sft"]>, string][] = [
    ["gold_helpfulness", "gold helpfulness"],
    ["exact_match", "exact match"],
    ["hallucination_rate", "hallucination rate"],
    ["blocklist_rate", "blocklist rate"],
    ["eos_rate", "EOS rate"],
  ];
  // Metrics that do not apply (null for every model: no gold answers) are left out of the chart.
  const shown = metrics.filter(([k]) => models.some((m) => data.models[m]![k] !== null));
  return {
    id: "chart-models",
    title: "Held-out evaluation by model",
    config: {
      type: "bar",
      data: {
        labels: shown.map(([, l]) => l),
        datasets: models.map((m) => ({ label: MODEL_LABELS[m], data: shown.map(([k]) => data.models[m]![k]), backgroundColor: COLORS[m] })),
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { min: 0, max: 1 } }, plugins: { legend: { position: "bottom" } } },
    },
  };
}

function rewardModelChart(data: ReportData): ChartSpec | undefined {
  const rm = data.reward_model;
  if (!rm) return undefined;
  return {
    id: "chart-reward-model",
    title: "Reward model held-out accuracy beside labeler agreement",
    config: {
      type: "bar",
      data: {
        labels: rm.labeler_agreement === null ? ["RM held-out accuracy"] : ["RM held-out accuracy", "Labeler agreement"],
        datasets: [{ label: "pairwise agreement", data: rm.labeler_agreement === null ? [rm.heldout_accuracy] : [rm.heldout_accuracy, rm.labeler_agreement], backgroundColor: ["#8e44ad", "#7f8c8d"] }],
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false, indexAxis: "y", scales: { x: { min: 0, max: 1 } }, plugins: { legend: { display: false } } },
    },
  };
}

/** Colours of the services in the timeline (others get grey). */
const SERVICE_COLORS: Readonly<Record<string, string>> = {
  "ppo-coordinator": "#2874a6",
  policy: "#1e8449",
  "reward-model": "#d35400",
  "reference-model": "#8e44ad",
  "pretrain-mix": "#b7950b",
};

/** A timeline row's label: indented by depth; an RPC span `pkg.Service/Method` shows as `Service/Method`. */
function timelineLabel(s: TimelineSpan): string {
  const name = s.name.replace(/^(grpc\.)?([a-z0-9_]+\.)+(?=[A-Z][A-Za-z0-9]*\/)/, "");
  // Indent with U+2003 (em space): Chart.js trims ASCII spaces from labels.
  return `${"\u2003".repeat(s.depth)}${name} (${s.service})`;
}

/** The root row's iteration and variant, e.g. "PPO-ptx iteration 7". */
function timelineWhich(spans: readonly TimelineSpan[]): string {
  const a = spans.find((s) => s.depth === 0)?.attributes ?? {};
  const variant = a["rlhf.variant"] === "ppo" || a["rlhf.variant"] === "ppo_ptx" ? MODEL_LABELS[a["rlhf.variant"]] : "";
  const it = typeof a["rlhf.iteration"] === "number" ? `iteration ${a["rlhf.iteration"]}` : "";
  return [variant, it].filter(Boolean).join(" ");
}

/**
 * The timeline of one iteration: one floating bar [start, end] per span, rows in tree order
 * (indented by depth), one dataset per service so that the legend names the colours.
 */
function timelineChart(data: ReportData): ChartSpec | undefined {
  const spans = data.timeline;
  if (!spans || !spans.length) return undefined;
  const services = [...new Set(spans.map((s) => s.service))];
  const which = timelineWhich(spans);
  return {
    id: "chart-timeline",
    title: `Timeline of one PPO iteration${which ? ` (${which})` : ""}`,
    // A row per span: tall enough to read every label.
    height: Math.max(280, 60 + 18 * spans.length),
    config: {
      type: "bar",
      data: {
        labels: spans.map(timelineLabel),
        datasets: services.map((svc) => ({
          label: svc,
          data: spans.map((s) => (s.service === svc ? [s.startMs, s.startMs + s.durationMs] : null)),
          backgroundColor: SERVICE_COLORS[svc] ?? "#7f8c8d",
          grouped: false,
          skipNull: true,
          barPercentage: 0.9,
          categoryPercentage: 0.9,
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: "y",
        // Labels left-aligned so that the depth indentation shows.
        scales: { x: { type: "linear", min: 0, title: { display: true, text: "ms since the iteration started" } }, y: { ticks: { crossAlign: "far", autoSkip: false } } },
        plugins: { legend: { position: "bottom" } },
      },
    },
  };
}

/** Where the time of the iteration went: its phases (the root's children) by name, with counts and shares. */
export function timelinePhases(spans: readonly TimelineSpan[]): { name: string; count: number; totalMs: number; share: number }[] {
  const root = spans.find((s) => s.depth === 0);
  if (!root) return [];
  const by = new Map<string, { name: string; count: number; totalMs: number; share: number }>();
  for (const s of spans) {
    if (s.depth !== 1) continue;
    const e = by.get(s.name) ?? { name: s.name, count: 0, totalMs: 0, share: 0 };
    e.count++;
    e.totalMs += s.durationMs;
    by.set(s.name, e);
  }
  for (const e of by.values()) e.share = root.durationMs > 0 ? e.totalMs / root.durationMs : 0;
  return [...by.values()];
}

interface PageCharts {
  readonly winRate?: ChartSpec;
  readonly models?: ChartSpec;
  readonly curves: ChartSpec[];
  readonly rewardModel?: ChartSpec;
  readonly overOptimisation?: ChartSpec;
  readonly iterations: ReturnType<typeof iterationCharts>;
  readonly timeline?: ChartSpec;
  /** All of them, in page order. */
  readonly all: ChartSpec[];
}

function pageCharts(data: ReportData): PageCharts {
  const winRate = winRateChart(data);
  const models = modelsChart(data);
  const curves = lossCurveCharts(data);
  const rewardModel = rewardModelChart(data);
  const overOptimisation = overOptimisationChart(data);
  const iterations = iterationCharts(data);
  const timeline = timelineChart(data);
  const all = [winRate, models, ...curves, rewardModel, overOptimisation, ...iterations.primary, ...iterations.other, timeline].filter((c): c is ChartSpec => c !== undefined);
  return { winRate, models, curves, rewardModel, overOptimisation, iterations, timeline, all };
}

/** Every chart of the page, in page order. */
export function reportCharts(data: ReportData): ChartSpec[] {
  return pageCharts(data).all;
}

const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;
const num = (v: number, digits = 3): string => (Math.abs(v) >= 1000 ? v.toFixed(0) : v.toFixed(digits));

function seconds(ms: number): string {
  const s = ms / 1000;
  return s >= 60 ? `${Math.floor(s / 60)} min ${(s % 60).toFixed(0)} s` : `${s.toFixed(1)} s`;
}

function checkValue(v: number | null, digits = 3): string {
  return v === null ? "—" : num(v, digits);
}

/** The condition of a check as the table shows it (`>= 0.700`, `within 0.730 ± 0.030`). */
function checkCondition(c: AcceptanceCheck): string {
  if (c.comparison === "within") return `within ${checkValue(c.threshold)} ± ${num(c.tolerance ?? 0)}`;
  return `${escapeHtml(c.comparison)} ${checkValue(c.threshold)}`;
}

function chartBlock(c: ChartSpec, tall = false): string {
  const style = c.height ? ` style="height: ${Math.round(c.height)}px"` : "";
  return `<figure class="chart"><figcaption>${escapeHtml(c.title)}</figcaption><div class="canvas${tall ? " tall" : ""}"${style}><canvas id="${escapeHtml(c.id)}"></canvas></div></figure>`;
}

const CSS = `
:root { color-scheme: light; --fg: #1c2833; --muted: #5d6d7e; --line: #d5d8dc; --pass: #1e8449; --fail: #c0392b; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); margin: 0 auto; max-width: 1200px; padding: 24px; }
h1 { margin: 0 0 4px; font-size: 26px; }
h2 { margin: 32px 0 8px; font-size: 19px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.muted { color: var(--muted); }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f6f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: var(--pass); font-weight: 600; }
.fail { color: var(--fail); font-weight: 600; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; color: white; font-weight: 600; }
.verdict.pass { background: var(--pass); color: white; }
.verdict.fail { background: var(--fail); color: white; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
figure.chart figcaption { font-weight: 600; margin-bottom: 4px; }
.canvas { position: relative; height: 280px; }
.canvas.tall { height: 420px; }
table.samples td { white-space: pre-wrap; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; max-width: 320px; }
pre.config { background: #f4f6f7; padding: 12px; overflow: auto; font-size: 12px; max-height: 480px; }
footer { margin-top: 40px; border-top: 1px solid var(--line); padding-top: 8px; }
`;

const BOOT = `
(function () {
  var specs = JSON.parse(document.getElementById("report-charts").textContent);
  if (typeof Chart === "undefined") return;
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  specs.forEach(function (s) {
    var el = document.getElementById(s.id);
    if (el) new Chart(el, s.config);
  });
})();
`;

function sectionRun(r: ReportJson): string {
  const run = r.run;
  const stages = [...STAGE_NAMES.filter((s) => run.elapsed_ms[s] !== undefined), ...Object.keys(run.elapsed_ms).filter((s) => !(STAGE_NAMES as readonly string[]).includes(s))];
  const total = stages.reduce((a, s) => a + run.elapsed_ms[s], 0);
  const rows = stages.map((s) => `<tr><td>${escapeHtml(s)}</td><td class="num">${seconds(run.elapsed_ms[s])}</td></tr>`).join("");
  return `<section id="run"><h2>Run</h2>
<table><tr><th>run id</th><td>${escapeHtml(run.id)}</td></tr>
<tr><th>created</th><td>${escapeHtml(run.created)}</td></tr>
<tr><th>finished</th><td>${run.finished === null ? "not finished" : escapeHtml(run.finished)}</td></tr>
<tr><th>compute backend</th><td>${escapeHtml(run.backend)}</td></tr>${run.compute === undefined ? "" : `
<tr><th>compute</th><td>${escapeHtml(run.compute)}</td></tr>`}</table>
${stages.length ? `<table><tr><th>stage</th><th>elapsed</th></tr>${rows}<tr><th>total</th><td class="num">${seconds(total)}</td></tr></table>` : ""}
</section>`;
}

function sectionAcceptance(r: ReportJson): string {
  const rows = r.acceptance.checks
    .map(
      (c) =>
        c.not_applicable !== null
          ? `<tr><td>${escapeHtml(c.description)}<br><span class="muted">${escapeHtml(c.name)}: does not apply: ${escapeHtml(c.not_applicable)}</span></td><td class="num">—</td><td class="num">${checkCondition(c)}</td><td class="muted">N/A</td></tr>`
          : `<tr><td>${escapeHtml(c.description)}<br><span class="muted">${escapeHtml(c.name)}</span></td><td class="num">${checkValue(c.value, checkDigits(c))}</td><td class="num">${checkCondition(c)}</td><td class="${c.passed ? "pass" : "fail"}">${c.passed ? "PASS" : "FAIL"}</td></tr>`,
    )
    .join("\n");
  const applicable = r.acceptance.checks.filter((c) => c.not_applicable === null);
  const failed = applicable.filter((c) => !c.passed).length;
  return `<section id="acceptance"><h2>Acceptance</h2>
<p><span class="verdict ${r.acceptance.passed ? "pass" : "fail"}">${r.acceptance.passed ? "all checks passed" : `${failed} of ${applicable.length} checks failed`}</span></p>
<table><tr><th>check</th><th>value</th><th>target</th><th>result</th></tr>
${rows}</table>
<p class="summary">${escapeHtml(r.acceptance.summary)}</p></section>`;
}

/** Per task family: where each model gains or loses against SFT (built-in data only). */
function familyTable(r: ReportJson, models: readonly ModelName[]): string {
  const families = [...new Set(models.flatMap((m) => Object.keys(r.models[m]?.by_family ?? {})))];
  if (!families.length) return "";
  const rows = families
    .flatMap((f) => {
      const have = models.filter((m) => r.models[m]?.by_family?.[f]);
      return have.map((m, i) => {
        const e = r.models[m]!.by_family![f];
        const head = i === 0 ? `<th rowspan="${have.length}">${escapeHtml(f)}<br><span class="muted">${e.prompts} prompts</span></th>` : "";
        const vsSft = (v: number | null) => (v === null ? "—" : pct(v));
        return `<tr>${head}<td>${MODEL_LABELS[m]}</td><td class="num">${vsSft(e.win_rate_vs_sft)}</td><td class="num">${vsSft(e.same_as_sft)}</td><td class="num">${num(e.gold_helpfulness)}</td><td class="num">${pct(e.exact_match)}</td><td class="num">${pct(e.hallucination_rate)}</td></tr>`;
      });
    })
    .join("\n");
  return `<h3>By task family</h3>
<table class="by-family"><tr><th>family</th><th>model</th><th>win rate vs SFT</th><th>same answer as SFT (a tie)</th><th>gold helpfulness</th><th>exact match</th><th>hallucination rate</th></tr>
${rows}</table>`;
}

function sectionModels(r: ReportJson, chart: ChartSpec | undefined, headline: ChartSpec | undefined): string {
  const models = MODEL_NAMES.filter((m) => r.models[m]);
  if (!models.length) return "";
  const rows = models
    .map((m) => {
      const e = r.models[m]!;
      const w = e.win_rate_vs_sft;
      const win = w ? `${pct(w.rate)} <span class="muted">[${pct(w.ci95[0])}, ${pct(w.ci95[1])}], n=${w.comparisons}</span>` : "—";
      // Not applicable (no gold answers): "n/a"; the reasons are listed under the table.
      const na = (v: number | null, f: (x: number) => string) => (v === null ? `<span class="muted">n/a</span>` : f(v));
      return `<tr><th>${MODEL_LABELS[m]}</th><td class="num">${win}</td><td class="num">${na(e.gold_helpfulness, (x) => num(x))}</td><td class="num">${na(e.exact_match, pct)}</td><td class="num">${na(e.hallucination_rate, pct)}</td><td class="num">${na(e.blocklist_rate, pct)}</td><td class="num">${num(e.pretrain_validation_loss)}</td><td class="num">${num(e.mean_response_tokens, 1)}</td><td class="num">${pct(e.eos_rate)}</td></tr>`;
    })
    .join("\n");
  const reasons = Object.entries(r.not_applicable ?? {}).filter(([k]) => k !== "labeler_agreement");
  const notes = reasons.length ? `<p class="muted">Not applicable to this run: ${reasons.map(([k, why]) => `${escapeHtml(k)} (${escapeHtml(why ?? "")})`).join("; ")}.</p>` : "";
  return `<section id="models"><h2>Models on held-out prompts</h2>
<table><tr><th>model</th><th>win rate vs SFT [95% interval]</th><th>gold helpfulness</th><th>exact match</th><th>hallucination rate</th><th>blocklist rate</th><th>pretraining validation loss (nats/token)</th><th>mean response tokens</th><th>EOS rate</th></tr>
${rows}</table>
${notes}
${familyTable(r, models)}
<div class="charts">${[headline, chart].filter((c): c is ChartSpec => c !== undefined).map((c) => chartBlock(c)).join("\n")}</div>
</section>`;
}

function sectionCurves(charts: readonly ChartSpec[], r: ReportJson): string {
  if (!charts.length) return "";
  const cache = r.run.pretrain_from_cache ? `<p class="muted">The base model came from the pretraining cache (trained by an earlier run with the same settings); its curve is that run's.</p>` : "";
  return `<section id="training"><h2>Training before PPO</h2>${cache}
<div class="charts">${charts.map((c) => chartBlock(c)).join("\n")}</div></section>`;
}

function sectionRewardModel(r: ReportJson, chart: ChartSpec | undefined): string {
  const rm = r.reward_model;
  if (!rm) return "";
  return `<section id="reward-model"><h2>Reward model</h2>
<table><tr><th>held-out pairwise accuracy</th><td class="num">${pct(rm.heldout_accuracy)}</td></tr>
<tr><th>labeler agreement (two labelers on a pair)</th><td class="num">${rm.labeler_agreement === null ? `<span class="muted">n/a: ${escapeHtml(r.not_applicable?.labeler_agreement ?? "no simulated labelers ranked the data")}</span>` : pct(rm.labeler_agreement)}</td></tr>
<tr><th>ranked pairs whose gold scores tie</th><td class="num">${rm.gold_tie_share === null ? `<span class="muted">n/a</span>` : pct(rm.gold_tie_share)}</td></tr>
<tr><th>final training loss (nats/pair)</th><td class="num">${num(rm.train_loss)}</td></tr>
<tr><th>pairs: training / held out</th><td class="num">${rm.pairs.train} / ${rm.pairs.heldout}</td></tr></table>
${chart ? `<div class="charts">${chartBlock(chart)}</div>` : ""}
</section>`;
}

function sectionIterations(r: ReportJson, charts: ReturnType<typeof iterationCharts>, overOptimisation: ChartSpec | undefined): string {
  if (!charts.primary.length && !charts.other.length) return "";
  const kl = r.kl
    ? `<p>KL bound (ppo.kl.max_mean_kl): ${num(r.kl.max_mean_kl)} nats/sequence; largest observed: ${
        PPO_VARIANTS.filter((v) => r.kl!.max_observed[v] !== undefined)
          .map((v) => `${MODEL_LABELS[v]} ${num(r.kl!.max_observed[v]!)}`)
          .join(", ") || "none"
      } — <span class="${r.kl.within_bound ? "pass" : "fail"}">${r.kl.within_bound ? "within bound" : "not within bound"}</span></p>`
    : "";
  return `<section id="iterations"><h2>PPO iterations</h2>${kl}
<div class="charts">${[...(overOptimisation ? [overOptimisation] : []), ...charts.primary].map((c) => chartBlock(c)).join("\n")}</div>
${charts.groups.map((g) => `<h3>${escapeHtml(g.title)} <span class="muted">(${escapeHtml(g.name)}/…)</span></h3><div class="charts">${g.charts.map((c) => chartBlock(c)).join("\n")}</div>`).join("\n")}
</section>`;
}

function sectionSamples(r: ReportJson): string {
  const samples = r.samples;
  if (!samples || !samples.length) return "";
  const models = MODEL_NAMES.filter((m) => samples.some((s) => s.responses[m] !== undefined));
  const head = `<tr><th>prompt</th><th>gold</th>${models.map((m) => `<th>${MODEL_LABELS[m]}</th>`).join("")}</tr>`;
  const rows = samples
    .map((s) => `<tr><td>${escapeHtml(s.prompt)}</td><td>${s.gold === null ? "—" : escapeHtml(s.gold)}</td>${models.map((m) => `<td>${s.responses[m] === undefined ? "—" : escapeHtml(s.responses[m]!)}</td>`).join("")}</tr>`)
    .join("\n");
  return `<section id="samples"><h2>Sample responses (held-out prompts)</h2>
<table class="samples">${head}
${rows}</table></section>`;
}

function sectionTimeline(r: ReportJson, chart: ChartSpec | undefined): string {
  if (!chart || !r.timeline) return "";
  const root = r.timeline.find((s) => s.depth === 0);
  const rows = timelinePhases(r.timeline)
    .map((p) => `<tr><td>${escapeHtml(p.name)}</td><td class="num">${p.count}</td><td class="num">${num(p.totalMs, 1)}</td><td class="num">${pct(p.share)}</td></tr>`)
    .join("");
  const services = new Set(r.timeline.map((s) => s.service)).size;
  return `<section id="timeline"><h2>Timeline of one iteration</h2>
<p class="muted">One PPO iteration's trace${root ? ` (${seconds(root.durationMs)})` : ""}: the coordinator's phases and, under them, the services' server spans (${services} service${services === 1 ? "" : "s"} recorded). Without an OTLP endpoint, every trace of the run is in its folder's traces.jsonl (OTLP JSON).</p>
${rows ? `<table><tr><th>phase</th><th>spans</th><th>total ms</th><th>share of the iteration</th></tr>${rows}</table><p class="muted">Phases that run side by side (score, reference log-probs, evaluate; each update with its pretraining gradients) add up to more than 100%.</p>` : ""}
<div>${chartBlock(chart)}</div></section>`;
}

/**
 * The report page. Every text from the data (responses, prompts, ids, config) is escaped; the
 * charts are drawn by the inlined Chart.js from the JSON block `#report-charts`.
 */
export function renderReportHtml(data: ReportData): string {
  const r = reportJson(data); // validates
  const lib = plotLibrary();
  const charts = pageCharts(data);
  const title = `RLHF run report — ${r.run.id}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
<script>/* ${lib.name} ${lib.version} (${lib.license} license), inlined */
${scriptSafe(lib.code)}
</script>
</head>
<body>
<header><h1>${escapeHtml(title)}</h1>
<p class="muted">InstructGPT recipe: pretrain → SFT → rankings → reward model → PPO-ptx → evaluation. Field meanings: REPORT.md of @rlhf/report.</p></header>
${sectionAcceptance(r)}
${sectionRun(r)}
${sectionModels(r, charts.models, charts.winRate)}
${sectionCurves(charts.curves, r)}
${sectionRewardModel(r, charts.rewardModel)}
${sectionIterations(r, charts.iterations, charts.overOptimisation)}
${sectionSamples(r)}
${sectionTimeline(r, charts.timeline)}
<footer>
<details><summary>Run config (resolved)</summary>
<pre class="config">${escapeHtml(JSON.stringify(r.run.config, null, 2))}</pre></details>
<p class="muted">Generated by @rlhf/report; plots by ${lib.name} ${lib.version} (${escapeHtml(lib.license)}), inlined. report.json beside this file holds the same data.</p>
</footer>
<script type="application/json" id="report-charts">${jsonForScript(charts.all)}</script>
<script>${BOOT}</script>
</body>
</html>
`;
}
