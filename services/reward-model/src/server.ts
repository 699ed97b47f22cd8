import { rewardModel } from "@rlhf/proto";
import { unary, clientStream, serverStream, bidiStream, SerialQueue, type Logger, type ServiceRegistration } from "@rlhf/grpc-kit";
import type { RewardModel } from "./reward";
import type { RewardModelConfig } from "./config";
import { scoreHandler } from "./handlers/score";
import { trainHandler } from "./handlers/train";
import { normalizeHandler } from "./handlers/normalize";
import { accuracyHandler } from "./handlers/accuracy";
import { loadCheckpointHandler, saveCheckpointHandler, streamWeightsHandler } from "./handlers/weights";
import { getInfoHandler } from "./handlers/get-info";

/** Maps the generated RewardModelService to its handlers. */
export function rewardModelService(rm: RewardModel, cfg: RewardModelConfig, backend: string, log: Logger): ServiceRegistration & { queue: SerialQueue } {
  // One queue for everything that touches the model: calls run one at a time (a Train call holds
  // it for its whole training), a burst beyond the capacity is refused with RESOURCE_EXHAUSTED.
  const queue = new SerialQueue("reward-model compute", cfg.queueCapacity, cfg.fileDeadlineMs);
  // RunLease is the kit's (startWorkerModelService, in the main thread).
  const implementation: Omit<rewardModel.RewardModelServiceServer, "runLease"> = {
    train: bidiStream(log, trainHandler(rm, queue, cfg)),
    score: unary(log, scoreHandler(rm, queue, cfg)),
    normalize: clientStream(log, normalizeHandler(rm, queue, cfg)),
    accuracy: unary(log, accuracyHandler(rm, queue, cfg)),
    streamWeights: serverStream(log, streamWeightsHandler(rm, queue)),
    loadCheckpoint: unary(log, loadCheckpointHandler(rm, queue, cfg)),
    saveCheckpoint: unary(log, saveCheckpointHandler(rm, queue)),
    getInfo: unary(log, getInfoHandler(rm, queue, cfg, backend)),
  };
  return { definition: rewardModel.RewardModelServiceService, implementation, queue };
}
