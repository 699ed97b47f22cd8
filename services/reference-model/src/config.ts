import type { PathRoots } from "@rlhf/errors";
import { envInt, envRoots, envOptional, envPort, envString, envAddress, ConfigError, envMetrics } from "@rlhf/grpc-kit";

/** Process configuration of the reference-model service, from the environment. */
export interface ReferenceModelConfig {
  /** GRPC_HOST: interface to listen on. Default 127.0.0.1 (loopback only). */
  host: string;
  /** GRPC_PORT: port; 0 picks a free one. Default 50053. */
  port: number;
  /** CHECKPOINT_DIR: checkpoint folder (config.json + model.safetensors) loaded at start. */
  checkpointDir?: string;
  /** INIT_PRESET: when no CHECKPOINT_DIR, a seeded random model of this preset (tiny, small, gpt2-124m). */
  initPreset?: string;
  /** INIT_SEED: seed of that random model. Default 0. */
  initSeed: number;
  /**
   * CHECKPOINT_ROOT: LoadWeights only reads checkpoint folders that resolve, symlinks included,
   * inside these folders (':'-separated); others are PERMISSION_DENIED. Default `runs` (from the
   * working directory). CHECKPOINT_DIR (set by the operator) is not confined.
   */
  checkpointRoots: PathRoots;
  /** POLICY_ADDR: the policy service (for LoadWeights from the policy's weights). */
  policyAddr?: string;
  /** MAX_BATCH_SEQUENCES: most sequences in one LogProbs request. Default 256. */
  maxBatchSequences: number;
  /** MAX_BATCH_TOKENS: most tokens (sum of lengths) in one LogProbs request. Default 65,536. */
  maxBatchTokens: number;
  /** MAX_LOGITS_ELEMENTS: most B*T*V logits held at once (micro-batching). Default 2^25. */
  maxLogitsElements: number;
  /** MAX_RECEIVE_BYTES: largest gRPC message accepted. Default 4 MiB. */
  maxReceiveBytes: number;
  /** MAX_UPLOAD_BYTES: largest streamed weight set accepted. Default 8 GiB. */
  maxUploadBytes: number;
  /** QUEUE_CAPACITY: compute calls waiting at most; more get RESOURCE_EXHAUSTED. Default 32. */
  queueCapacity: number;
  /** SHUTDOWN_GRACE_MS: time in-flight calls get on SIGTERM. Default 10,000. */
  shutdownGraceMs: number;
  /** METRICS_HOST: interface of the Prometheus endpoint. Default 127.0.0.1 (0.0.0.0 in containers). */
  metricsHost: string;
  /** METRICS_PORT: port of the Prometheus endpoint http://METRICS_HOST:METRICS_PORT/metrics; 0 turns it off. Default 9464. */
  metricsPort: number;
  /** Derived: METRICS_PORT was set, so a busy port stops the start (a busy default port only logs a warning). */
  metricsPortRequired: boolean;
  /** POLICY_DEADLINE_MS: deadline of a weight pull from the policy. Default 600,000. */
  policyDeadlineMs: number;
}

/** Parses the environment once; throws ConfigError with one clear line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): ReferenceModelConfig {
  const checkpointDir = envOptional(env, "CHECKPOINT_DIR");
  const initPreset = envOptional(env, "INIT_PRESET");
  if (checkpointDir && initPreset) throw new ConfigError("set CHECKPOINT_DIR or INIT_PRESET, not both");
  return {
    host: envString(env, "GRPC_HOST", "127.0.0.1"),
    port: envPort(env, "GRPC_PORT", 50053),
    checkpointDir,
    initPreset,
    initSeed: envInt(env, "INIT_SEED", 0, 0, 2 ** 31 - 1),
    checkpointRoots: envRoots(env, "CHECKPOINT_ROOT", "runs"),
    policyAddr: envOptional(env, "POLICY_ADDR") === undefined ? undefined : envAddress(env, "POLICY_ADDR"),
    maxBatchSequences: envInt(env, "MAX_BATCH_SEQUENCES", 256, 1, 1_000_000),
    maxBatchTokens: envInt(env, "MAX_BATCH_TOKENS", 65_536, 1, 100_000_000),
    maxLogitsElements: envInt(env, "MAX_LOGITS_ELEMENTS", 2 ** 25, 1, 2 ** 31),
    maxReceiveBytes: envInt(env, "MAX_RECEIVE_BYTES", 4 * 1024 * 1024, 1024, 1024 ** 3),
    maxUploadBytes: envInt(env, "MAX_UPLOAD_BYTES", 8 * 1024 ** 3, 1, 64 * 1024 ** 3),
    queueCapacity: envInt(env, "QUEUE_CAPACITY", 32, 1, 10_000),
    shutdownGraceMs: envInt(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    ...envMetrics(env),
    policyDeadlineMs: envInt(env, "POLICY_DEADLINE_MS", 600_000, 1000, 3_600_000),
  };
}
