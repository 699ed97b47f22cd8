import { common, referenceModel } from "@rlhf/proto";
import type { CallContext, SerialQueue } from "@rlhf/grpc-kit";
import { receiveTensorSet, modelConfigFromProto, modelConfigToProto, pullPolicyWeights } from "@rlhf/tensor-transport";
import { InvalidArgumentError } from "@rlhf/errors";
import type { ReferenceModel } from "../reference";
import type { ReferenceModelConfig } from "../config";

function loaded(ref: ReferenceModel): referenceModel.LoadWeightsResponse {
  const c = ref.config;
  return { weights: ref.weights, config: c ? modelConfigToProto(c) : undefined };
}

/** LoadWeights from a checkpoint folder, a seeded random init, or the policy at a version. */
export function loadWeightsHandler(ref: ReferenceModel, queue: SerialQueue, cfg: ReferenceModelConfig) {
  return async (req: referenceModel.LoadWeightsRequest, ctx: CallContext): Promise<referenceModel.LoadWeightsResponse> => {
    const src = req.source;
    if (!src) throw new InvalidArgumentError("source", "set one of checkpoint_dir, random_init, policy_weights");
    switch (src.$case) {
      case "checkpointDir":
        return queue.run(async () => {
          await ref.loadCheckpoint(src.checkpointDir);
          return loaded(ref);
        });
      case "randomInit": {
        const config = modelConfigFromProto(src.randomInit.config, "random_init.config");
        if (!Number.isSafeInteger(src.randomInit.seed) || src.randomInit.seed < 0 || src.randomInit.seed > 2 ** 31 - 1) {
          throw new InvalidArgumentError("random_init.seed", `must be in [0, 2^31 - 1], got ${src.randomInit.seed}`);
        }
        return queue.run(() => {
          ref.loadRandom(config, src.randomInit.seed);
          return loaded(ref);
        });
      }
      case "policyWeights": {
        const pulled = await pullPolicyWeights({
          address: cfg.policyAddr,
          caller: "reference-model",
          version: src.policyWeights.version,
          deadlineMs: cfg.policyDeadlineMs,
          maxReceiveMessageBytes: cfg.maxReceiveBytes,
          maxTotalBytes: cfg.maxUploadBytes,
          signal: ctx.signal,
        });
        return queue.run(() => {
          ref.loadTensors(pulled.config, pulled.tensors, { modelId: pulled.modelId, version: pulled.version, source: pulled.source });
          return loaded(ref);
        });
      }
    }
  };
}

/** UploadWeights: a client-streamed WEIGHTS set, applied only once complete and verified. */
export function uploadWeightsHandler(ref: ReferenceModel, queue: SerialQueue, cfg: ReferenceModelConfig) {
  return async (reqs: AsyncIterable<referenceModel.UploadWeightsRequest>): Promise<referenceModel.UploadWeightsResponse> => {
    const set = await receiveTensorSet(reqs, (m) => m.chunk, {
      expectKind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS,
      maxTotalBytes: cfg.maxUploadBytes,
    });
    const current = ref.config;
    const config = set.modelConfig ? modelConfigFromProto(set.modelConfig, "chunk[0].header.model_config") : current;
    if (!config) throw new InvalidArgumentError("chunk[0].header.model_config", "is required when no model is loaded yet");
    return queue.run(() => {
      ref.loadTensors(config, set.tensors, { modelId: set.weights?.modelId || "reference", version: set.weights?.version ?? 0, source: "upload" });
      return { weights: ref.weights, bytesReceived: set.bytes };
    });
  };
}
