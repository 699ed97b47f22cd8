export * from "./config";
export * from "./random";
export * from "./gpt2";
export * from "./safetensors";
export * from "./checkpoint";
