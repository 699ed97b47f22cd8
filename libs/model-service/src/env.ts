/**
 * Config-table entries the model services share (see `envVar` of @rlhf/grpc-kit): the weights a
 * service loads at start, the folders requests may name, the per-request limits, and how a
 * service that holds a model serves.
 */
import { ConfigError, envOptional, envVar, fileDeadlineEnv, maxReceiveBytesEnv, maxUploadBytesEnv, METRICS_ENV, queueCapacityEnv, runLeaseTtlEnv, SHUTDOWN_GRACE_ENV } from "@rlhf/grpc-kit";

type Env = Record<string, string | undefined>;

/** CHECKPOINT_DIR: a checkpoint of the service's own kind loaded at start. */
export function checkpointDirEnv(doc: string) {
  return envVar.optional("CHECKPOINT_DIR", { doc });
}

/** MODEL_DIR: a plain language-model folder loaded at start. */
export function modelDirEnv(doc: string) {
  return envVar.optional("MODEL_DIR", { doc });
}

/** INIT_PRESET and INIT_SEED: a seeded random model of a preset built at start. */
export function randomInitEnv(what: string) {
  return {
    initPreset: envVar.optional("INIT_PRESET", { doc: `otherwise, a seeded random ${what} of this preset (tiny, small, gpt2-124m)` }),
    initSeed: envVar.int("INIT_SEED", 0, { min: 0, max: 2 ** 31 - 1, doc: `seed of that random ${what}` }),
  };
}

/**
 * Throws the one ConfigError line of a service that was given more than one of its start-up
 * sources (`names` in the order the message lists them).
 */
export function atMostOneEnv(env: Env, names: string[]): void {
  if (names.filter((n) => envOptional(env, n) !== undefined).length <= 1) return;
  if (names.length === 2) throw new ConfigError(`set ${names[0]} or ${names[1]}, not both`);
  throw new ConfigError(`set at most one of ${names.join(", ")}`);
}

/** CHECKPOINT_ROOT: the folders a request's checkpoint paths must lie in. */
export function checkpointRootEnv(doc: string) {
  return envVar.roots("CHECKPOINT_ROOT", "runs", { doc });
}

/** MAX_BATCH_SEQUENCES and MAX_BATCH_TOKENS: per-request limits (INVALID_ARGUMENT beyond). */
export function batchLimitsEnv(sequencesDoc: string, tokensDoc: string) {
  return {
    maxBatchSequences: envVar.int("MAX_BATCH_SEQUENCES", 256, { min: 1, max: 1_000_000, doc: sequencesDoc }),
    maxBatchTokens: envVar.int("MAX_BATCH_TOKENS", 65_536, { min: 1, max: 100_000_000, doc: tokensDoc }),
  };
}

/** MICRO_BATCH_TOKENS: most padded tokens per forward(/backward) pass. */
export function microBatchTokensEnv(doc: string) {
  return envVar.int("MICRO_BATCH_TOKENS", 8192, { min: 2, max: 100_000_000, doc });
}

/**
 * How a service that holds a model serves (policy, reward-model, reference-model): message and
 * upload limits, its work queue, file deadlines, the run lease, shutdown and the metrics endpoint.
 * `upload` says what MAX_UPLOAD_BYTES bounds; `queue` overrides the queue's description.
 */
export function servingEnv(docs: { upload: string; queue?: string }) {
  return {
    maxReceiveBytes: maxReceiveBytesEnv(),
    maxUploadBytes: maxUploadBytesEnv(docs.upload),
    queueCapacity: queueCapacityEnv(32, docs.queue ?? "compute calls waiting at most; more get RESOURCE_EXHAUSTED"),
    fileDeadlineMs: fileDeadlineEnv(),
    runLeaseTtlMs: runLeaseTtlEnv(),
    shutdownGraceMs: SHUTDOWN_GRACE_ENV,
    ...METRICS_ENV,
  };
}
