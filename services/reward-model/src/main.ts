// Entry point of the reward-model service. Tracing first: it must patch gRPC before any module
// loads it.
import { telemetry } from "./tracing";
import { createLogger, installShutdownHandlers, exitOnConfigError } from "@rlhf/grpc-kit";
import { loadConfig } from "./config";
import { startRewardModel } from "./app";

const SERVICE = "reward-model";

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = loadConfig();
  } catch (err) {
    exitOnConfigError(err, SERVICE);
  }
  const log = createLogger({ service: SERVICE });
  log.info({ tracing: telemetry.exporting }, "starting");
  const app = await startRewardModel(cfg, log);
  installShutdownHandlers(app.server, {
    log,
    graceMs: cfg.shutdownGraceMs,
    onStopped: async () => {
      app.model.dispose();
      await telemetry.shutdown();
    },
  });
}

main().catch((err: unknown) => {
  const e = err as Error;
  process.stderr.write(`${SERVICE}: failed to start: ${e.message}\n`);
  process.exit(1);
});
