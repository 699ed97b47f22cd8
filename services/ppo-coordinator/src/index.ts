// Library face of the service, for tests and embedding; the process entry point is main.ts.
export { startCoordinator, type CoordinatorApp } from "./app";
export { loadConfig, type CoordinatorConfig } from "./config";
export { ppoIteration, rollout, type PpoSettings, type Rollout } from "./recipe/ppo-iteration";
export type { PpoCursor } from "./recipe/records";
