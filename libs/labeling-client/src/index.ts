/**
 * `@rlhf/labeling-client`: the labeling service's typed client (submit a batch, follow it,
 * collect rankings) and the rankings JSONL export, for the coordinator and the CLI.
 */
export * from "./jsonl";
export * from "./client";
export * from "./web";
export * from "./panel";
