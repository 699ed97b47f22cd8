import { ConfigError, envVar, listenEnv, maxReceiveBytesEnv, maxUploadBytesEnv, METRICS_ENV, parseEnv, pullDeadlineEnv, queueCapacityEnv, SHUTDOWN_GRACE_ENV, type EnvConfig } from "@rlhf/grpc-kit";

/**
 * Most tokens one SampleBatch response may carry (max_sequences x max_sequence_length): at most
 * 3 bytes per GPT-2 id on the wire, so a response stays well inside gRPC's 4 MiB message limit.
 */
export const MAX_BATCH_TOKENS = 524_288;

/** The pretrain-mix service's environment variables: names, defaults, limits and meaning (docs/services.md is generated from it). */
export const PRETRAIN_MIX_ENV = {
  ...listenEnv(50054),
  policyAddr: envVar.optionalAddress("POLICY_ADDR", "the policy service, whose weights PtxGradients pulls at the requested version (FAILED_PRECONDITION without it)"),
  tokenizer: envVar.choice("TOKENIZER", ["gpt2", "byte", "bpe"] as const, "gpt2", {
    doc: "how the corpus is tokenised: `gpt2` (GPT-2 BPE, 50257 ids, EOS 50256), `bpe` (the Brown-learned BPE, 2048 ids, EOS 256) or `byte` (the small models' byte-level tokenizer, 258 ids, EOS 256). Must be the policy's: a corpus id not below the policy's `vocab_size` is FAILED_PRECONDITION",
  }),
  validFraction: envVar.fraction("VALID_FRACTION", 0.05, 0.5, "fraction of the Brown documents held out as the validation split (0.05: every 20th, 475 train / 25 validation)"),
  maxSequences: envVar.int("MAX_SEQUENCES", 64, { min: 1, max: MAX_BATCH_TOKENS / 2, doc: `most sequences in one SampleBatch / PtxGradients request; MAX_SEQUENCES x MAX_SEQUENCE_LENGTH is at most ${MAX_BATCH_TOKENS.toLocaleString("en-US")} tokens` }),
  maxSequenceLength: envVar.int("MAX_SEQUENCE_LENGTH", 1024, { min: 2, max: MAX_BATCH_TOKENS, doc: "largest sequence_length accepted (PtxGradients: also at most the policy's n_positions)" }),
  maxCachedVersions: envVar.int("MAX_CACHED_VERSIONS", 2, { min: 1, max: 64, doc: "policy weights versions kept built in memory (least recently used dropped first)" }),
  maxCachedCorpora: envVar.int("MAX_CACHED_CORPORA", 2, { min: 1, max: 64, doc: "users' text corpora (a request's TextCorpus) kept tokenised (least recently used dropped first)" }),
  dataRoots: envVar.roots("DATA_ROOT", "runs", {
    doc: "the text files a request names (SampleBatch / PtxGradients text_corpus) must resolve, symlinks included, inside these folders or files; others are PERMISSION_DENIED",
  }),
  queueCapacity: queueCapacityEnv(
    8,
    "PtxGradients calls waiting at most behind the one computing; more get RESOURCE_EXHAUSTED (before any pull). Each admitted call may hold one gradient set (the size of the model) until it has streamed it out, hence the small default",
  ),
  maxReceiveBytes: maxReceiveBytesEnv("largest gRPC message accepted (requests, and each chunk of a weight pull)"),
  maxUploadBytes: maxUploadBytesEnv("largest weight set accepted from the policy"),
  policyDeadlineMs: pullDeadlineEnv("POLICY_DEADLINE_MS", "policy"),
  shutdownGraceMs: SHUTDOWN_GRACE_ENV,
  ...METRICS_ENV,
};

/** Process configuration of the pretrain-mix service (see {@link PRETRAIN_MIX_ENV}). */
export type PretrainMixConfig = EnvConfig<typeof PRETRAIN_MIX_ENV>;

/** Parses the environment once; throws ConfigError with one clear line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): PretrainMixConfig {
  PRETRAIN_MIX_ENV.tokenizer.parse(env);
  const maxSequences = PRETRAIN_MIX_ENV.maxSequences.parse(env);
  const maxSequenceLength = PRETRAIN_MIX_ENV.maxSequenceLength.parse(env);
  if (maxSequences * maxSequenceLength > MAX_BATCH_TOKENS) {
    throw new ConfigError(`MAX_SEQUENCES x MAX_SEQUENCE_LENGTH must be at most ${MAX_BATCH_TOKENS} tokens (one response message), got ${maxSequences} x ${maxSequenceLength}`);
  }
  return parseEnv(PRETRAIN_MIX_ENV, env);
}
