// Library face of the service, for tests and embedding; the process entry point is main.ts.
export { startReferenceModel, type ReferenceModelApp } from "./app";
export { loadConfig, type ReferenceModelConfig } from "./config";
