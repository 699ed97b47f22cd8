import type { Logger } from "pino";
import { createLogger } from "./logger";
import { exitOnConfigError } from "./env";
import { installShutdownHandlers, type RunningServer } from "./server";

/** Options of {@link runServiceMain}. */
export interface ServiceMainOptions<C extends { shutdownGraceMs: number }> {
  /** Service name, on every log line and error. */
  service: string;
  /** The process's telemetry, already started (before gRPC loaded). */
  telemetry: { exporting: string; shutdown(): Promise<void> };
  /** Parses the environment; a ConfigError stops the process with one line and status 2. */
  loadConfig: () => C;
  /** Starts the service; `dispose` frees its models once the server stopped. */
  start: (cfg: C, log: Logger) => Promise<{ server: RunningServer; dispose(): void }>;
}

/**
 * The body of every service's main.ts: configuration (one clear line and exit 2 when wrong), a
 * JSON logger, start-up (one clear line and exit 1 when it fails), and graceful shutdown on
 * SIGTERM / SIGINT that frees the models and flushes telemetry.
 */
export function runServiceMain<C extends { shutdownGraceMs: number }>(opts: ServiceMainOptions<C>): void {
  const run = async () => {
    let cfg: C;
    try {
      cfg = opts.loadConfig();
    } catch (err) {
      exitOnConfigError(err, opts.service);
    }
    const log = createLogger({ service: opts.service });
    log.info({ tracing: opts.telemetry.exporting }, "starting");
    const app = await opts.start(cfg, log);
    installShutdownHandlers(app.server, {
      log,
      graceMs: cfg.shutdownGraceMs,
      onStopped: async () => {
        app.dispose();
        await opts.telemetry.shutdown();
      },
    });
  };
  run().catch((err: unknown) => {
    process.stderr.write(`${opts.service}: failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
