// Entry point of the policy service. Tracing first: it must patch gRPC before any module loads it.
import { telemetry } from "./tracing";
import { runServiceMain } from "@rlhf/grpc-kit";
import { loadConfig } from "./config";
import { startPolicy } from "./app";

runServiceMain({
  service: "policy",
  telemetry,
  loadConfig,
  start: startPolicy,
});
