import type { Logger } from "pino";
import { createLogger } from "./logger";
import { exitOnConfigError, type MetricsEndpointConfig } from "./env";
import { installShutdownHandlers, type RunningServer } from "./server";
import { httpViewerAuthorizer, serverAuthFromEnv } from "./auth";

/** Options of {@link runServiceMain}. */
export interface ServiceMainOptions<C extends ServiceMainConfig> {
  /** Service name, on every log line and error. */
  service: string;
  /**
   * The process's telemetry, already started (before gRPC loaded). `serveMetrics` starts its
   * Prometheus endpoint (@rlhf/telemetry's Telemetry has it).
   */
  telemetry: {
    exporting: string;
    shutdown(): Promise<void>;
    serveMetrics?(endpoint: { host: string; port: number; authorize?: (authorization: string | undefined) => boolean }): Promise<{ url: string }>;
  };
  /** Parses the environment; a ConfigError stops the process with one line and status 2. */
  loadConfig: () => C;
  /** Starts the service; `dispose` frees its models once the server stopped (awaited: e.g. a last flush of events). */
  start: (cfg: C, log: Logger) => Promise<{ server: RunningServer; dispose(): void | Promise<void>; died?: Promise<string> }>;
}

/** What runServiceMain reads from a service's config: the grace period and, optionally, the metrics endpoint. */
export type ServiceMainConfig = { shutdownGraceMs: number } & Partial<MetricsEndpointConfig>;

/**
 * Starts the Prometheus endpoint of METRICS_HOST:METRICS_PORT (none when the port is 0); returns
 * what to log. A port that was set must be free (the error stops the start); the default one,
 * when busy, only costs a warning, so that several services on one machine still start.
 */
async function serveMetrics(cfg: ServiceMainConfig, telemetry: ServiceMainOptions<ServiceMainConfig>["telemetry"], log: Logger): Promise<string> {
  if (!cfg.metricsPort || !telemetry.serveMetrics) return "off";
  try {
    // With token files (RLHF_*_TOKEN_FILE) a scrape needs a token with the viewer role, as the gRPC calls do.
    const auth = serverAuthFromEnv(process.env, log);
    const url = (await telemetry.serveMetrics({ host: cfg.metricsHost ?? "127.0.0.1", port: cfg.metricsPort, authorize: auth && httpViewerAuthorizer(auth) })).url;
    return auth ? `${url} (scrapes need a token with the viewer role)` : url;
  } catch (err) {
    if (cfg.metricsPortRequired) throw err;
    log.warn({ err: (err as Error).message }, "Prometheus endpoint not started: the default METRICS_PORT is busy; set METRICS_PORT to choose one (0 turns it off)");
    return "off (default port busy)";
  }
}

/**
 * The body of every service's main.ts: configuration (one clear line and exit 2 when wrong), a
 * JSON logger, the Prometheus endpoint (METRICS_HOST:METRICS_PORT/metrics), start-up (one clear
 * line and exit 1 when it fails), and graceful shutdown on SIGTERM / SIGINT that frees the models
 * and flushes telemetry.
 */
export function runServiceMain<C extends ServiceMainConfig>(opts: ServiceMainOptions<C>): void {
  const run = async () => {
    let cfg: C;
    try {
      cfg = opts.loadConfig();
    } catch (err) {
      exitOnConfigError(err, opts.service);
    }
    const log = createLogger({ service: opts.service });
    const metrics = await serveMetrics(cfg, opts.telemetry, log);
    log.info({ tracing: opts.telemetry.exporting, metrics }, "starting");
    const app = await opts.start(cfg, log);
    // A model service whose compute worker died cannot serve again: exit, so that it is restarted.
    void app.died?.then(async (reason) => {
      log.fatal({ reason }, "the compute worker stopped: exiting so that the service is restarted");
      await app.server.shutdown(1000).catch(() => undefined);
      await opts.telemetry.shutdown().catch(() => undefined);
      process.exit(1);
    });
    installShutdownHandlers(app.server, {
      log,
      graceMs: cfg.shutdownGraceMs,
      onStopped: async () => {
        await app.dispose();
        await opts.telemetry.shutdown();
      },
    });
  };
  run().catch((err: unknown) => {
    process.stderr.write(`${opts.service}: failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
