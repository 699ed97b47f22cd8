// Entry point of the labeling service. Tracing first: it must patch gRPC before any module loads it.
import { telemetry } from "./tracing";
import { runServiceMain } from "@rlhf/grpc-kit";
import { loadConfig } from "./config";
import { startLabeling } from "./app";

runServiceMain({
  service: "labeling",
  telemetry,
  loadConfig,
  start: async (cfg, log) => {
    const app = await startLabeling(cfg, log);
    // One line a person (and `rlhf label serve`) reads: where the UI is and how the admin gets in.
    process.stdout.write(`labeling: web UI ${app.http.url} · admin ${app.http.url}admin (token in ${cfg.adminTokenFile}) · gRPC ${app.server.address} · ${app.store.kind}\n`);
    return { server: app.server, dispose: () => app.close() };
  },
});
