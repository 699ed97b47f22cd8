import { GPT2 } from "@rlhf/model";
import { policyPullOptions, pullPolicyWeights } from "@rlhf/model-service";
import { FailedPreconditionError, InvalidArgumentError } from "@rlhf/errors";
import type { Logger } from "@rlhf/grpc-kit";
import { WeightsCache } from "./weights-cache";
import type { PretrainMixConfig } from "./config";

/** model_id of the only weights this service differentiates. */
export const POLICY_MODEL_ID = "policy";

/** Built policy models by weights version. */
export type PolicyCache = WeightsCache<GPT2>;

/**
 * A cache whose loader pulls the policy's weights at a version over PolicyService.StreamWeights
 * (the policy's NOT_FOUND passed on) and builds a trainable GPT2 from them.
 */
export function createPolicyCache(cfg: PretrainMixConfig, log: Logger): PolicyCache {
  return new WeightsCache<GPT2>(cfg.maxCachedVersions, async (version, signal) => {
    const started = Date.now();
    const pulled = await pullPolicyWeights({ ...policyPullOptions(cfg, "pretrain-mix"), version, signal });
    if (pulled.version !== version) throw new FailedPreconditionError(`policy_weights: the policy streamed version ${pulled.version} when asked for ${version}`);
    let model: GPT2;
    try {
      // copy: false: the pulled arrays are ours alone and dropped right after.
      model = GPT2.fromHostTensors(pulled.config, pulled.tensors, { copy: false, trainable: true });
    } catch (e) {
      // Not the caller's fault: the policy streamed weights that are not a GPT-2 of its config.
      if (e instanceof InvalidArgumentError) throw new FailedPreconditionError(`policy_weights: the policy's weights at version ${version} do not build a GPT-2: ${e.message}`);
      throw e;
    }
    log.info({ weightsVersion: version, source: pulled.source, config: pulled.config, pullMs: Date.now() - started }, "policy weights pulled");
    return { model, source: pulled.source };
  });
}
