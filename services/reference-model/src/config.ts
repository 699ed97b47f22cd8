import { envVar, listenEnv, parseEnv, pullDeadlineEnv, type EnvConfig } from "@rlhf/grpc-kit";
import { atMostOneEnv, batchLimitsEnv, checkpointDirEnv, checkpointRootEnv, randomInitEnv, servingEnv } from "@rlhf/model-service";

/** The reference-model service's environment variables: names, defaults, limits and meaning (docs/services.md is generated from it). */
export const REFERENCE_MODEL_ENV = {
  ...listenEnv(50053),
  checkpointDir: checkpointDirEnv("checkpoint folder (`config.json` + `model.safetensors`, Hugging Face GPT-2 layout) loaded at start"),
  ...randomInitEnv("model"),
  checkpointRoots: checkpointRootEnv(
    "LoadWeights only reads checkpoint folders that resolve, symlinks included, inside these folders; others are PERMISSION_DENIED. CHECKPOINT_DIR (set by the operator) is not confined",
  ),
  policyAddr: envVar.optionalAddress("POLICY_ADDR", "the policy service (for LoadWeights from the policy's weights at a version)"),
  ...batchLimitsEnv("most sequences in one LogProbs request", "most tokens (sum of lengths) in one LogProbs request"),
  maxLogitsElements: envVar.int("MAX_LOGITS_ELEMENTS", 2 ** 25, { min: 1, max: 2 ** 31, defaultText: "2^25", doc: "most B*T*V logits held at once (longer batches run in micro-batches)" }),
  ...servingEnv({ upload: "largest streamed weight set accepted" }),
  policyDeadlineMs: pullDeadlineEnv("POLICY_DEADLINE_MS", "policy"),
};

/** Process configuration of the reference-model service (see {@link REFERENCE_MODEL_ENV}). */
export type ReferenceModelConfig = EnvConfig<typeof REFERENCE_MODEL_ENV>;

/** Parses the environment once; throws ConfigError with one clear line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): ReferenceModelConfig {
  atMostOneEnv(env, ["CHECKPOINT_DIR", "INIT_PRESET"]);
  return parseEnv(REFERENCE_MODEL_ENV, env);
}
