// Library face of the service, for tests and embedding; the process entry point is main.ts.
export { startCoordinator, type CoordinatorApp } from "./app";
export { loadConfig, type CoordinatorConfig } from "./config";
export { ppoIteration, rollout, type PpoSettings, type Rollout } from "./recipe/ppo-iteration";
export type { PpoCursor } from "./recipe/records";
export { ReplicaSet, parseAddressList, splitTokenBatch, REWARD_MODEL_ROUTES, REWARD_MODEL_IDEMPOTENT, REFERENCE_MODEL_ROUTES, REFERENCE_MODEL_IDEMPOTENT, PRETRAIN_MIX_ROUTES, PRETRAIN_MIX_IDEMPOTENT, type ServiceClient } from "./replicas";
