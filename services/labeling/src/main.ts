// Entry point of the labeling service. Tracing first: it must patch gRPC before any module loads it.
import { telemetry } from "./tracing";
import { readFileSync } from "node:fs";
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
    // `rlhf label serve` (LABELING_PRINT_LINKS=1): links with tokens for the person at the terminal, never in a container's log.
    if (process.env.LABELING_PRINT_LINKS === "1") {
      process.stdout.write(`  admin link:  ${app.http.url}admin#token=${readFileSync(cfg.adminTokenFile, "utf8").split("\n")[0].trim()}\n`);
      if (app.seeded) process.stdout.write(`  sample batch seeded; labeler "demo": ${app.http.url}#invite=${app.seeded.demoToken}\n`);
      process.stdout.write(`  simulated labelers: rlhf label simulate --url ${app.http.url} --admin-token-file ${cfg.adminTokenFile}\n`);
    }
    return { server: app.server, dispose: () => app.close() };
  },
});
