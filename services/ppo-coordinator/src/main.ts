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
    // Once the server has drained: runs in progress stop and are recorded FAILED (resumable), then
    // what NATS has not acked yet gets up to 2 s (events.jsonl has everything anyway).
    return {
      server: app.server,
      dispose: async () => {
        // Bounded (rlhf's SIGKILL comes 20 s after SIGTERM): a run whose stage has not stopped
        // within 8 s is marked at the coordinator's next start instead.
        await Promise.race([app.store.stopAll(), new Promise((r) => setTimeout(r, 8_000).unref())]);
        await app.events?.close();
      },
    };
  },
});
