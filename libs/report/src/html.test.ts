import { test } from "node:test";
import assert from "node:assert/strict";
import { runInNewContext } from "node:vm";
import { type ChartSpec, escapeHtml, plotLibrary, renderReportHtml } from "./html";
import { fullReportData, minimalReportData, noGoldReportData } from "./testing/fixture";
import { type ReportData } from "./types";

/** The chart specs embedded in the page. */
function chartsOf(html: string): ChartSpec[] {
  const m = /<script type="application\/json" id="report-charts">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(m, "chart data block");
  return JSON.parse(m[1]) as ChartSpec[];
}

type Dataset = { label: string; data: unknown[] };
function datasets(c: ChartSpec): Dataset[] {
  return (c.config.data as { datasets: Dataset[] }).datasets;
}

test("the page inlines Chart.js and loads nothing from anywhere", () => {
  const html = renderReportHtml(fullReportData());
  const lib = plotLibrary();
  assert.equal(lib.name, "Chart.js");
  assert.match(lib.version, /^4\./);
  assert.ok(lib.code.length > 100_000, "the whole bundle");
  assert.ok(html.includes(lib.code.slice(0, 2000)) && html.includes(lib.code.slice(-2000)), "bundle inlined");
  assert.doesNotMatch(html, /<script[^>]*\bsrc\s*=/i);
  assert.doesNotMatch(html, /<link\b/i);
  assert.doesNotMatch(html, /<(img|iframe|object|embed|source|video|audio)\b/i);
  assert.doesNotMatch(html, /\b(src|href|action)\s*=\s*["']?\s*(https?:)?\/\//i);
  assert.doesNotMatch(html, /@import|url\(\s*["']?\s*(https?:)?\/\//i);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  assert.equal(html.match(/<\/script/gi)?.length, 3, "library, chart data, boot script");
});

test("model output is escaped: a <script> in a response stays text", () => {
  const html = renderReportHtml(fullReportData());
  assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;"));
  assert.ok(!html.includes("<script>alert(1)"));
  const d = fullReportData();
  const hostile: ReportData = {
    ...d,
    run: { ...d.run, id: "<b>id</b>", config: { note: "</script><script>x()</script>" } },
    iterations: { ppo: [{ iteration: 1, values: { "x</script><script>y()": 1 } }] },
  };
  const h = renderReportHtml(hostile);
  assert.equal(h.match(/<\/script/gi)?.length, 3);
  assert.ok(h.includes("&lt;b&gt;id&lt;/b&gt;"));
  assert.ok(chartsOf(h).some((c) => c.title.includes("x</script><script>y()")), "the name survives inside the JSON block");
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
});

test("every chart carries its data; both variants share the axes; KL has the bound line", () => {
  const d = fullReportData();
  const charts = chartsOf(renderReportHtml(d));
  const byId = new Map(charts.map((c) => [c.id, c]));
  for (const id of [
    "chart-win-rate",
    "chart-models",
    "chart-curve-pretrain",
    "chart-curve-sft",
    "chart-curve-reward-model",
    "chart-reward-model",
    "chart-over-optimisation",
    "chart-objective-score",
    "chart-gold-score",
    "chart-objective-missing-eos-fraction",
    "chart-objective-kl",
    "chart-loss-policy",
    "chart-loss-value",
    "chart-ptx-loss",
    "chart-timeline",
  ]) {
    assert.ok(byId.has(id), id);
  }
  // The reward-model score is plotted without the missing-EOS penalty, which has a chart of its own.
  const score = datasets(byId.get("chart-objective-score")!);
  assert.deepEqual(score.map((s) => s.label), ["PPO", "PPO-ptx"]);
  assert.deepEqual(score[0].data, d.iterations!.ppo!.map((it) => ({ x: it.iteration, y: it.values["objective/score"] })));
  assert.deepEqual(score[1].data, d.iterations!.ppo_ptx!.map((it) => ({ x: it.iteration, y: it.values["objective/score"] })));
  assert.match(byId.get("chart-objective-score")!.title, /without the missing-EOS penalty/);
  // The headline: win rates with their intervals against the 0.5 line.
  const win = datasets(byId.get("chart-win-rate")!);
  assert.deepEqual(win.map((s) => s.label), ["win rate", "95% interval", "SFT (0.5)"]);
  assert.deepEqual(win[0].data, [d.models.base!.win_rate_vs_sft!.rate, d.models.ppo!.win_rate_vs_sft!.rate, d.models.ppo_ptx!.win_rate_vs_sft!.rate]);
  assert.deepEqual(win[1].data[2], [...d.models.ppo_ptx!.win_rate_vs_sft!.ci95]);
  // Over-optimisation: gold and RM score of each variant against KL.
  const over = datasets(byId.get("chart-over-optimisation")!);
  assert.deepEqual(over.map((s) => s.label), ["PPO: gold score", "PPO: reward-model score", "PPO-ptx: gold score", "PPO-ptx: reward-model score"]);
  assert.deepEqual(over[0].data[1], { x: d.iterations!.ppo![1].values["objective/kl"], y: d.iterations!.ppo![1].values["gold/score"] });
  // Loss curves; the reward model's with the chance line.
  assert.deepEqual(datasets(byId.get("chart-curve-pretrain")!)[0].data, d.curves!.pretrain!.map(([x, y]) => ({ x, y })));
  assert.equal(datasets(byId.get("chart-curve-reward-model")!)[1].label, "chance (ln 2)");
  const kl = datasets(byId.get("chart-objective-kl")!);
  assert.deepEqual(kl.map((s) => s.label), ["PPO", "PPO-ptx", "bound (ppo.kl.max_mean_kl = 10)"]);
  assert.deepEqual(kl[2].data, [{ x: 1, y: 10 }, { x: 5, y: 10 }]);
  assert.deepEqual(datasets(byId.get("chart-ptx-loss")!).map((s) => s.label), ["PPO-ptx"], "plain PPO has no ptx loss");
  assert.deepEqual(datasets(byId.get("chart-loss-value")!)[0].data[1], { x: 2, y: 0.5 });
  assert.deepEqual(datasets(byId.get("chart-reward-model")!)[0].data, [0.72, 0.74]);
  assert.deepEqual(datasets(byId.get("chart-models")!).map((s) => s.label), ["Base", "SFT", "PPO", "PPO-ptx"]);
  assert.deepEqual((byId.get("chart-models")!.config.data as { labels: string[] }).labels.slice(0, 2), ["gold helpfulness", "exact match"]);
  // The timeline: a floating bar per span, one dataset per service, rows indented by depth.
  const timeline = byId.get("chart-timeline")!;
  assert.deepEqual(datasets(timeline).map((s) => s.label), ["ppo-coordinator", "policy"]);
  assert.deepEqual(datasets(timeline)[0].data, [[0, 5000], [0, 1200], null, [2000, 3500], [3500, 5000]]);
  assert.deepEqual(datasets(timeline)[1].data, [null, null, [5, 1195], null, null]);
  assert.deepEqual((timeline.config.data as { labels: string[] }).labels, ["ppo.iteration (ppo-coordinator)", "\u2003ppo.generate (ppo-coordinator)", "\u2003\u2003PolicyService/Generate (policy)", "\u2003ppo.update (ppo-coordinator)", "\u2003ppo.update (ppo-coordinator)"]);
  assert.equal((timeline.config.options as { indexAxis: string }).indexAxis, "y");
  assert.equal(timeline.title, "Timeline of one PPO iteration (PPO-ptx iteration 5)");
  // The metrics without a chart of their own are plotted in groups by namespace, each headed by what it measures.
  for (const m of ["objective/reward", "objective/beta", "policy/approx_kl", "policy/clip_fraction", "timing/generate_ms"]) assert.ok(charts.some((c) => c.title === m), m);
  const html = renderReportHtml(d);
  assert.match(html, /<h3>The policy update: clipping, approximate KL, entropy, gradient norm <span class="muted">\(policy\/…\)<\/span><\/h3>/);
  assert.ok(html.indexOf("(objective/…)") < html.indexOf("(policy/…)") && html.indexOf("(policy/…)") < html.indexOf("(timing/…)"));
});

test("the boot script creates one Chart per spec on its canvas", () => {
  const html = renderReportHtml(fullReportData());
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
  const boot = scripts[scripts.length - 1];
  const json = /id="report-charts">([\s\S]*?)<\/script>/.exec(html)![1];
  const canvases = new Set([...html.matchAll(/<canvas id="([^"]+)">/g)].map((m) => m[1]));
  const created: string[] = [];
  class Chart {
    static defaults = { font: {} as Record<string, unknown> };
    constructor(el: { id: string }, config: { type: string }) {
      assert.ok(["line", "bar", "scatter"].includes(config.type));
      created.push(el.id);
    }
  }
  const document = { getElementById: (id: string) => (id === "report-charts" ? { textContent: json } : canvases.has(id) ? { id } : null) };
  runInNewContext(boot, { document, Chart, JSON });
  assert.deepEqual(created, chartsOf(html).map((c) => c.id));
  assert.deepEqual(new Set(created), canvases);
});

test("sections are left out when their data is absent", () => {
  const html = renderReportHtml(minimalReportData());
  for (const id of ["models", "reward-model", "iterations", "samples", "timeline"]) assert.ok(!html.includes(`<section id="${id}">`), id);
  for (const id of ["acceptance", "run"]) assert.ok(html.includes(`<section id="${id}">`), id);
  assert.deepEqual(chartsOf(html), []);
  assert.match(html, /11 of 11 checks failed/);
  assert.match(html, /0 of 11 checks passed\. Not met — Ranked pairs of different responses whose gold scores tie \(a coin toss for any labeler\): not measured in this run;/);
  // Where the time went: the phases summed by name, as shares of the iteration.
  const full = renderReportHtml(fullReportData());
  assert.match(full, /<tr><td>ppo\.generate<\/td><td class="num">1<\/td><td class="num">1200<\/td><td class="num">24\.0%<\/td><\/tr>/);
  assert.match(full, /<tr><td>ppo\.update<\/td><td class="num">2<\/td><td class="num">3000<\/td><td class="num">60\.0%<\/td><\/tr>/);
  assert.match(full, /<canvas id="chart-timeline">/);
  const noTimeline = renderReportHtml({ ...fullReportData(), timeline: undefined });
  assert.ok(!noTimeline.includes('<section id="timeline">'));
  assert.ok(!chartsOf(noTimeline).some((c) => c.id === "chart-timeline"));
  const onlyPtx = renderReportHtml({ ...fullReportData(), iterations: { ppo_ptx: fullReportData().iterations!.ppo_ptx } });
  assert.deepEqual(datasets(chartsOf(onlyPtx).find((c) => c.id === "chart-objective-score")!).map((s) => s.label), ["PPO-ptx"]);
});

test("the page shows the summary, the acceptance table, the models and the config", () => {
  const html = renderReportHtml(fullReportData());
  assert.match(html, /<title>RLHF run report — demo-1<\/title>/);
  assert.match(html, /all checks passed/);
  assert.match(html, /PASS/);
  assert.match(html, /67\.5% <span class="muted">\[/);
  assert.match(html, /<p class="summary">All 11 checks that apply passed\.<\/p>/);
  assert.match(html, /<td class="num">within 0\.730 ± 0\.030<\/td>/);
  assert.match(html, /<th>total<\/th><td class="num">15 min 0 s<\/td>/);
  assert.match(html, /&quot;max_mean_kl&quot;: 10/);
  assert.match(html, /RM held-out accuracy|held-out pairwise accuracy/);
  // Per task family: each family's rows, PPO-ptx's win rate and ties there, SFT's without.
  assert.match(html, /<h3>By task family<\/h3>/);
  assert.match(html, /<th rowspan="2">count_words<br><span class="muted">100 prompts<\/span><\/th><td>SFT<\/td>/);
  assert.match(html, /<td>PPO-ptx<\/td><td class="num">70\.0%<\/td><td class="num">35\.0%<\/td><td class="num">0\.800<\/td><td class="num">37\.5%<\/td>/);
  assert.match(html, /<td>SFT<\/td><td class="num">—<\/td><td class="num">—<\/td><td class="num">0\.200<\/td>/);
});

test("the family table is left out when no model has per-family figures", () => {
  const html = renderReportHtml(minimalReportData());
  assert.doesNotMatch(html, /By task family/);
});

test("a run on users' data: the gold-answer metrics read n/a with the reasons, the win-rate check N/A, and the charts leave them out", () => {
  const html = renderReportHtml(noGoldReportData());
  assert.match(html, /all checks passed/, "the checks that apply passed");
  assert.match(html, /ppo_ptx_win_rate: does not apply: the held-out prompts come from a file and have no gold answers/);
  assert.match(html, /<td class="muted">N\/A<\/td>/);
  assert.match(html, /Not applicable to this run: win_rate_vs_sft \(/);
  assert.match(html, /n\/a: the rankings come from a file/);
  const charts = chartsOf(html);
  const models = charts.find((c) => c.id === "chart-models")!;
  assert.deepEqual((models.config.data as { labels: string[] }).labels, ["EOS rate"], "only what was measured");
  const rm = charts.find((c) => c.id === "chart-reward-model")!;
  assert.deepEqual(datasets(rm)[0].data, [0.72], "no labeler-agreement bar");
  assert.ok(!charts.some((c) => c.id === "chart-win-rate"), "no win rates to plot");
});
