// Entry point of the pretrain-mix service. Tracing first: it must patch gRPC before any module loads it.
import { telemetry } from "./tracing";
import { runServiceMain } from "@rlhf/grpc-kit";
import { loadConfig } from "./config";
import { startPretrainMix } from "./app";

runServiceMain({
  service: "pretrain-mix",
  telemetry,
  loadConfig,
  start: startPretrainMix,
});
