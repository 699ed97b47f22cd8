import { envVar, listenEnv, parseEnv, pullDeadlineEnv, type EnvConfig } from "@rlhf/grpc-kit";
import { atMostOneEnv, batchLimitsEnv, checkpointDirEnv, checkpointRootEnv, microBatchTokensEnv, modelDirEnv, randomInitEnv, servingEnv } from "@rlhf/model-service";
import { natsEnvVar } from "@rlhf/events";

/** The policy service's environment variables: names, defaults, limits and meaning (docs/services.md is generated from it). */
export const POLICY_ENV = {
  ...listenEnv(50051),
  checkpointDir: checkpointDirEnv("a policy checkpoint (written by SaveCheckpoint) restored at start"),
  modelDir: modelDirEnv("a plain language-model folder loaded at start as the policy (version 0)"),
  ...randomInitEnv("policy"),
  tokenizer: envVar.choice("TOKENIZER", ["byte", "bpe", "gpt2"] as const, undefined, {
    doc: "tokenizer of built-in datasets when the loaded model's config.json names none",
    defaultText: "`gpt2` for a vocabulary of at least 50,257 ids, else `byte`",
  }),
  checkpointRoots: checkpointRootEnv(
    "every folder a request names (LoadCheckpoint, SaveCheckpoint, InitCritic) must resolve, symlinks included, inside one of these folders; others are PERMISSION_DENIED. `runs` is the coordinator's default RUNS_DIR; CHECKPOINT_DIR / MODEL_DIR (set by the operator) are not confined",
  ),
  rewardModelAddr: envVar.optionalAddress("REWARD_MODEL_ADDR", "the reward-model service, for InitCritic from its streamed weights when the request names no address"),
  eosTokenId: envVar.optionalInt("EOS_TOKEN_ID", { min: 0, max: 10_000_000, defaultText: "the tokenizer's (50256 for GPT-2 BPE, 256 for bytes)", doc: "EOS of Generate requests that set none" }),
  ...batchLimitsEnv("most sequences per Evaluate / PpoUpdate request or Sft batch", "most tokens per Evaluate / PpoUpdate request"),
  maxGenerateSequences: envVar.int("MAX_GENERATE_SEQUENCES", 512, { min: 1, max: 1_000_000, doc: "most prompts × samples_per_prompt per Generate" }),
  maxNewTokens: envVar.int("MAX_NEW_TOKENS", 512, { min: 1, max: 100_000, doc: "largest max_new_tokens of Generate" }),
  maxSftTokens: envVar.int("MAX_SFT_TOKENS", 16 * 1024 * 1024, { min: 1, max: 2 ** 31, doc: "most example tokens one Sft call buffers (RESOURCE_EXHAUSTED beyond)" }),
  microBatchTokens: microBatchTokensEnv("most padded tokens per forward/backward pass; larger batches are split into micro-batches whose gradients add up to the batch's"),
  generateBatch: envVar.int("GENERATE_BATCH", 64, { min: 1, max: 100_000, doc: "most sequences sampled together in one batched decode; a request's samples are the same whatever this is (each row keeps its own random stream)" }),
  natsServers: natsEnvVar("a `weights` event whenever the weights version changes"),
  ...servingEnv({
    upload: "largest streamed tensor set accepted (pretraining gradients, reward-model weights)",
    queue: "calls waiting behind the running one; more get RESOURCE_EXHAUSTED (every call that touches the models runs one at a time)",
  }),
  rewardModelDeadlineMs: pullDeadlineEnv("REWARD_MODEL_DEADLINE_MS", "reward model"),
};

/** Process configuration of the policy service (see {@link POLICY_ENV}). */
export type PolicyConfig = EnvConfig<typeof POLICY_ENV>;

/** Parses the environment once; throws ConfigError with one clear line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): PolicyConfig {
  atMostOneEnv(env, ["CHECKPOINT_DIR", "MODEL_DIR", "INIT_PRESET"]);
  POLICY_ENV.tokenizer.parse(env);
  return parseEnv(POLICY_ENV, env);
}
