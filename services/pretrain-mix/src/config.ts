import type { PathRoots } from "@rlhf/errors";
import { envInt, envRoots, envOptional, envPort, envString, envAddress, ConfigError, envMetrics } from "@rlhf/grpc-kit";
import type { TokenizerName } from "@rlhf/model";

/**
 * Most tokens one SampleBatch response may carry (max_sequences x max_sequence_length): at most
 * 3 bytes per GPT-2 id on the wire, so a response stays well inside gRPC's 4 MiB message limit.
 */
export const MAX_BATCH_TOKENS = 524_288;

/** Process configuration of the pretrain-mix service, from the environment. */
export interface PretrainMixConfig {
  /** GRPC_HOST: interface to listen on. Default 127.0.0.1 (loopback only). */
  host: string;
  /** GRPC_PORT: port; 0 picks a free one. Default 50054. */
  port: number;
  /** POLICY_ADDR: the policy service, whose weights PtxGradients pulls (FAILED_PRECONDITION without it). */
  policyAddr?: string;
  /**
   * TOKENIZER: how the corpus is tokenised: `gpt2` (GPT-2 BPE, 50257 ids, EOS 50256), `bpe` (the
   * Brown-learned BPE, 2048 ids, EOS 256) or `byte`
   * (the small models' byte-level tokenizer, 258 ids, EOS 256). Must be the policy's. Default gpt2.
   */
  tokenizer: TokenizerName;
  /** VALID_FRACTION: fraction of the Brown documents held out as the validation split, in [0, 0.5]. Default 0.05 (25 of 500). */
  validFraction: number;
  /** MAX_SEQUENCES: most sequences in one SampleBatch / PtxGradients request. Default 64. */
  maxSequences: number;
  /** MAX_SEQUENCE_LENGTH: largest sequence_length accepted (PtxGradients: also at most the policy's n_positions). Default 1024. */
  maxSequenceLength: number;
  /** MAX_CACHED_VERSIONS: policy weights versions kept built in memory (least recently used dropped first). Default 2. */
  maxCachedVersions: number;
  /** MAX_CACHED_CORPORA: users' text corpora (a request's TextCorpus) kept tokenised (least recently used dropped first). Default 2. */
  maxCachedCorpora: number;
  /**
   * DATA_ROOT: the text files a request names (SampleBatch / PtxGradients text_corpus) must
   * resolve, symlinks included, inside these folders or files (':'-separated); others are
   * PERMISSION_DENIED. Default `runs` (from the working directory).
   */
  dataRoots: PathRoots;
  /**
   * QUEUE_CAPACITY: PtxGradients calls waiting at most behind the one computing; more get
   * RESOURCE_EXHAUSTED. Each admitted call may hold one gradient set (the size of the model)
   * until it has streamed it out, hence the small default. Default 8.
   */
  queueCapacity: number;
  /** MAX_RECEIVE_BYTES: largest gRPC message accepted (requests, and each chunk of a weight pull). Default 4 MiB. */
  maxReceiveBytes: number;
  /** MAX_UPLOAD_BYTES: largest weight set accepted from the policy. Default 8 GiB. */
  maxUploadBytes: number;
  /** POLICY_DEADLINE_MS: deadline of a weight pull from the policy. Default 600,000. */
  policyDeadlineMs: number;
  /** SHUTDOWN_GRACE_MS: time in-flight calls get on SIGTERM. Default 10,000. */
  shutdownGraceMs: number;
  /** METRICS_HOST: interface of the Prometheus endpoint. Default 127.0.0.1 (0.0.0.0 in containers). */
  metricsHost: string;
  /** METRICS_PORT: port of the Prometheus endpoint http://METRICS_HOST:METRICS_PORT/metrics; 0 turns it off. Default 9464. */
  metricsPort: number;
  /** Derived: METRICS_PORT was set, so a busy port stops the start (a busy default port only logs a warning). */
  metricsPortRequired: boolean;
}

function envFraction(env: Record<string, string | undefined>, name: string, def: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  const v = Number(raw.trim());
  if (!/^\s*\d*\.?\d+(e-?\d+)?\s*$/i.test(raw) || !Number.isFinite(v) || v < 0 || v > max) {
    throw new ConfigError(`${name} must be a number in [0, ${max}], got "${raw}"`);
  }
  return v;
}

/** Parses the environment once; throws ConfigError with one clear line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): PretrainMixConfig {
  const tokenizer = envString(env, "TOKENIZER", "gpt2");
  if (tokenizer !== "gpt2" && tokenizer !== "byte" && tokenizer !== "bpe") throw new ConfigError(`TOKENIZER must be gpt2, byte or bpe, got "${tokenizer}"`);
  const maxSequences = envInt(env, "MAX_SEQUENCES", 64, 1, MAX_BATCH_TOKENS / 2);
  const maxSequenceLength = envInt(env, "MAX_SEQUENCE_LENGTH", 1024, 2, MAX_BATCH_TOKENS);
  if (maxSequences * maxSequenceLength > MAX_BATCH_TOKENS) {
    throw new ConfigError(`MAX_SEQUENCES x MAX_SEQUENCE_LENGTH must be at most ${MAX_BATCH_TOKENS} tokens (one response message), got ${maxSequences} x ${maxSequenceLength}`);
  }
  return {
    host: envString(env, "GRPC_HOST", "127.0.0.1"),
    port: envPort(env, "GRPC_PORT", 50054),
    policyAddr: envOptional(env, "POLICY_ADDR") === undefined ? undefined : envAddress(env, "POLICY_ADDR"),
    tokenizer,
    validFraction: envFraction(env, "VALID_FRACTION", 0.05, 0.5),
    maxSequences,
    maxSequenceLength,
    maxCachedVersions: envInt(env, "MAX_CACHED_VERSIONS", 2, 1, 64),
    maxCachedCorpora: envInt(env, "MAX_CACHED_CORPORA", 2, 1, 64),
    dataRoots: envRoots(env, "DATA_ROOT", "runs"),
    queueCapacity: envInt(env, "QUEUE_CAPACITY", 8, 1, 10_000),
    maxReceiveBytes: envInt(env, "MAX_RECEIVE_BYTES", 4 * 1024 * 1024, 1024, 1024 ** 3),
    maxUploadBytes: envInt(env, "MAX_UPLOAD_BYTES", 8 * 1024 ** 3, 1, 64 * 1024 ** 3),
    policyDeadlineMs: envInt(env, "POLICY_DEADLINE_MS", 600_000, 1000, 3_600_000),
    shutdownGraceMs: envInt(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    ...envMetrics(env),
  };
}
