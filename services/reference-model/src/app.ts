import { referenceModel } from "@rlhf/proto";
import type { Logger } from "@rlhf/grpc-kit";
import { siblingModule, startWorkerModelService, type WorkerModelServiceApp } from "@rlhf/model-service";
import type { ReferenceModelConfig } from "./config";

/** A running reference-model service (used by main.ts and by the tests). */
export type ReferenceModelApp = WorkerModelServiceApp;

/** Serves the reference model, which runs in its compute worker (./worker.ts); SERVING once a model is in place. */
export function startReferenceModel(cfg: ReferenceModelConfig, log: Logger): Promise<ReferenceModelApp> {
  return startWorkerModelService(cfg, log, {
    definition: referenceModel.ReferenceModelServiceService,
    module: siblingModule(__filename, "worker"),
    snapshots: ["getInfo"],
    lease: { service: "reference-model", mutating: ["LoadWeights", "UploadWeights"] },
  });
}
