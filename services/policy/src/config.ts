import type { PathRoots } from "@rlhf/errors";
import { envInt, envRoots, envOptional, envString, envPort, envAddress, ConfigError, envMetrics } from "@rlhf/grpc-kit";
import { natsServersFromEnv } from "@rlhf/events";

/** Process configuration of the policy service, from the environment. */
export interface PolicyConfig {
  /** GRPC_HOST: interface to listen on. Default 127.0.0.1 (loopback only). */
  host: string;
  /** GRPC_PORT: port; 0 picks a free one. Default 50051. */
  port: number;
  /** CHECKPOINT_DIR: a policy checkpoint (written by SaveCheckpoint) restored at start. */
  checkpointDir?: string;
  /** MODEL_DIR: a plain language-model folder loaded at start as the policy (version 0). */
  modelDir?: string;
  /** INIT_PRESET: otherwise, a seeded random policy of this preset (tiny, small, gpt2-124m). */
  initPreset?: string;
  /** INIT_SEED: seed of that random policy. Default 0. */
  initSeed: number;
  /**
   * TOKENIZER: tokenizer of built-in datasets when the loaded model's config.json names none
   * (`byte` or `gpt2`). Default: `gpt2` for a vocabulary of at least 50,257 ids, else `byte`.
   */
  tokenizer?: string;
  /**
   * CHECKPOINT_ROOT: every folder a request names (LoadCheckpoint, SaveCheckpoint, InitCritic)
   * must resolve, symlinks included, inside one of these folders (':'-separated); others are
   * PERMISSION_DENIED. Default `runs` (the coordinator's default RUNS_DIR, from the working
   * directory). CHECKPOINT_DIR / MODEL_DIR (set by the operator) are not confined.
   */
  checkpointRoots: PathRoots;
  /** REWARD_MODEL_ADDR: the reward-model service, for InitCritic from its streamed weights. */
  rewardModelAddr?: string;
  /** EOS_TOKEN_ID: EOS of Generate requests that set none. Default: the tokenizer's (50256 for GPT-2 BPE, 256 for bytes). */
  eosTokenId?: number;
  /** MAX_BATCH_SEQUENCES: most sequences per Evaluate / PpoUpdate request or Sft batch. Default 256. */
  maxBatchSequences: number;
  /** MAX_BATCH_TOKENS: most tokens per Evaluate / PpoUpdate request. Default 65,536. */
  maxBatchTokens: number;
  /** MAX_GENERATE_SEQUENCES: most prompts × samples_per_prompt per Generate. Default 512. */
  maxGenerateSequences: number;
  /** MAX_NEW_TOKENS: largest max_new_tokens of Generate. Default 512. */
  maxNewTokens: number;
  /** MAX_SFT_TOKENS: most example tokens one Sft call buffers. Default 16,777,216. */
  maxSftTokens: number;
  /**
   * MICRO_BATCH_TOKENS: most padded tokens per forward/backward pass; larger batches are split
   * into micro-batches whose gradients add up to the batch's. Default 8,192.
   */
  microBatchTokens: number;
  /** GENERATE_BATCH: most sequences sampled together in one batched decode. Default 64. */
  generateBatch: number;
  /** MAX_RECEIVE_BYTES: largest gRPC message accepted. Default 4 MiB. */
  maxReceiveBytes: number;
  /** MAX_UPLOAD_BYTES: largest streamed tensor set accepted (gradients, reward-model weights). Default 8 GiB. */
  maxUploadBytes: number;
  /** QUEUE_CAPACITY: calls waiting at most; more get RESOURCE_EXHAUSTED. Default 32. */
  queueCapacity: number;
  /** SHUTDOWN_GRACE_MS: time in-flight calls get on SIGTERM. Default 10,000. */
  shutdownGraceMs: number;
  /**
   * NATS_URL: NATS server(s) with JetStream (`nats://host:port`, comma-separated for several)
   * that get the weights version events (see @rlhf/events). Unset: no NATS.
   */
  natsServers?: string[];
  /** METRICS_HOST: interface of the Prometheus endpoint. Default 127.0.0.1 (0.0.0.0 in containers). */
  metricsHost: string;
  /** METRICS_PORT: port of the Prometheus endpoint http://METRICS_HOST:METRICS_PORT/metrics; 0 turns it off. Default 9464. */
  metricsPort: number;
  /** Derived: METRICS_PORT was set, so a busy port stops the start (a busy default port only logs a warning). */
  metricsPortRequired: boolean;
  /** REWARD_MODEL_DEADLINE_MS: deadline of a weight pull from the reward model. Default 600,000. */
  rewardModelDeadlineMs: number;
}

/** Parses the environment once; throws ConfigError with one clear line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): PolicyConfig {
  const checkpointDir = envOptional(env, "CHECKPOINT_DIR");
  const modelDir = envOptional(env, "MODEL_DIR");
  const initPreset = envOptional(env, "INIT_PRESET");
  if ([checkpointDir, modelDir, initPreset].filter((x) => x !== undefined).length > 1) {
    throw new ConfigError("set at most one of CHECKPOINT_DIR, MODEL_DIR, INIT_PRESET");
  }
  const tokenizer = envOptional(env, "TOKENIZER");
  if (tokenizer !== undefined && tokenizer !== "byte" && tokenizer !== "bpe" && tokenizer !== "gpt2") throw new ConfigError(`TOKENIZER must be byte, bpe or gpt2, got "${tokenizer}"`);
  return {
    host: envString(env, "GRPC_HOST", "127.0.0.1"),
    port: envPort(env, "GRPC_PORT", 50051),
    checkpointDir,
    modelDir,
    initPreset,
    initSeed: envInt(env, "INIT_SEED", 0, 0, 2 ** 31 - 1),
    tokenizer,
    checkpointRoots: envRoots(env, "CHECKPOINT_ROOT", "runs"),
    rewardModelAddr: envOptional(env, "REWARD_MODEL_ADDR") === undefined ? undefined : envAddress(env, "REWARD_MODEL_ADDR"),
    eosTokenId: envOptional(env, "EOS_TOKEN_ID") === undefined ? undefined : envInt(env, "EOS_TOKEN_ID", 0, 0, 10_000_000),
    maxBatchSequences: envInt(env, "MAX_BATCH_SEQUENCES", 256, 1, 1_000_000),
    maxBatchTokens: envInt(env, "MAX_BATCH_TOKENS", 65_536, 1, 100_000_000),
    maxGenerateSequences: envInt(env, "MAX_GENERATE_SEQUENCES", 512, 1, 1_000_000),
    maxNewTokens: envInt(env, "MAX_NEW_TOKENS", 512, 1, 100_000),
    maxSftTokens: envInt(env, "MAX_SFT_TOKENS", 16 * 1024 * 1024, 1, 2 ** 31),
    microBatchTokens: envInt(env, "MICRO_BATCH_TOKENS", 8192, 2, 100_000_000),
    generateBatch: envInt(env, "GENERATE_BATCH", 64, 1, 100_000),
    maxReceiveBytes: envInt(env, "MAX_RECEIVE_BYTES", 4 * 1024 * 1024, 1024, 1024 ** 3),
    maxUploadBytes: envInt(env, "MAX_UPLOAD_BYTES", 8 * 1024 ** 3, 1, 64 * 1024 ** 3),
    queueCapacity: envInt(env, "QUEUE_CAPACITY", 32, 1, 10_000),
    shutdownGraceMs: envInt(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    natsServers: natsServersFromEnv(env),
    ...envMetrics(env),
    rewardModelDeadlineMs: envInt(env, "REWARD_MODEL_DEADLINE_MS", 600_000, 1000, 3_600_000),
  };
}
