import type { policy as policyPb } from "@rlhf/proto";
import type { SerialQueue } from "@rlhf/grpc-kit";
import { modelConfigToProto } from "@rlhf/tensor-transport";
import type { PolicyState } from "../policy";
import type { PolicyConfig } from "../config";

/** GetInfo: what is loaded, the limits and the queue. */
export function getInfoHandler(state: PolicyState, queue: SerialQueue, cfg: PolicyConfig, backend: { name: string; detail: string }) {
  return async (): Promise<policyPb.GetInfoResponse> => {
    const pc = state.policyConfig;
    const cc = state.criticConfig;
    return {
      policyWeights: pc ? state.policyWeights : undefined,
      policyConfig: pc ? modelConfigToProto(pc) : undefined,
      criticWeights: state.criticWeights,
      criticConfig: cc ? modelConfigToProto(cc) : undefined,
      backend: backend.name,
      backendDetail: backend.detail,
      maxBatchSequences: cfg.maxBatchSequences,
      maxBatchTokens: cfg.maxBatchTokens,
      maxGenerateSequences: cfg.maxGenerateSequences,
      maxNewTokens: cfg.maxNewTokens,
      maxSftTokens: cfg.maxSftTokens,
      eosTokenId: state.defaultEos(cfg.eosTokenId),
      queueDepth: queue.depth,
      maxQueueDepth: queue.capacity,
      training: state.training,
    };
  };
}
