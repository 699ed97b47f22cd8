/** The reference model's compute worker (@rlhf/model-service startWorkerModelService): the frozen model and the handlers. */
import { loadInitialWeights, type CreateCompute } from "@rlhf/model-service";
import { ReferenceModel } from "./reference";
import { referenceModelService } from "./server";
import type { ReferenceModelConfig } from "./config";

export const createCompute: CreateCompute<ReferenceModelConfig> = async ({ cfg, log, backend, serving }) => {
  const model = new ReferenceModel(log, { maxLogitsElements: cfg.maxLogitsElements, checkpointRoots: cfg.checkpointRoots, onLoaded: () => serving.set(true) });
  await loadInitialWeights(cfg, model);
  return { service: referenceModelService(model, cfg, backend, log), dispose: () => model.dispose() };
};
