/**
 * A whole service process for ../worker-main.slow.test.ts: runServiceMain over the busy compute
 * worker (./busy-compute.ts) on PORT (0: any free port; the "listening" log line says which), as
 * a model service's main.ts runs its own.
 */
import { runServiceMain } from "@rlhf/grpc-kit";
import { siblingModule, startWorkerModelService } from "../index";
import { BUSY_SERVICE } from "./busy-compute";

runServiceMain({
  service: "busy-test",
  telemetry: { exporting: "off", shutdown: async () => undefined },
  loadConfig: () => ({ host: "127.0.0.1", port: Number(process.env.PORT ?? 0), maxReceiveBytes: 1 << 20, shutdownGraceMs: 2000, gate: new Int32Array(new SharedArrayBuffer(4)) }),
  start: (cfg, log) => startWorkerModelService(cfg, log, { definition: BUSY_SERVICE, module: siblingModule(__filename, "busy-compute"), snapshots: ["state"] }),
});
