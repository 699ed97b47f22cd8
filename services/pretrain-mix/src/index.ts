// Library face of the service, for tests and embedding; the process entry point is main.ts.
export { startPretrainMix, type PretrainMixApp } from "./app";
export { loadConfig, type PretrainMixConfig } from "./config";
export { TokenizedCorpus, tokenizeDocuments, WINDOW_ORDER_STREAM, type SplitName, type WindowBatch } from "./corpus";
export { ptxGradients, type PtxResult } from "./ptx";
