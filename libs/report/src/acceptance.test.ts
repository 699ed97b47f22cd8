import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "@rlhf/errors";
import { acceptanceChecks, acceptanceSummary, checkDigits, klSummary, winRate } from "./acceptance";
import { fullReportData } from "./testing/fixture";
import { type ModelEvaluation, type ReportData } from "./types";

function byName(data: ReportData): Record<string, { value: number | null; threshold: number | null; passed: boolean }> {
  return Object.fromEntries(acceptanceChecks(data).map((c) => [c.name, c]));
}

function withModels(d: ReportData, patch: Partial<Record<"sft" | "ppo" | "ppo_ptx", Partial<ModelEvaluation>>>): ReportData {
  const models = { ...d.models };
  for (const [k, v] of Object.entries(patch) as ["sft" | "ppo" | "ppo_ptx", Partial<ModelEvaluation>][]) models[k] = { ...models[k]!, ...v };
  return { ...d, models };
}

test("the fabricated run passes every check, in the documented order", () => {
  const checks = acceptanceChecks(fullReportData());
  assert.deepEqual(
    checks.map((c) => c.name),
    [
      "gold_ties",
      "labeler_agreement",
      "rm_learned",
      "rm_heldout_accuracy",
      "ppo_ptx_win_rate",
      "ppo_ptx_win_rate_lower_bound",
      "ppo_ptx_helpfulness_above_sft",
      "ppo_ptx_exact_match_above_sft",
      "ppo_pretrain_loss_above_sft",
      "ptx_pretrain_loss_closer_to_sft",
      "kl_within_bound",
    ],
  );
  assert.deepEqual(checks.filter((c) => !c.passed).map((c) => c.name), []);
  const c = byName(fullReportData());
  assert.equal(c.rm_heldout_accuracy.value, 0.72);
  assert.equal(c.ppo_ptx_win_rate.value, 0.675);
  assert.equal(c.kl_within_bound.value, 2.75);
  assert.equal(c.kl_within_bound.threshold, 10);
  assert.match(acceptanceSummary(checks), /^All 11 checks that apply passed\.$/);
});

test("reward model accuracy: 0.70 passes, just below fails; a model at chance, or on too few pairs, did not learn", () => {
  const d = fullReportData();
  const at = (acc: number, heldout = 288) => byName({ ...d, reward_model: { ...d.reward_model!, heldout_accuracy: acc, pairs: { train: 100, heldout } } });
  assert.equal(at(0.7).rm_heldout_accuracy.passed, true);
  assert.equal(at(0.6999).rm_heldout_accuracy.passed, false);
  assert.equal(at(0.7).rm_learned.passed, true);
  assert.equal(at(0.52).rm_learned.passed, false, "at chance");
  // 11 of 18 held-out pairs (61%): the interval [0.39, 0.80] does not exclude chance.
  assert.equal(at(11 / 18, 18).rm_learned.passed, false, "too few pairs to tell");
  assert.ok(at(11 / 18, 18).rm_learned.value! < 0.5);
  assert.equal(byName({ ...d, reward_model: undefined }).rm_heldout_accuracy.passed, false);
  assert.equal(byName({ ...d, reward_model: undefined }).rm_heldout_accuracy.value, null);
});

test("PPO-ptx win rate: 0.65 passes, just below fails, absent fails; its interval must clear 0.5", () => {
  const d = fullReportData();
  const at = (rate: number, ci95: [number, number] = [0.6, 0.7]) => byName(withModels(d, { ppo_ptx: { win_rate_vs_sft: { rate, comparisons: 200, ci95 } } }));
  assert.equal(at(0.65).ppo_ptx_win_rate.passed, true);
  assert.equal(at(0.6499).ppo_ptx_win_rate.passed, false);
  assert.equal(at(0.65, [0.5, 0.8]).ppo_ptx_win_rate_lower_bound.passed, false, "a lower end at 0.5 is not above it");
  assert.equal(at(0.65, [0.501, 0.8]).ppo_ptx_win_rate_lower_bound.passed, true);
  assert.equal(byName(withModels(d, { ppo_ptx: { win_rate_vs_sft: null } })).ppo_ptx_win_rate.passed, false);
  const { ppo_ptx: _drop, ...rest } = d.models;
  assert.equal(byName({ ...d, models: rest }).ppo_ptx_win_rate.value, null);
});

test("gold ties at most 20%; labelers within 73% ± 3%; both do not apply without simulated labelers", () => {
  const d = fullReportData();
  const rm = (patch: Partial<NonNullable<ReportData["reward_model"]>>) => byName({ ...d, reward_model: { ...d.reward_model!, ...patch } });
  assert.equal(rm({ gold_tie_share: 0.2 }).gold_ties.passed, true);
  assert.equal(rm({ gold_tie_share: 0.21 }).gold_ties.passed, false);
  assert.equal(rm({ labeler_agreement: 0.7 }).labeler_agreement.passed, true);
  assert.equal(rm({ labeler_agreement: 0.76 }).labeler_agreement.passed, true);
  assert.equal(rm({ labeler_agreement: 0.69 }).labeler_agreement.passed, false);
  assert.equal(rm({ labeler_agreement: 0.77 }).labeler_agreement.passed, false);
  const noLabelers = acceptanceChecks({ ...d, not_applicable: { labeler_agreement: "from a file" }, reward_model: { ...d.reward_model!, labeler_agreement: null, gold_tie_share: null } });
  for (const name of ["gold_ties", "labeler_agreement"]) assert.equal(noLabelers.find((c) => c.name === name)!.not_applicable, "from a file");
});

test("PPO-ptx above SFT in gold helpfulness and exact match; plain PPO pays the alignment tax", () => {
  const d = fullReportData(); // sft helpfulness 0.5, exact 0.3, loss 3.3
  const c = (patch: Parameters<typeof withModels>[1]) => byName(withModels(d, patch));
  assert.equal(c({ ppo_ptx: { gold_helpfulness: 0.5 } }).ppo_ptx_helpfulness_above_sft.passed, false, "equal is not above");
  assert.equal(c({ ppo_ptx: { exact_match: 0.31 } }).ppo_ptx_exact_match_above_sft.passed, true);
  assert.equal(c({ ppo_ptx: { exact_match: 0.29 } }).ppo_ptx_exact_match_above_sft.passed, false);
  assert.equal(c({ ppo: { pretrain_validation_loss: 3.2 } }).ppo_pretrain_loss_above_sft.passed, false);
  const summary = acceptanceSummary(acceptanceChecks(withModels(d, { ppo_ptx: { exact_match: 0.29 } })));
  assert.match(summary, /^10 of 11 checks passed\. Not met — PPO-ptx's exact match is above SFT's: 0\.29, needed > 0\.3\.$/);
});

test("alignment tax: PPO-ptx must be strictly closer to SFT's pretraining loss, on either side", () => {
  const d = fullReportData(); // sft 3.3
  const check = (ppo: number, ptx: number) => byName(withModels(d, { ppo: { pretrain_validation_loss: ppo }, ppo_ptx: { pretrain_validation_loss: ptx } })).ptx_pretrain_loss_closer_to_sft;
  assert.equal(check(3.6, 3.4).passed, true);
  assert.ok(Math.abs(check(3.6, 3.4).value! - 0.1) < 1e-12);
  assert.ok(Math.abs(check(3.6, 3.4).threshold! - 0.3) < 1e-12);
  assert.equal(check(3.5, 3.5).passed, false, "equal distance is not closer");
  assert.equal(check(3.4, 3.0).passed, false, "ptx far below SFT is farther than PPO a little above");
  assert.equal(check(3.0, 3.35).passed, true, "PPO below SFT counts by distance too");
  const { ppo: _drop, ...noPpo } = d.models;
  const c = byName({ ...d, models: noPpo }).ptx_pretrain_loss_closer_to_sft;
  assert.deepEqual([c.threshold, c.passed], [null, false]);
});

test("KL: under the bound passes, at the bound fails, nothing observed fails", () => {
  const d = fullReportData(); // max observed 2.75
  assert.equal(byName({ ...d, kl: { max_mean_kl: 2.7501 } }).kl_within_bound.passed, true);
  assert.equal(byName({ ...d, kl: { max_mean_kl: 2.75 } }).kl_within_bound.passed, false);
  assert.equal(klSummary({ ...d, kl: { max_mean_kl: 2.75 } })!.within_bound, false);
  assert.deepEqual(klSummary(d), { max_mean_kl: 10, max_observed: { ppo: 2.5, ppo_ptx: 2.75 }, within_bound: true });
  assert.equal(byName({ ...d, iterations: undefined }).kl_within_bound.value, null);
  assert.equal(byName({ ...d, iterations: undefined }).kl_within_bound.passed, false);
  assert.equal(byName({ ...d, kl: undefined }).kl_within_bound.passed, false);
  assert.equal(klSummary({ ...d, kl: undefined }), undefined);
});

test("winRate: rate counts ties as half, the interval is Wilson's", () => {
  const w = winRate(8, 0, 10);
  assert.equal(w.rate, 0.8);
  // Wilson 95% for 8/10: [0.4902, 0.9433] (worked out from the formula by hand).
  assert.ok(Math.abs(w.ci95[0] - 0.4902) < 1e-4 && Math.abs(w.ci95[1] - 0.9433) < 1e-4, String(w.ci95));
  assert.equal(winRate(5, 2, 10).rate, 0.6);
  const all = winRate(10, 0, 10);
  assert.equal(all.ci95[1], 1);
  assert.ok(all.ci95[0] > 0.69 && all.ci95[0] < 0.73);
  assert.throws(() => winRate(1, 0, 0), InvalidArgumentError);
  assert.throws(() => winRate(6, 5, 10), /exceed/);
  assert.throws(() => winRate(1.5, 0, 10), /wins: must be an integer/);
});

test("a value just short of its bound is written with the digits that tell it from the bound", () => {
  const d = fullReportData();
  const short = { ...d, reward_model: { ...d.reward_model!, heldout_accuracy: 0.6996960486322188 } };
  const c = byName(short).rm_heldout_accuracy;
  assert.equal(c.passed, false);
  assert.match(acceptanceSummary(acceptanceChecks(short)), /Reward model held-out pairwise accuracy: 0\.6997, needed >= 0\.7\b/);
  assert.equal(checkDigits({ value: 0.6997, threshold: 0.7, comparison: ">=" }), 4);
  assert.equal(checkDigits({ value: 0.72, threshold: 0.7, comparison: ">=" }), 3);
  assert.equal(checkDigits({ value: 0.7, threshold: 0.7, comparison: ">=" }), 3);
  assert.equal(checkDigits({ value: 0.75995, threshold: 0.73, tolerance: 0.03, comparison: "within" }), 5);
});
