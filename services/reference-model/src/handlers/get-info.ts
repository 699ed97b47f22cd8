import type { referenceModel } from "@rlhf/proto";
import { modelConfigToProto } from "@rlhf/tensor-transport";
import type { ReferenceModel } from "../reference";
import type { ReferenceModelConfig } from "../config";

/** GetInfo: what is loaded, where, and the request limits. */
export function getInfoHandler(ref: ReferenceModel, cfg: ReferenceModelConfig, backend: string) {
  return async (): Promise<referenceModel.GetInfoResponse> => {
    const c = ref.config;
    return {
      weights: ref.weights,
      config: c ? modelConfigToProto(c) : undefined,
      backend,
      maxBatchSequences: cfg.maxBatchSequences,
      maxBatchTokens: cfg.maxBatchTokens,
    };
  };
}
