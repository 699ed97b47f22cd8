// Library face of the service, for tests and embedding; the process entry point is main.ts.
export { startPolicy, type PolicyApp } from "./app";
export { loadConfig, type PolicyConfig } from "./config";
export { evaluateSequences, ppoStep, type Seqs, type PpoBatch, type PpoSettings, type PpoStats } from "./compute";
