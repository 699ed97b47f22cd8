import { referenceModel } from "@rlhf/proto";
import { unary, clientStream, SerialQueue, type Logger, type ServiceRegistration } from "@rlhf/grpc-kit";
import type { ReferenceModel } from "./reference";
import type { ReferenceModelConfig } from "./config";
import { logProbsHandler } from "./handlers/log-probs";
import { loadWeightsHandler, uploadWeightsHandler } from "./handlers/weights";
import { getInfoHandler } from "./handlers/get-info";

/** Maps the generated ReferenceModelService to its handlers. */
export function referenceModelService(ref: ReferenceModel, cfg: ReferenceModelConfig, backend: string, log: Logger): ServiceRegistration & { queue: SerialQueue } {
  // One queue for everything that touches the model: calls run one at a time, a burst beyond
  // the capacity is refused with RESOURCE_EXHAUSTED instead of piling up activations in memory.
  const queue = new SerialQueue("reference-model compute", cfg.queueCapacity, cfg.fileDeadlineMs);
  // RunLease is the kit's (startWorkerModelService, in the main thread).
  const implementation: Omit<referenceModel.ReferenceModelServiceServer, "runLease"> = {
    logProbs: unary(log, logProbsHandler(ref, queue, cfg)),
    loadWeights: unary(log, loadWeightsHandler(ref, queue, cfg)),
    uploadWeights: clientStream(log, uploadWeightsHandler(ref, queue, cfg)),
    getInfo: unary(log, getInfoHandler(ref, cfg, backend)),
  };
  return { definition: referenceModel.ReferenceModelServiceService, implementation, queue };
}
