import { common, referenceModel, policy } from "@rlhf/proto";
import { type CallContext, type SerialQueue, createClient } from "@rlhf/grpc-kit";
import { receiveTensorSet, modelConfigFromProto, modelConfigToProto } from "@rlhf/tensor-transport";
import { FailedPreconditionError, InvalidArgumentError } from "@rlhf/errors";
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
        if (!cfg.policyAddr) throw new FailedPreconditionError("policy_weights: POLICY_ADDR is not configured on this reference-model");
        const want = src.policyWeights;
        const client = createClient(policy.PolicyServiceClient, cfg.policyAddr, { maxReceiveMessageBytes: cfg.maxReceiveBytes });
        try {
          const stream = client.serverStream(
            "streamWeights",
            { model: policy.ModelKind.MODEL_KIND_POLICY, version: want.version, dtype: common.Dtype.DTYPE_FLOAT32 },
            { deadlineMs: cfg.policyDeadlineMs, signal: ctx.signal },
          );
          const set = await receiveTensorSet(stream, (m: policy.StreamWeightsResponse) => m.chunk, {
            expectKind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS,
            maxTotalBytes: cfg.maxUploadBytes,
            field: "policy.StreamWeights",
          });
          const config = modelConfigFromProto(set.modelConfig, "policy.StreamWeights header.model_config");
          return queue.run(() => {
            ref.loadTensors(config, set.tensors, { modelId: set.weights?.modelId || "policy", version: set.weights?.version ?? want.version, source: `policy@${cfg.policyAddr}` });
            return loaded(ref);
          });
        } finally {
          client.close();
        }
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
