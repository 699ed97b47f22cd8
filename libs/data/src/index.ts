/**
 * `@rlhf/data`: the pretraining corpus (Brown), instruction tasks with exact gold answers,
 * simulated labelers, users' JSONL/text data, and export of the built-in datasets. No gRPC.
 */
export * from "./rng";
export * from "./words";
export * from "./brown";
export * from "./pretrain";
export * from "./tasks";
export * from "./short-tasks";
export * from "./demonstrators";
export * from "./scoring";
export * from "./responses";
export * from "./labelers";
export * from "./sampler";
export * from "./jsonl";
export * from "./user-files";
export * from "./builtin";
