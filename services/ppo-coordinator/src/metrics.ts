/**
 * The training signals as OpenTelemetry gauges: every metrics event a run emits (RunStore.emit,
 * the one place) sets the registered gauge of each value it carries, `objective/kl` ->
 * `rlhf.objective.kl` (Prometheus `rlhf_objective_kl`), with attributes `rlhf.run_id`,
 * `rlhf.stage` (pretrain, sft, rankings, reward_model, ppo) and, in PPO, `rlhf.variant` (ppo_ptx or ppo).
 * PPO events also set `rlhf.objective.kl_bound` (the run's `ppo.kl.max_mean_kl`) and, with the
 * adaptive controller, `rlhf.objective.kl_target`, so a dashboard can draw KL against them.
 * Values whose name the registry (@rlhf/telemetry TRAINING_SIGNALS) lacks are not exported.
 */
import { ppoCoordinator } from "@rlhf/proto";
import { ATTR, TRAINING_SIGNALS, registeredGauge, signalInstrumentName } from "@rlhf/telemetry";
import type { RunConfig } from "@rlhf/run-config";

const REGISTERED = new Set(TRAINING_SIGNALS.map((s) => s.signal as string));

/** `rlhf.stage` of a stage: STAGE_REWARD_MODEL -> "reward_model". */
export function stageLabel(stage: ppoCoordinator.Stage): string {
  return ppoCoordinator.stageToJSON(stage).replace(/^STAGE_/, "").toLowerCase();
}

/** The PPO variant a PPO metrics event belongs to (recipe/stages/ppo.ts tags it with `run/variant_ptx`). */
function variantOf(values: Record<string, number>): string {
  return values["run/variant_ptx"] === 0 ? "ppo" : "ppo_ptx";
}

/**
 * Records one run's metrics event as gauges; returns the names recorded (registered ones only).
 * Non-finite values are skipped.
 */
export function recordRunMetrics(runId: string, m: ppoCoordinator.RunMetrics, config: RunConfig): string[] {
  const ppo = m.stage === ppoCoordinator.Stage.STAGE_PPO;
  const attrs: Record<string, string> = { [ATTR.runId]: runId, [ATTR.stage]: stageLabel(m.stage) };
  if (ppo) attrs[ATTR.variant] = variantOf(m.values);
  const values: Record<string, number> = { ...m.values };
  if (ppo) {
    values["objective/kl_bound"] = config.ppo.kl.max_mean_kl;
    if (config.ppo.kl.controller === "adaptive" && config.ppo.kl.target !== null) values["objective/kl_target"] = config.ppo.kl.target;
  }
  const recorded: string[] = [];
  for (const [signal, v] of Object.entries(values)) {
    if (!REGISTERED.has(signal) || !Number.isFinite(v)) continue;
    const name = signalInstrumentName(signal);
    registeredGauge(name).record(v, attrs);
    recorded.push(name);
  }
  return recorded;
}
