import type { rewardModel } from "@rlhf/proto";
import type { SerialQueue } from "@rlhf/grpc-kit";
import { modelConfigToProto } from "@rlhf/tensor-transport";
import type { RewardModel } from "../reward";
import type { RewardModelConfig } from "../config";

/** GetInfo: what is loaded, where, the request limits and the queue depth. */
export function getInfoHandler(rm: RewardModel, queue: SerialQueue, cfg: RewardModelConfig, backend: string) {
  return async (): Promise<rewardModel.GetInfoResponse> => {
    const c = rm.config;
    return {
      weights: c ? rm.weights : undefined,
      config: c ? modelConfigToProto(c) : undefined,
      bias: rm.bias,
      backend,
      maxBatchSequences: cfg.maxBatchSequences,
      maxBatchTokens: cfg.maxBatchTokens,
      maxBatchGroups: cfg.maxBatchGroups,
      maxTrainTokens: cfg.maxTrainTokens,
      queueDepth: queue.depth,
      maxQueueDepth: queue.capacity,
      training: rm.training,
    };
  };
}
