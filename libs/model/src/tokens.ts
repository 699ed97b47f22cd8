/**
 * The part of @rlhf/model that loads no TensorFlow.js: tokenizers (byte, Brown BPE, GPT-2 BPE),
 * model shapes and presets, and checkpoint `config.json`. Import it as `@rlhf/model/tokens` where
 * only tokens and shapes are needed (the coordinator), so that the process does not load TF.js.
 */
export * from "./tokenizer";
export * from "./bpe";
export * from "./config";
export * from "./checkpoint-config";
export * from "./rows";
