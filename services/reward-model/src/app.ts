import { rewardModel } from "@rlhf/proto";
import type { Logger } from "@rlhf/grpc-kit";
import { siblingModule, startWorkerModelService, type WorkerModelServiceApp } from "@rlhf/model-service";
import type { RewardModelConfig } from "./config";

/** A running reward-model service (used by main.ts and by the tests). */
export type RewardModelApp = WorkerModelServiceApp;

/** Serves the reward model, which runs in its compute worker (./worker.ts); SERVING once a model is in place. */
export function startRewardModel(cfg: RewardModelConfig, log: Logger): Promise<RewardModelApp> {
  return startWorkerModelService(cfg, log, {
    definition: rewardModel.RewardModelServiceService,
    module: siblingModule(__filename, "worker"),
    snapshots: ["getInfo"],
    lease: { service: "reward-model", mutating: ["Train", "Normalize", "LoadCheckpoint"] },
  });
}
