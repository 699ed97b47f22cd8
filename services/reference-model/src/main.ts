// Entry point of the reference-model service. Tracing first: it must patch gRPC before any module loads it.
import { telemetry } from "./tracing";
import { runServiceMain } from "@rlhf/grpc-kit";
import { loadConfig } from "./config";
import { startReferenceModel } from "./app";

runServiceMain({
  service: "reference-model",
  telemetry,
  loadConfig,
  start: startReferenceModel,
});
