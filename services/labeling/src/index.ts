// Library face of the service, for tests and embedding; the process entry point is main.ts.
export { startLabeling, readOrCreateAdminToken, type LabelingApp } from "./app";
export { loadConfig, type LabelingConfig } from "./config";
export { LabelingStore } from "./store/store";
export { seedSampleBatch, SAMPLE_BATCH_ID } from "./seed";
