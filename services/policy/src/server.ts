import { policy as policyPb } from "@rlhf/proto";
import { unary, clientStream, serverStream, bidiStream, SerialQueue, type Logger, type ServiceRegistration } from "@rlhf/grpc-kit";
import type { PolicyState } from "./policy";
import type { PolicyConfig } from "./config";
import { sftHandler } from "./handlers/sft";
import { evaluateHandler, generateHandler, ppoUpdateHandler } from "./handlers/rollout";
import { initCriticHandler, loadCheckpointHandler, saveCheckpointHandler, streamWeightsHandler } from "./handlers/weights";
import { getInfoHandler } from "./handlers/get-info";

/** Maps the generated PolicyService to its handlers. */
export function policyService(state: PolicyState, cfg: PolicyConfig, backend: { name: string; detail: string }, log: Logger): ServiceRegistration & { queue: SerialQueue } {
  // One queue for everything that touches the models: calls run one at a time in arrival order
  // (Sft holds it for its whole training); a burst beyond the capacity gets RESOURCE_EXHAUSTED.
  const queue = new SerialQueue("policy compute", cfg.queueCapacity, cfg.fileDeadlineMs);
  // RunLease is the kit's (startWorkerModelService, in the main thread).
  const implementation: Omit<policyPb.PolicyServiceServer, "runLease"> = {
    sft: bidiStream(log, sftHandler(state, queue, cfg)),
    generate: serverStream(log, generateHandler(state, queue, cfg)),
    evaluate: unary(log, evaluateHandler(state, queue, cfg)),
    ppoUpdate: clientStream(log, ppoUpdateHandler(state, queue, cfg)),
    streamWeights: serverStream(log, streamWeightsHandler(state, queue)),
    initCritic: unary(log, initCriticHandler(state, queue, cfg)),
    loadCheckpoint: unary(log, loadCheckpointHandler(state, queue)),
    saveCheckpoint: unary(log, saveCheckpointHandler(state, queue)),
    getInfo: unary(log, getInfoHandler(state, queue, cfg, backend)),
  };
  return { definition: policyPb.PolicyServiceService, implementation, queue };
}
