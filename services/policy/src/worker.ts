/**
 * The policy's compute worker (@rlhf/model-service startWorkerModelService): the policy and
 * critic, their queue and the handlers that use them. Weights changes go to the main thread,
 * which publishes them.
 */
import { loadInitialWeights, type CreateCompute } from "@rlhf/model-service";
import { PolicyState } from "./policy";
import { policyService } from "./server";
import type { PolicyConfig } from "./config";

export const createCompute: CreateCompute<PolicyConfig> = async ({ cfg, log, backend, backendDetail, serving, notify }) => {
  const state = new PolicyState(log, {
    checkpointRoots: cfg.checkpointRoots,
    tokenizer: cfg.tokenizer,
    onLoaded: () => serving.set(true),
    onWeightsChanged: cfg.natsServers ? notify : undefined,
  });
  await loadInitialWeights(cfg, state);
  return { service: policyService(state, cfg, { name: backend, detail: backendDetail }, log), dispose: () => state.dispose() };
};
