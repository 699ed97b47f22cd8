import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "@rlhf/errors";
import { REPORT_SCHEMA_VERSION, reportDataFromJson, reportJson, validateReportData } from "./json";
import { fullReportData, minimalReportData, noGoldReportData } from "./testing/fixture";
import { type ReportData } from "./types";

const roundTrip = (d: ReportData): ReportData => reportDataFromJson(JSON.parse(JSON.stringify(reportJson(d))));

test("report.json holds the data plus acceptance and the KL summary, in a fixed order", () => {
  const j = reportJson(fullReportData());
  assert.deepEqual(Object.keys(j), ["schema_version", "run", "acceptance", "models", "reward_model", "kl", "iterations", "samples", "curves", "timeline"]);
  assert.equal(j.schema_version, REPORT_SCHEMA_VERSION);
  assert.equal(j.acceptance.passed, true);
  assert.equal(j.acceptance.checks.length, 11);
  assert.equal(j.acceptance.summary, "All 11 checks that apply passed.");
  assert.deepEqual(j.kl, { max_mean_kl: 10, max_observed: { ppo: 2.5, ppo_ptx: 2.75 }, within_bound: true });
  assert.equal(j.models.ppo_ptx!.win_rate_vs_sft!.rate, 0.675);
});

test("report.json round trip: reading it back gives the same data", () => {
  for (const d of [fullReportData(), minimalReportData(), noGoldReportData()]) assert.deepEqual(roundTrip(d), d);
  const again = reportJson(roundTrip(fullReportData()));
  assert.deepEqual(again, reportJson(fullReportData()));
});

test("absent data: its sections are left out, and the checks that need it fail", () => {
  const j = reportJson(minimalReportData());
  assert.deepEqual(Object.keys(j), ["schema_version", "run", "acceptance", "models"]);
  assert.equal(j.acceptance.passed, false);
  assert.ok(j.acceptance.checks.every((c) => !c.passed && c.value === null));
});

test("users' data: metrics without gold answers are null with a reason; their check does not apply and does not fail the run", () => {
  const j = reportJson(noGoldReportData());
  assert.deepEqual(Object.keys(j), ["schema_version", "run", "not_applicable", "acceptance", "models", "reward_model", "kl", "iterations", "samples", "curves", "timeline"]);
  const win = j.acceptance.checks.find((c) => c.name === "ppo_ptx_win_rate")!;
  assert.equal(win.value, null);
  assert.equal(win.passed, false);
  assert.match(win.not_applicable ?? "", /no gold answers/);
  const notApplicable = ["gold_ties", "labeler_agreement", "ppo_ptx_win_rate", "ppo_ptx_win_rate_lower_bound", "ppo_ptx_helpfulness_above_sft", "ppo_ptx_exact_match_above_sft"];
  assert.deepEqual(j.acceptance.checks.filter((c) => c.not_applicable !== null).map((c) => c.name), notApplicable);
  assert.ok(j.acceptance.checks.filter((c) => !notApplicable.includes(c.name)).every((c) => c.passed), "the other checks apply (and pass here)");
  assert.match(j.acceptance.summary, /^All 5 checks that apply passed\. Not applicable: gold_ties \(/);
  assert.equal(j.acceptance.passed, true, "every check that applies passed");
  assert.equal(j.models.ppo_ptx!.gold_helpfulness, null);
  assert.equal(j.reward_model!.labeler_agreement, null);
  // A failing check that applies still fails the whole.
  const worse = noGoldReportData();
  const failing = reportJson({ ...worse, reward_model: { ...worse.reward_model!, heldout_accuracy: 0.5 } });
  assert.equal(failing.acceptance.passed, false);
  assert.throws(() => reportJson({ ...worse, not_applicable: { gold_helpfulness: " " } }), (e: unknown) => e instanceof InvalidArgumentError && e.field === "not_applicable.gold_helpfulness");
  assert.throws(() => reportJson({ ...worse, not_applicable: { bleu: "no" } as ReportData["not_applicable"] }), (e: unknown) => e instanceof InvalidArgumentError && e.field === "not_applicable.bleu");
  // A version 1 or 2 report.json (no exact match, no gold ties, no curves) still reads.
  const { curves: _curves, ...v2 } = reportJson(fullReportData());
  const old = reportDataFromJson({ ...v2, schema_version: 2, models: Object.fromEntries(Object.entries(v2.models).map(([k, m]) => [k, { ...m, exact_match: undefined }])) });
  assert.equal(old.models.sft!.exact_match, null);
  assert.equal(reportDataFromJson({ ...reportJson(fullReportData()), schema_version: 1 }).models.sft!.exact_match, 0.3);
});

test("bad data is an InvalidArgumentError naming the field", () => {
  const d = fullReportData();
  const bad = (patch: unknown, field: string) =>
    assert.throws(
      () => reportJson({ ...d, ...(patch as object) } as ReportData),
      (e: unknown) => e instanceof InvalidArgumentError && e.field === field,
      field,
    );
  bad({ models: { ...d.models, ppo_ptx: { ...d.models.ppo_ptx!, eos_rate: 1.2 } } }, "models.ppo_ptx.eos_rate");
  bad({ models: { gpt4: d.models.sft } }, "models.gpt4");
  const family = d.models.ppo_ptx!.by_family!.count_words;
  bad({ models: { ...d.models, ppo_ptx: { ...d.models.ppo_ptx!, by_family: { count_words: { ...family, exact_match: 1.5 } } } } }, "models.ppo_ptx.by_family.count_words.exact_match");
  bad({ models: { ...d.models, ppo_ptx: { ...d.models.ppo_ptx!, by_family: { count_words: { ...family, prompts: -1 } } } } }, "models.ppo_ptx.by_family.count_words.prompts");
  bad({ models: { ...d.models, ppo_ptx: { ...d.models.ppo_ptx!, by_family: { count_words: { ...family, extra: 1 } } } } }, "models.ppo_ptx.by_family.count_words.extra");
  bad({ iterations: { ppo: [{ iteration: 1, values: { "objective/kl": Number.NaN } }] } }, "iterations.ppo[0].values.objective/kl");
  bad({ iterations: { ppo: [{ iteration: 1, values: {} , extra: 1 }] } }, "iterations.ppo[0].extra");
  bad({ samples: [{ prompt: "p", gold: null, responses: { sft: 3 } }] }, "samples[0].responses.sft");
  bad({ reward_model: { ...d.reward_model!, pairs: { train: 1.5, heldout: 1 } } }, "reward_model.pairs.train");
  bad({ timeline: [{ name: "x", service: "s", startMs: -1, durationMs: 1, depth: 0 }] }, "timeline[0].startMs");
  bad({ timeline: [{ name: "x", service: "s", startMs: 0, durationMs: 1, depth: 0, attributes: { "rlhf.iteration": [1] } }] }, "timeline[0].attributes.rlhf.iteration");
  bad({ run: { ...d.run, id: 7 } }, "run.id");
  assert.throws(() => validateReportData([]), (e: unknown) => e instanceof InvalidArgumentError && e.field === "report");
  bad({ curves: { pretrain: [[1, 2, 3]] } }, "curves.pretrain[0]");
  bad({ curves: { warmup: [] } }, "curves.warmup");
  assert.throws(() => reportDataFromJson({ ...reportJson(d), schema_version: 4 }), /schema_version: must be one of 1, 2, 3, got 4/);
});
