import { common, referenceModel } from "@rlhf/proto";
import type { CallContext, SerialQueue } from "@rlhf/grpc-kit";
import { receiveTensorSet, modelConfigFromProto } from "@rlhf/tensor-transport";
import { loadedWeights, loadWeightsSource, policyPullOptions } from "@rlhf/model-service";
import { InvalidArgumentError } from "@rlhf/errors";
import type { ReferenceModel } from "../reference";
import type { ReferenceModelConfig } from "../config";

/** LoadWeights from a checkpoint folder, a seeded random init, or the policy at a version. */
export function loadWeightsHandler(ref: ReferenceModel, queue: SerialQueue, cfg: ReferenceModelConfig) {
  return async (req: referenceModel.LoadWeightsRequest, ctx: CallContext): Promise<referenceModel.LoadWeightsResponse> =>
    loadWeightsSource(req.source, { target: ref, queue, missing: "set one of checkpoint_dir, random_init, policy_weights", pull: policyPullOptions(cfg, "reference-model"), signal: ctx.signal, loaded: () => loadedWeights(ref) });
}

/** UploadWeights: a client-streamed WEIGHTS set with its architecture, applied only once complete and verified. */
export function uploadWeightsHandler(ref: ReferenceModel, queue: SerialQueue, cfg: ReferenceModelConfig) {
  return async (reqs: AsyncIterable<referenceModel.UploadWeightsRequest>): Promise<referenceModel.UploadWeightsResponse> => {
    const set = await receiveTensorSet(reqs, (m) => m.chunk, {
      expectKind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS,
      maxTotalBytes: cfg.maxUploadBytes,
    });
    // Always required: the tensors' shapes do not say the number of heads, so keeping the loaded
    // model's would silently build another model from the same shapes.
    if (!set.modelConfig) throw new InvalidArgumentError("chunk[0].header.model_config", "is required (the number of heads cannot be read off the tensors' shapes)");
    const config = modelConfigFromProto(set.modelConfig, "chunk[0].header.model_config");
    return queue.run(() => {
      ref.loadTensors(config, set.tensors, { modelId: set.weights?.modelId || "reference", version: set.weights?.version ?? 0, source: "upload" });
      return { weights: ref.weights, bytesReceived: set.bytes };
    });
  };
}
