// Entry point of the reward-model service. Tracing first: it must patch gRPC before any module loads it.
import { telemetry } from "./tracing";
import { runServiceMain } from "@rlhf/grpc-kit";
import { loadConfig } from "./config";
import { startRewardModel } from "./app";

runServiceMain({
  service: "reward-model",
  telemetry,
  loadConfig,
  start: startRewardModel,
});
