export {};
export * from "./ppo-loss";
export * from "./layout";
export * from "./rewards";
export * from "./gae";
export * from "./whiten";
export * from "./kl-controller";
export * from "./stats";
