import { pretrainMix } from "@rlhf/proto";
import type { Logger } from "@rlhf/grpc-kit";
import { siblingModule, startWorkerModelService, type WorkerModelServiceApp } from "@rlhf/model-service";
import type { PretrainMixConfig } from "./config";

/** A running pretrain-mix service (used by main.ts and by the tests). */
export type PretrainMixApp = WorkerModelServiceApp;

/** Serves the pretraining mix, whose corpora, cached policies and handlers run in its compute worker (./worker.ts). */
export function startPretrainMix(cfg: PretrainMixConfig, log: Logger): Promise<PretrainMixApp> {
  return startWorkerModelService(cfg, log, { definition: pretrainMix.PretrainMixServiceService, module: siblingModule(__filename, "worker"), snapshots: ["getInfo"] });
}
