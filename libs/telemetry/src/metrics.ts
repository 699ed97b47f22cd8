/**
 * OpenTelemetry metrics of every process: the readers handed to the SDK by `startTelemetry`, the
 * Prometheus scrape endpoint, and the instruments of the registry (./instruments.ts).
 *
 * - Prometheus: always a pull reader; `serveMetrics` (run by grpc-kit's runServiceMain from
 *   METRICS_HOST / METRICS_PORT) serves it at `http://host:port/metrics`. Every series carries
 *   the `service_name` label (the resource's service.name), so one query covers all services.
 * - OTLP: a periodic push reader when OTEL_METRICS_EXPORTER allows "otlp" (its default) and an
 *   endpoint is set (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT);
 *   protocol from OTEL_EXPORTER_OTLP_METRICS_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL
 *   (http/protobuf (default), http/json, grpc); every OTEL_METRIC_EXPORT_INTERVAL ms (default
 *   60,000). Without an endpoint nothing is pushed (the SDK's own default would push to
 *   localhost:4318 every minute).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { metrics, type Counter, type Gauge, type Meter, type MeterProvider } from "@opentelemetry/api";
import { PeriodicExportingMetricReader, type MetricReader, type PushMetricExporter } from "@opentelemetry/sdk-metrics";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { OTLPMetricExporter as OtlpProto } from "@opentelemetry/exporter-metrics-otlp-proto";
import { OTLPMetricExporter as OtlpHttpJson } from "@opentelemetry/exporter-metrics-otlp-http";
import { ATTR, findInstrument, type InstrumentKind, type InstrumentSpec, type TokenOperation } from "./instruments";
import { otlpTarget } from "./otlp-env";

/** Meter (instrumentation scope) name of the instruments made here. */
export const RLHF_METER = "@rlhf/telemetry";

/** Path of the Prometheus endpoint. */
export const METRICS_PATH = "/metrics";

/** The metric side of a telemetry pipeline. */
export interface MetricsPipeline {
  /** Readers for the MeterProvider: the Prometheus reader, then the OTLP one if any. */
  readers: MetricReader[];
  /** The Prometheus reader (pull); {@link serveMetrics} serves it over HTTP. */
  prometheus: PrometheusExporter;
  /** Where metrics are pushed: "otlp http/protobuf -> URL" or "none". */
  pushing: string;
}

type Env = Record<string, string | undefined>;

function otlpMetricExporter(env: Env): { exporter: PushMetricExporter; label: string } | undefined {
  const target = otlpTarget(env, "METRICS");
  if (!target) return undefined;
  const label = `otlp ${target.protocol} -> ${target.endpoint}`;
  switch (target.protocol) {
    case "http/protobuf":
      return { exporter: new OtlpProto(), label };
    case "http/json":
      return { exporter: new OtlpHttpJson(), label };
    case "grpc": {
      // Loaded only when asked for: it pulls in @grpc/grpc-js, after the instrumentation is set.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { OTLPMetricExporter } = require("@opentelemetry/exporter-metrics-otlp-grpc") as typeof import("@opentelemetry/exporter-metrics-otlp-grpc");
      return { exporter: new OTLPMetricExporter(), label };
    }
  }
}

function positiveMs(env: Env, name: string, def: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return def;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1) throw new Error(`${name} must be a whole number of milliseconds >= 1, got "${raw}"`);
  return Number(raw);
}

/** The metric readers of one process, from the standard OTEL_* variables (see the file comment). */
export function createMetricsPipeline(env: Env = process.env): MetricsPipeline {
  // Pull only: our own HTTP server serves it (serveMetrics), so the exporter never listens.
  const prometheus = new PrometheusExporter({ preventServerStart: true, withResourceConstantLabels: /^service\.name$/ });
  const readers: MetricReader[] = [prometheus];
  const otlp = otlpMetricExporter(env);
  if (otlp) {
    const exportIntervalMillis = positiveMs(env, "OTEL_METRIC_EXPORT_INTERVAL", 60_000);
    const exportTimeoutMillis = Math.min(positiveMs(env, "OTEL_METRIC_EXPORT_TIMEOUT", 30_000), exportIntervalMillis);
    readers.push(new PeriodicExportingMetricReader({ exporter: otlp.exporter, exportIntervalMillis, exportTimeoutMillis }));
  }
  return { readers, prometheus, pushing: otlp?.label ?? "none" };
}

/** Where {@link serveMetrics} listens. */
export interface MetricsEndpointOptions {
  /** Interface, e.g. 127.0.0.1 or 0.0.0.0. */
  host: string;
  /** Port; 0 picks a free one (tests). */
  port: number;
  /**
   * When set, a scrape must carry an `Authorization` header this accepts (grpc-kit passes a check
   * of `Bearer <token>` against the service's token files, viewer role); otherwise 401.
   */
  authorize?: (authorization: string | undefined) => boolean;
}

/** A listening Prometheus endpoint. */
export interface MetricsEndpoint {
  /** `http://host:port/metrics`. */
  url: string;
  host: string;
  /** The bound port. */
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `prometheus` at `http://host:port/metrics` (GET or HEAD; anything else 404/405; 401
 * without an accepted `Authorization` header when `opts.authorize` is set).
 * Rejects with one line naming METRICS_PORT / METRICS_HOST when the port is busy or the address
 * is not this machine's. The server does not keep the process alive.
 */
export function serveMetrics(prometheus: PrometheusExporter, opts: MetricsEndpointOptions): Promise<MetricsEndpoint> {
  // The resource's host/process attributes are detected asynchronously; reading them before they
  // settle (target_info of a scrape right after start) makes the SDK log an error. Wait once.
  let settled: Promise<void> | undefined;
  const resourceSettled = () =>
    (settled ??= prometheus.collect().then(
      (r) => r.resourceMetrics.resource.waitForAsyncAttributes?.(),
      () => undefined,
    ));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== METRICS_PATH) {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: the metrics are at ${METRICS_PATH}\n`);
    } else if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
    } else if (opts.authorize && !opts.authorize(req.headers.authorization)) {
      res.writeHead(401, { "www-authenticate": 'Bearer realm="metrics"', "content-type": "text/plain" }).end("a bearer token with the viewer role is needed\n");
    } else {
      void resourceSettled().then(() => prometheus.getMetricsRequestHandler(req, res));
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const where = `${opts.host}:${opts.port}`;
      if (err.code === "EADDRINUSE") reject(new Error(`METRICS_PORT ${opts.port} is already in use on ${opts.host} (set METRICS_PORT to a free port, or 0 to turn the Prometheus endpoint off)`));
      else if (err.code === "EADDRNOTAVAIL" || err.code === "ENOTFOUND" || err.code === "EAI_AGAIN") reject(new Error(`METRICS_HOST ${opts.host} is not an address of this machine (${err.code})`));
      else if (err.code === "EACCES") reject(new Error(`METRICS_PORT ${opts.port}: permission denied to listen on ${where}`));
      else reject(new Error(`cannot serve metrics on ${where}: ${err.message}`));
    });
    server.listen({ host: opts.host, port: opts.port }, () => {
      server.unref();
      const addr = server.address();
      const port = typeof addr === "object" && addr ? addr.port : opts.port;
      const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
      resolve({
        url: `http://${host}:${port}${METRICS_PATH}`,
        host: opts.host,
        port,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}

// The metrics API has no proxy provider: instruments made before the SDK is installed are no-ops
// for good. So they are made on first use, per global provider.
const made = new WeakMap<MeterProvider, Map<string, unknown>>();

function registered<T>(name: string, kind: InstrumentKind, make: (meter: Meter, spec: InstrumentSpec) => T): T {
  const spec = findInstrument(name);
  if (!spec || spec.kind !== kind) throw new Error(`${name} is not a registered ${kind} instrument (libs/telemetry/src/instruments.ts)`);
  const provider = metrics.getMeterProvider();
  let byName = made.get(provider);
  if (!byName) made.set(provider, (byName = new Map()));
  let inst = byName.get(name) as T | undefined;
  if (inst === undefined) {
    inst = make(provider.getMeter(RLHF_METER), spec);
    byName.set(name, inst);
  }
  return inst;
}

/** The registered synchronous gauge `name` (throws if the registry has no such gauge). */
export function registeredGauge(name: string): Gauge {
  return registered(name, "gauge", (m, s) => m.createGauge(s.name, { unit: s.unit, description: s.description }));
}

/** The registered counter `name` (throws if the registry has no such counter). */
export function registeredCounter(name: string): Counter {
  return registered(name, "counter", (m, s) => m.createCounter(s.name, { unit: s.unit, description: s.description }));
}

/** Adds `n` tokens to `rlhf.tokens{rlhf.operation=<operation>}` (rate() of it is tokens/second). */
export function countTokens(operation: TokenOperation, n: number): void {
  if (n > 0) registeredCounter("rlhf.tokens").add(n, { [ATTR.operation]: operation });
}

/** One sample of a Prometheus text exposition. */
export interface PrometheusSample {
  /** Series name, e.g. `rpc_server_duration_count`. */
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses the samples of a Prometheus text exposition (what `/metrics` returns); comment lines
 * (`# HELP`, `# TYPE`, `# UNIT`) are skipped. For tests and tools that read an endpoint.
 */
export function parsePrometheusText(text: string): PrometheusSample[] {
  const out: PrometheusSample[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    }
    out.push({ name: m[1], labels, value: m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]) });
  }
  return out;
}

/** Samples named `name` whose labels include every pair of `labels`. */
export function findSamples(samples: readonly PrometheusSample[], name: string, labels: Record<string, string> = {}): PrometheusSample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}
