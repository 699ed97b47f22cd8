/** The reward model's compute worker (@rlhf/model-service startWorkerModelService): the model, its queue and the handlers. */
import { loadInitialWeights, type CreateCompute } from "@rlhf/model-service";
import { RewardModel } from "./reward";
import { rewardModelService } from "./server";
import type { RewardModelConfig } from "./config";

export const createCompute: CreateCompute<RewardModelConfig> = async ({ cfg, log, backend, serving }) => {
  const model = new RewardModel(log, { checkpointRoots: cfg.checkpointRoots, microBatchTokens: cfg.microBatchTokens, onLoaded: () => serving.set(true) });
  await loadInitialWeights(cfg, model);
  return { service: rewardModelService(model, cfg, backend, log), dispose: () => model.dispose() };
};
