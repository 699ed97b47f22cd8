import type { Logger, SerialQueue } from "@rlhf/grpc-kit";
import { loadInitialWeights, startModelService, type ModelServiceApp } from "@rlhf/model-service";
import { RewardModel } from "./reward";
import { rewardModelService } from "./server";
import type { RewardModelConfig } from "./config";

/** A running reward-model service (used by main.ts and by the tests). */
export type RewardModelApp = ModelServiceApp<{ model: RewardModel; queue: SerialQueue }>;

/** Loads the initial weights (if configured) and serves; SERVING once a model is in place. */
export function startRewardModel(cfg: RewardModelConfig, log: Logger): Promise<RewardModelApp> {
  return startModelService(cfg, log, async ({ backend, serving }) => {
    const model = new RewardModel(log, { checkpointRoots: cfg.checkpointRoots, microBatchTokens: cfg.microBatchTokens, onLoaded: () => serving.set(true) });
    await loadInitialWeights(cfg, model);
    const service = rewardModelService(model, cfg, backend, log);
    return { parts: { model, queue: service.queue }, service, lease: { service: "reward-model", mutating: ["Train", "Normalize", "LoadCheckpoint"] }, dispose: () => model.dispose() };
  });
}
