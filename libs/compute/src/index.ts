export * from "./host-tensor";
export * from "./backend";
export * from "./kernels";
export * from "./metrics";
export * from "./fused";
