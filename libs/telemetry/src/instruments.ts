/**
 * The registry of every OpenTelemetry instrument the platform records: one list that the code,
 * the docs and the Grafana dashboard (deploy/observability/grafana/rlhf-dashboard.json) are
 * checked against. Pure data; no OpenTelemetry import.
 *
 * Names follow ../shared/STYLE.md: training signals keep their run-event names (`objective/kl`)
 * as `rlhf.` + name with `/` -> `.` (`rlhf.objective.kl`, Prometheus `rlhf_objective_kl`); RPC
 * latency is the semantic-convention histogram `rpc.server.duration`.
 *
 * Two instruments are created outside this library, which they cannot import (it would load
 * gRPC too early, or form a package cycle): `rpc.server.duration` and `rlhf.queue.*` in
 * @rlhf/grpc-kit, `rlhf.tensor.*` in @rlhf/compute. Their entries here are checked against what
 * a real server exports (metrics.test.ts and e2e/src/metrics.test.ts).
 */

/** How an instrument is created; what Prometheus shows follows from it. */
export type InstrumentKind =
  /** Monotonic sum; Prometheus `<name>_total` (counter). */
  | "counter"
  /** Explicit-bucket histogram; Prometheus `<name>_bucket`, `<name>_sum`, `<name>_count`. */
  | "histogram"
  /** Synchronous last-value gauge; Prometheus `<name>` (gauge). */
  | "gauge"
  /** Gauge read by a callback at collection time; Prometheus `<name>` (gauge). */
  | "observable_gauge";

/** One registered instrument. */
export interface InstrumentSpec {
  /** OpenTelemetry instrument name. */
  name: string;
  kind: InstrumentKind;
  /** UCUM unit (`ms`, `By`, `{token}`, `1` for ratios and losses). */
  unit: string;
  description: string;
  /** Attribute keys recorded with it (Prometheus labels: `.` -> `_`). */
  attributes: readonly string[];
  /** Which code records it. */
  recordedBy: string;
  /** For training signals: the run-event metric name (`objective/kl`). */
  signal?: string;
}

/** Attribute keys, in one place. */
export const ATTR = {
  rpcSystem: "rpc.system",
  rpcService: "rpc.service",
  rpcMethod: "rpc.method",
  rpcStatusCode: "rpc.grpc.status_code",
  queue: "rlhf.queue",
  operation: "rlhf.operation",
  backend: "rlhf.backend",
  runId: "rlhf.run_id",
  stage: "rlhf.stage",
  variant: "rlhf.variant",
} as const;

/**
 * Values of `rlhf.operation` on `rlhf.tokens`: what the tokens went through.
 * generate: new tokens sampled by the policy; evaluate: tokens of the sequences the policy and
 * critic scored; sft: training tokens of SFT / pretraining steps; ppo_update: tokens of PPO
 * minibatch sequences; score: tokens the reward model read; reward_train: reward-model training
 * tokens; logprobs: tokens the reference model read; ptx: pretraining tokens pretrain-mix took
 * gradients on.
 */
export const TOKEN_OPERATIONS = ["generate", "evaluate", "sft", "ppo_update", "score", "reward_train", "logprobs", "ptx"] as const;
/** One of {@link TOKEN_OPERATIONS}. */
export type TokenOperation = (typeof TOKEN_OPERATIONS)[number];

/** `rlhf.` + a run-event metric name with `/` -> `.` (`objective/kl` -> `rlhf.objective.kl`). */
export function signalInstrumentName(signal: string): string {
  return `rlhf.${signal.replace(/\//g, ".")}`;
}

const RUN_ATTRS = [ATTR.runId, ATTR.stage, ATTR.variant] as const;

/** The coordinator's training signals: run-event name, unit, description. */
const SIGNALS: readonly [signal: string, unit: string, description: string][] = [
  ["objective/reward", "1", "PPO: mean sequence reward before the KL term (score plus the missing-EOS penalty)"],
  ["objective/score", "1", "PPO: mean reward-model score r(x, y) of the rollout batch"],
  ["objective/kl", "1", "PPO: mean per-sequence KL to the reference (sum of k1 = logp - logp_ref over response tokens), nats"],
  ["objective/kl_per_token", "1", "PPO: mean per-token KL to the reference, nats"],
  ["objective/kl_bound", "1", "PPO: the run's bound on objective/kl (ppo.kl.max_mean_kl), nats per sequence"],
  ["objective/kl_target", "1", "PPO: the adaptive KL controller's target (ppo.kl.target), nats per sequence; only with the adaptive controller"],
  ["objective/beta", "1", "PPO: KL coefficient beta used this iteration"],
  ["objective/non_score_reward", "1", "PPO: mean KL-penalty part of the reward, per sequence"],
  ["objective/missing_eos_fraction", "1", "PPO: fraction of responses that ended without EOS"],
  ["loss/policy", "1", "PPO: mean clipped policy loss over the iteration's minibatches"],
  ["loss/value", "1", "PPO: mean value loss over the iteration's minibatches"],
  ["policy/clip_fraction", "1", "PPO: fraction of response tokens whose ratio was clipped"],
  ["policy/approx_kl", "1", "PPO: approximate KL between the old and the updated policy"],
  ["policy/entropy", "1", "PPO: mean policy entropy over response tokens, nats"],
  ["policy/grad_norm", "1", "PPO: mean policy gradient norm before clipping"],
  ["value/clip_fraction", "1", "PPO: fraction of value predictions that were clipped"],
  ["value/explained_variance", "1", "PPO: explained variance of the returns by the critic's values"],
  ["response/length_mean", "{token}", "PPO: mean response length of the rollout batch"],
  ["ptx/loss", "1", "PPO-ptx: mean pretraining language-model loss of the mixed-in batches, nats per token"],
  ["gold/score", "1", "PPO: mean gold-scorer score of the rollout batch (built-in data only: the over-optimisation chart's gold axis)"],
  ["gold/helpfulness", "1", "PPO: mean gold helpfulness of the rollout batch (built-in data only)"],
  ["gold/exact_match", "1", "PPO: share of the rollout batch's responses that are exactly the gold answer (built-in data only)"],
  ["timing/generate_ms", "ms", "PPO phase time: policy.Generate of the rollout"],
  ["timing/score_ref_evaluate_ms", "ms", "PPO phase time: reward-model Score, reference LogProbs and policy Evaluate (in parallel)"],
  ["timing/advantages_ms", "ms", "PPO phase time: KL-penalised rewards, GAE and whitening in the coordinator"],
  ["timing/update_ms", "ms", "PPO phase time: every minibatch update (with pretraining gradients)"],
  ["timing/iteration_ms", "ms", "PPO: whole iteration"],
  ["loss/lm", "1", "Pretraining / SFT: language-model loss of the last step, nats per token"],
  ["loss/lm_validation", "1", "Pretraining / SFT: validation language-model loss, nats per token"],
  ["optim/learning_rate", "1", "Pretraining / SFT / reward model: learning rate of the last step"],
  ["optim/grad_norm", "1", "Pretraining / SFT: gradient norm of the last step"],
  ["throughput/tokens_per_second", "{token}/s", "Pretraining / SFT: training tokens per second reported by the policy"],
  ["labelers/noise_std", "1", "Rankings: σ of the simulated labelers' perceived-score noise (data.builtin.labeler_calibration)"],
  ["labelers/agreement", "1", "Rankings: how often two simulated labelers agree on the sampled pairs of different responses"],
  ["labelers/pairs", "{pair}", "Rankings: sampled pairs of different responses the labelers' agreement is over"],
  ["labelers/gold_tie_share", "1", "Rankings: share of those pairs whose gold scores tie (a coin toss for any labeler)"],
  ["loss/reward_model", "1", "Reward model: K-way ranking loss of the last step"],
  ["reward_model/accuracy", "1", "Reward model: pairwise training accuracy of the last step"],
  ["reward_model/heldout_accuracy", "1", "Reward model: pairwise accuracy on held-out comparisons"],
  ["reward_model/heldout_pairs", "{pair}", "Reward model: held-out comparison pairs the accuracy is over"],
];

/** The training signals as instruments (gauges with run id, stage and variant). */
export const TRAINING_SIGNALS: readonly InstrumentSpec[] = SIGNALS.map(([signal, unit, description]) => ({
  name: signalInstrumentName(signal),
  kind: "gauge",
  unit,
  description,
  attributes: RUN_ATTRS,
  recordedBy: "ppo-coordinator (run metrics events)",
  signal,
}));

/** Every instrument, by name. */
export const INSTRUMENTS: readonly InstrumentSpec[] = [
  {
    name: "rpc.server.duration",
    kind: "histogram",
    unit: "ms",
    description: "Duration of inbound RPCs, from the handler's start to its status (streams included)",
    attributes: [ATTR.rpcSystem, ATTR.rpcService, ATTR.rpcMethod, ATTR.rpcStatusCode],
    recordedBy: "@rlhf/grpc-kit handler wrappers (every service)",
  },
  {
    name: "rlhf.queue.depth",
    kind: "observable_gauge",
    unit: "{call}",
    description: "Calls waiting on a compute queue plus the one running",
    attributes: [ATTR.queue],
    recordedBy: "@rlhf/grpc-kit SerialQueue (model services)",
  },
  {
    name: "rlhf.queue.rejected",
    kind: "counter",
    unit: "{call}",
    description: "Calls refused with RESOURCE_EXHAUSTED because a compute queue was full",
    attributes: [ATTR.queue],
    recordedBy: "@rlhf/grpc-kit SerialQueue (model services)",
  },
  {
    name: "rlhf.tokens",
    kind: "counter",
    unit: "{token}",
    description: `Tokens processed, by operation (${TOKEN_OPERATIONS.join(", ")}); rate() gives tokens per second`,
    attributes: [ATTR.operation],
    recordedBy: "policy, reward-model, reference-model, pretrain-mix handlers",
  },
  {
    name: "rlhf.tensor.count",
    kind: "observable_gauge",
    unit: "{tensor}",
    description: "Live TensorFlow.js tensors (tf.memory().numTensors)",
    attributes: [ATTR.backend],
    recordedBy: "@rlhf/compute (model services, once the backend is chosen)",
  },
  {
    name: "rlhf.tensor.memory",
    kind: "observable_gauge",
    unit: "By",
    description: "Bytes held by live TensorFlow.js tensors (tf.memory().numBytes)",
    attributes: [ATTR.backend],
    recordedBy: "@rlhf/compute (model services, once the backend is chosen)",
  },
  ...TRAINING_SIGNALS,
];

/** The registered instrument called `name`, or undefined. */
export function findInstrument(name: string): InstrumentSpec | undefined {
  return INSTRUMENTS.find((i) => i.name === name);
}

/** An OpenTelemetry name or attribute key as the 0.223 Prometheus exporter writes it. */
export function prometheusName(name: string): string {
  return name.replace(/[^a-z0-9_]/gi, "_").replace(/_{2,}/g, "_");
}

/**
 * The series names the Prometheus exporter writes for an instrument (checked by scraping a real
 * exporter in metrics.test.ts): counters get `_total`; histograms `_bucket`, `_sum`, `_count`;
 * units are NOT appended to names (the exporter writes them as `# UNIT` lines only).
 */
export function prometheusSeries(spec: InstrumentSpec): string[] {
  const base = prometheusName(spec.name);
  switch (spec.kind) {
    case "counter":
      return [base.endsWith("_total") ? base : `${base}_total`];
    case "histogram":
      return [`${base}_bucket`, `${base}_sum`, `${base}_count`];
    default:
      return [base];
  }
}

/** Every Prometheus series name of every registered instrument. */
export function allPrometheusSeries(): string[] {
  return INSTRUMENTS.flatMap(prometheusSeries);
}
