/**
 * Tensor transport: proto Tensor <-> host/tfjs tensors (float32, int32, float16 on the wire),
 * chunked tensor-set streaming with digest and back-pressure, and validation of the common
 * request messages.
 */
export * from "./fp16";
export * from "./convert";
export * from "./stream";
export * from "./requests";
