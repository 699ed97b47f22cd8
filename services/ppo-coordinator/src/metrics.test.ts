// The training signals of run metrics events as Prometheus series: the recorder RunStore.emit
// calls, with telemetry started as in main.ts and the endpoint scraped over HTTP.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startTelemetry, findSamples, parsePrometheusText, TRAINING_SIGNALS, type PrometheusSample } from "@rlhf/telemetry";
import { ppoCoordinator } from "@rlhf/proto";
import { resolveRunConfig } from "@rlhf/run-config";
import { recordRunMetrics, stageLabel } from "./metrics";

const telemetry = startTelemetry({ serviceName: "ppo-coordinator", env: {} });
const { Stage } = ppoCoordinator;

async function scrape(): Promise<PrometheusSample[]> {
  const ep = await telemetry.serveMetrics({ host: "127.0.0.1", port: 0 });
  const text = await (await fetch(ep.url)).text();
  await ep.close();
  return parsePrometheusText(text);
}

const value = (samples: PrometheusSample[], name: string, labels: Record<string, string>): number | undefined => {
  const found = findSamples(samples, name, labels);
  assert.ok(found.length <= 1, `${name}${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]?.value;
};

test("PPO metrics events become gauges with run id, stage and variant, with the KL bound beside KL", async () => {
  const fixed = resolveRunConfig({ ppo: { kl: { max_mean_kl: 7 } } });
  const adaptive = resolveRunConfig({ ppo: { kl: { controller: "adaptive", target: 3, horizon: 100 } } });
  // Every name ppo-iteration.ts emits per iteration, plus the variant tag stages/ppo.ts adds.
  const iteration = (kl: number, ptx: 0 | 1) => ({
    "objective/reward": 0.5, "objective/score": 0.4, "objective/kl": kl, "objective/kl_per_token": kl / 10, "objective/beta": 0.02,
    "objective/non_score_reward": -0.01, "objective/missing_eos_fraction": 0.25, "loss/policy": -0.03, "loss/value": 0.7,
    "policy/clip_fraction": 0.1, "policy/approx_kl": 0.001, "policy/entropy": 2.5, "policy/grad_norm": 0.9, "value/clip_fraction": 0.2,
    "value/explained_variance": 0.3, "response/length_mean": 12, "timing/generate_ms": 1200, "timing/score_ref_evaluate_ms": 300,
    "timing/advantages_ms": 2, "timing/update_ms": 900, "timing/iteration_ms": 2410, ...(ptx ? { "ptx/loss": 3.1 } : {}), "run/variant_ptx": ptx,
  });
  const recorded = recordRunMetrics("run-a", { stage: Stage.STAGE_PPO, step: 1, values: iteration(1.5, 1) }, fixed);
  recordRunMetrics("run-a", { stage: Stage.STAGE_PPO, step: 2, values: iteration(2.5, 1) }, fixed);
  recordRunMetrics("run-a", { stage: Stage.STAGE_PPO, step: 3, values: iteration(0.75, 0) }, fixed);
  recordRunMetrics("run-b", { stage: Stage.STAGE_PPO, step: 1, values: { ...iteration(4, 1), "objective/kl": Number.NaN, "eval/ppo/win_rate_vs_sft": 0.6 } }, adaptive);
  // Everything emitted per iteration is registered (nothing silently dropped), except the variant tag.
  const registered = new Set(TRAINING_SIGNALS.map((s) => s.signal));
  assert.deepEqual(Object.keys(iteration(1, 1)).filter((k) => !registered.has(k)), ["run/variant_ptx"]);
  assert.ok(recorded.includes("rlhf.objective.kl") && recorded.includes("rlhf.objective.kl_bound") && !recorded.includes("rlhf.objective.kl_target"));

  const s = await scrape();
  const ptx = { rlhf_run_id: "run-a", rlhf_stage: "ppo", rlhf_variant: "ppo_ptx", service_name: "ppo-coordinator" };
  assert.equal(value(s, "rlhf_objective_kl", ptx), 2.5, "the latest iteration's value");
  assert.equal(value(s, "rlhf_objective_kl", { ...ptx, rlhf_variant: "ppo" }), 0.75, "plain PPO is its own series");
  assert.equal(value(s, "rlhf_objective_kl_bound", ptx), 7);
  assert.equal(value(s, "rlhf_objective_kl_target", ptx), undefined, "no target with the fixed controller");
  for (const [name, v] of [["rlhf_objective_reward", 0.5], ["rlhf_objective_beta", 0.02], ["rlhf_loss_policy", -0.03], ["rlhf_loss_value", 0.7], ["rlhf_policy_clip_fraction", 0.1], ["rlhf_ptx_loss", 3.1], ["rlhf_timing_generate_ms", 1200], ["rlhf_timing_update_ms", 900]] as const) {
    assert.equal(value(s, name, ptx), v, name);
  }
  assert.equal(value(s, "rlhf_ptx_loss", { ...ptx, rlhf_variant: "ppo" }), undefined, "plain PPO has no ptx loss");
  const b = { rlhf_run_id: "run-b", rlhf_stage: "ppo", rlhf_variant: "ppo_ptx" };
  assert.equal(value(s, "rlhf_objective_kl", b), undefined, "a non-finite value is not exported");
  assert.equal(value(s, "rlhf_objective_kl_target", b), 3);
  assert.equal(value(s, "rlhf_objective_kl_bound", b), 10, "the default bound");
  assert.ok(!s.some((x) => x.name.startsWith("rlhf_eval")), "names outside the registry are not exported");
});

test("stages before PPO carry their stage and no variant", async () => {
  const cfg = resolveRunConfig({});
  recordRunMetrics("run-c", { stage: Stage.STAGE_SFT, step: 4, values: { "loss/lm": 2.2, "optim/learning_rate": 1e-4 } }, cfg);
  recordRunMetrics("run-c", { stage: Stage.STAGE_PRETRAIN, step: 9, values: { "loss/lm": 4.4 } }, cfg);
  recordRunMetrics("run-c", { stage: Stage.STAGE_REWARD_MODEL, step: 2, values: { "loss/reward_model": 0.6, "reward_model/accuracy": 0.7 } }, cfg);
  const s = await scrape();
  assert.equal(value(s, "rlhf_loss_lm", { rlhf_run_id: "run-c", rlhf_stage: "sft" }), 2.2);
  assert.equal(value(s, "rlhf_loss_lm", { rlhf_run_id: "run-c", rlhf_stage: "pretrain" }), 4.4);
  assert.equal(value(s, "rlhf_reward_model_accuracy", { rlhf_run_id: "run-c", rlhf_stage: "reward_model" }), 0.7);
  assert.ok(findSamples(s, "rlhf_loss_lm", { rlhf_run_id: "run-c" }).every((x) => x.labels.rlhf_variant === undefined));
  assert.equal(value(s, "rlhf_objective_kl_bound", { rlhf_run_id: "run-c" }), undefined, "the bound only comes with PPO events");
  assert.equal(stageLabel(Stage.STAGE_REWARD_MODEL), "reward_model");
});
