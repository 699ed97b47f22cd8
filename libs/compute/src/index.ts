export * from "./host-tensor";
export * from "./backend";
export * from "./kernels";
