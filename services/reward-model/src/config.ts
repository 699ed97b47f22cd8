import { envVar, listenEnv, parseEnv, pullDeadlineEnv, type EnvConfig } from "@rlhf/grpc-kit";
import { atMostOneEnv, batchLimitsEnv, checkpointDirEnv, checkpointRootEnv, microBatchTokensEnv, modelDirEnv, randomInitEnv, servingEnv } from "@rlhf/model-service";

/** The reward-model service's environment variables: names, defaults, limits and meaning (docs/services.md is generated from it). */
export const REWARD_MODEL_ENV = {
  ...listenEnv(50052),
  checkpointDir: checkpointDirEnv("reward-model checkpoint folder (written by SaveCheckpoint, head included) loaded at start"),
  modelDir: modelDirEnv("plain language-model folder (the SFT model) loaded at start with a new zero scalar head `score.weight` [n_embd, 1] / `score.bias` [1]"),
  ...randomInitEnv("trunk"),
  checkpointRoots: checkpointRootEnv(
    "LoadCheckpoint / SaveCheckpoint only use folders that resolve, symlinks included, inside these folders; others are PERMISSION_DENIED. CHECKPOINT_DIR / MODEL_DIR (set by the operator) are not confined",
  ),
  policyAddr: envVar.optionalAddress("POLICY_ADDR", "the policy service (for LoadCheckpoint from the policy's weights)"),
  ...batchLimitsEnv("most sequences in one Score / Normalize message / Accuracy request", "most tokens in one such request"),
  maxBatchGroups: envVar.int("MAX_BATCH_GROUPS", 64, { min: 1, max: 100_000, doc: "largest Train batch_size, in groups" }),
  maxTrainTokens: envVar.int("MAX_TRAIN_TOKENS", 16 * 1024 * 1024, { min: 1, max: 2 ** 31, doc: "most comparison tokens buffered by one Train call" }),
  microBatchTokens: microBatchTokensEnv("most padded tokens per forward pass (whole groups when training)"),
  ...servingEnv({ upload: "largest streamed weight set accepted (from the policy)" }),
  policyDeadlineMs: pullDeadlineEnv("POLICY_DEADLINE_MS", "policy"),
};

/** Process configuration of the reward-model service (see {@link REWARD_MODEL_ENV}). */
export type RewardModelConfig = EnvConfig<typeof REWARD_MODEL_ENV>;

/** Parses the environment once; throws ConfigError with one clear line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): RewardModelConfig {
  atMostOneEnv(env, ["CHECKPOINT_DIR", "MODEL_DIR", "INIT_PRESET"]);
  return parseEnv(REWARD_MODEL_ENV, env);
}
