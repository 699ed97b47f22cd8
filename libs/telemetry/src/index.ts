/**
 * OpenTelemetry for every process. `startTelemetry` must run before `@grpc/grpc-js` is first
 * required (services do it in `src/tracing.ts`, the first import of `main.ts`): the gRPC
 * auto-instrumentation patches the module when it loads, which works with our CommonJS output.
 *
 * Standard environment variables are honoured: OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT /
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (traces are exported only when one is set),
 * OTEL_EXPORTER_OTLP_PROTOCOL / _TRACES_PROTOCOL (http/protobuf (default), http/json, grpc),
 * OTEL_TRACES_EXPORTER=none, OTEL_TRACES_SAMPLER, OTEL_PROPAGATORS (default W3C tracecontext +
 * baggage). Without an endpoint a tracer provider is still installed, so trace ids exist and W3C
 * context still flows through every call.
 *
 * Traces of the platform's own code (./spans.ts): a root span per PPO iteration and per stage,
 * phase spans under it; the run id travels as W3C baggage and lands on every span of the run in
 * every service (BaggageAttributesProcessor). With `runFolderTraces` and no endpoint, a process
 * writes its run spans to `<run folder>/traces.jsonl` (./run-traces.ts); the `rlhf` CLI collects
 * its children's spans there with a loopback OTLP/HTTP receiver (./receiver.ts).
 *
 * Metrics (./metrics.ts): a Prometheus reader that `serveMetrics` exposes at /metrics, plus OTLP
 * push when OTEL_METRICS_EXPORTER / OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT ask for it. Instrument
 * names live in one registry (./instruments.ts).
 */
import { NodeSDK } from "@opentelemetry/sdk-node";
import { GrpcInstrumentation } from "@opentelemetry/instrumentation-grpc";
import { BatchSpanProcessor, type SpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { OTLPTraceExporter as OtlpHttpJson } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OtlpProto } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import { trace } from "@opentelemetry/api";
import { createMetricsPipeline, serveMetrics, type MetricsEndpoint, type MetricsEndpointOptions } from "./metrics";
import { BaggageAttributesProcessor } from "./spans";
import { RunFolderSpanExporter } from "./run-traces";
import { installDiagLogger } from "./diag";
import { otlpTarget } from "./otlp-env";
import { CHOSEN_SPAN_IDS } from "./timed-calls";

export * from "./instruments";
export * from "./metrics";
export * from "./spans";
export * from "./otlp-json";
export * from "./run-traces";
export * from "./receiver";
export * from "./timeline";
export * from "./timed-calls";

/** Options of {@link startTelemetry}. */
export interface TelemetryOptions {
  /** Default service name; OTEL_SERVICE_NAME overrides it. */
  serviceName: string;
  /** Default "0.1.0". */
  serviceVersion?: string;
  /** Extra span processors (tests, the report's recent-traces recorder). */
  spanProcessors?: SpanProcessor[];
  /**
   * When no OTLP endpoint is set (and traces are not turned off with OTEL_TRACES_EXPORTER=none),
   * write the spans of each run to its run folder's traces.jsonl (the coordinator). Default false.
   */
  runFolderTraces?: boolean;
  /** Environment to read; default process.env. */
  env?: Record<string, string | undefined>;
}

/** A started telemetry pipeline. */
export interface Telemetry {
  serviceName: string;
  /** Where traces go: "otlp http/protobuf -> URL", "none", ... */
  exporting: string;
  /** True if gRPC had been loaded before telemetry started (its spans would not link). */
  grpcLoadedTooEarly: boolean;
  /** Where metrics are pushed: "otlp http/protobuf -> URL" or "none" (Prometheus is pulled). */
  metricsPushing: string;
  /** Serves the Prometheus endpoint at http://host:port/metrics (closed by `shutdown`). */
  serveMetrics(opts: MetricsEndpointOptions): Promise<MetricsEndpoint>;
  /** Flushes pending spans and stops. */
  shutdown(): Promise<void>;
}

let started: Telemetry | undefined;

function makeExporter(env: Record<string, string | undefined>): { exporter: SpanExporter; label: string } | undefined {
  const target = otlpTarget(env, "TRACES");
  if (!target) return undefined;
  const label = `otlp ${target.protocol} -> ${target.endpoint}`;
  switch (target.protocol) {
    case "http/json":
      return { exporter: new OtlpHttpJson(), label };
    case "http/protobuf":
      return { exporter: new OtlpProto(), label };
    case "grpc": {
      // Loaded only when asked for: it pulls in @grpc/grpc-js, after the instrumentation is set.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-grpc") as typeof import("@opentelemetry/exporter-trace-otlp-grpc");
      return { exporter: new OTLPTraceExporter(), label };
    }
  }
}

/** Starts tracing once per process (later calls return the first result). */
export function startTelemetry(opts: TelemetryOptions): Telemetry {
  if (started) return started;
  const env = opts.env ?? process.env;
  const grpcLoadedTooEarly = Object.keys(require.cache).some((k) => k.includes(`${"@grpc"}/grpc-js${""}/`));
  const serviceName = env.OTEL_SERVICE_NAME || opts.serviceName;
  const processors: SpanProcessor[] = [...(opts.spanProcessors ?? [])];
  const made = makeExporter(env);
  if (made) processors.push(new BatchSpanProcessor(made.exporter));
  const tracesOff = (env.OTEL_TRACES_EXPORTER || "").split(",").some((s) => s.trim() === "none");
  const toRunFolders = !made && opts.runFolderTraces === true && !tracesOff;
  // Bounded queue (2,048 spans; beyond, spans are dropped and the SDK warns with the count).
  if (toRunFolders) processors.push(new BatchSpanProcessor(new RunFolderSpanExporter(), { scheduledDelayMillis: 1000 }));
  // First, so that every other processor sees the run id on the span.
  processors.unshift(new BaggageAttributesProcessor());
  installDiagLogger(serviceName, { version: opts.serviceVersion ?? "0.1.0" });
  // A provider is always installed (the baggage processor at least), so spans and trace ids for
  // logs exist even with no exporter.
  const metricsPipeline = createMetricsPipeline(env);
  const endpoints: MetricsEndpoint[] = [];
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName, [ATTR_SERVICE_VERSION]: opts.serviceVersion ?? "0.1.0" }),
    spanProcessors: processors,
    logRecordProcessors: [],
    metricReaders: metricsPipeline.readers,
    instrumentations: [new GrpcInstrumentation()],
    // Random ids, except for a client span timed in a compute worker (./timed-calls.ts).
    idGenerator: CHOSEN_SPAN_IDS,
  });
  sdk.start();
  let stopping: Promise<void> | undefined;
  started = {
    serviceName,
    exporting: made?.label ?? (toRunFolders ? "run folders (<run>/traces.jsonl)" : "none"),
    grpcLoadedTooEarly,
    metricsPushing: metricsPipeline.pushing,
    serveMetrics: async (o) => {
      const ep = await serveMetrics(metricsPipeline.prometheus, o);
      endpoints.push(ep);
      return ep;
    },
    shutdown: () => (stopping ??= Promise.all([sdk.shutdown(), ...endpoints.map((e) => e.close())]).then(() => undefined).catch(() => undefined)),
  };
  return started;
}

/** Trace id of the active span, if any (for log lines). */
export function currentTraceId(): string | undefined {
  return trace.getActiveSpan()?.spanContext().traceId;
}
