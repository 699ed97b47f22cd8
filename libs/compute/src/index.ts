export * from "./host-tensor";
