// Entry point of the ppo-coordinator. Tracing first: it must patch gRPC before any module loads it.
import { telemetry } from "./tracing";
import { runServiceMain } from "@rlhf/grpc-kit";
import { loadConfig } from "./config";
import { startCoordinator } from "./app";

runServiceMain({
  service: "ppo-coordinator",
  telemetry,
  loadConfig,
  start: async (cfg, log) => {
    const app = await startCoordinator(cfg, log);
    // Runs in progress are cancelled (and stay resumable) before the server drains.
    // Then what NATS has not acked yet gets up to 2 s (events.jsonl has everything anyway).
    return {
      server: app.server,
      dispose: async () => {
        void app.store.stopAll();
        await app.events?.close();
      },
    };
  },
});
