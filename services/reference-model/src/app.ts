import type { Logger } from "@rlhf/grpc-kit";
import { loadInitialWeights, startModelService, type ModelServiceApp } from "@rlhf/model-service";
import { ReferenceModel } from "./reference";
import { referenceModelService } from "./server";
import type { ReferenceModelConfig } from "./config";

/** A running reference-model service (used by main.ts and by the tests). */
export type ReferenceModelApp = ModelServiceApp<{ model: ReferenceModel }>;

/** Loads the initial weights (if configured) and serves; SERVING once a model is in place. */
export function startReferenceModel(cfg: ReferenceModelConfig, log: Logger): Promise<ReferenceModelApp> {
  return startModelService(cfg, log, async ({ backend, serving }) => {
    const model = new ReferenceModel(log, { maxLogitsElements: cfg.maxLogitsElements, checkpointRoots: cfg.checkpointRoots, onLoaded: () => serving.set(true) });
    await loadInitialWeights(cfg, model);
    return { parts: { model }, service: referenceModelService(model, cfg, backend, log), lease: { service: "reference-model", mutating: ["LoadWeights", "UploadWeights"] }, dispose: () => model.dispose() };
  });
}
