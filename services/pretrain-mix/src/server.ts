import { pretrainMix } from "@rlhf/proto";
import { unary, serverStream, SerialQueue, type Logger, type ServiceRegistration } from "@rlhf/grpc-kit";
import type { Corpora } from "./corpora";
import type { PretrainMixConfig } from "./config";
import type { PolicyModels } from "@rlhf/model-service";
import { CallGate } from "./gate";
import { sampleBatchHandler } from "./handlers/sample-batch";
import { ptxGradientsHandler } from "./handlers/ptx-gradients";
import { getInfoHandler } from "./handlers/get-info";

/** Maps the generated PretrainMixService to its handlers. */
export function pretrainMixService(
  corpora: Corpora,
  cache: PolicyModels,
  cfg: PretrainMixConfig,
  backend: string,
  log: Logger,
): ServiceRegistration & { queue: SerialQueue; gate: CallGate } {
  // PtxGradients calls are admitted up to the capacity (RESOURCE_EXHAUSTED beyond, before any
  // pull), then run their forward + backward one at a time on the queue. SampleBatch and GetInfo
  // touch no model and need neither.
  const gate = new CallGate("pretrain-mix compute", cfg.queueCapacity);
  // Room for every admitted call: SerialQueue counts a task as waiting until it starts, so the
  // gate's capacity + 1 calls may all be waiting at one instant.
  const queue = new SerialQueue("pretrain-mix compute", cfg.queueCapacity + 1);
  const implementation: pretrainMix.PretrainMixServiceServer = {
    sampleBatch: unary(log, sampleBatchHandler(corpora, cfg)),
    ptxGradients: serverStream(log, ptxGradientsHandler({ corpora, cache, gate, queue }, cfg)),
    getInfo: unary(log, getInfoHandler(corpora.builtin, cache, gate, cfg, backend)),
  };
  return { definition: pretrainMix.PretrainMixServiceService, implementation, queue, gate };
}
