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
 */
import { NodeSDK } from "@opentelemetry/sdk-node";
import { GrpcInstrumentation } from "@opentelemetry/instrumentation-grpc";
import { BatchSpanProcessor, NoopSpanProcessor, type SpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { OTLPTraceExporter as OtlpHttpJson } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OtlpProto } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import { trace } from "@opentelemetry/api";

/** Options of {@link startTelemetry}. */
export interface TelemetryOptions {
  /** Default service name; OTEL_SERVICE_NAME overrides it. */
  serviceName: string;
  /** Default "0.1.0". */
  serviceVersion?: string;
  /** Extra span processors (tests, a run-folder exporter). */
  spanProcessors?: SpanProcessor[];
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
  /** Flushes pending spans and stops. */
  shutdown(): Promise<void>;
}

let started: Telemetry | undefined;

function makeExporter(env: Record<string, string | undefined>): { exporter: SpanExporter; label: string } | undefined {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const kind = (env.OTEL_TRACES_EXPORTER || "otlp").split(",").map((s) => s.trim());
  if (!endpoint || kind.includes("none") || !kind.includes("otlp")) return undefined;
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || "http/protobuf";
  switch (protocol) {
    case "http/json":
      return { exporter: new OtlpHttpJson(), label: `otlp http/json -> ${endpoint}` };
    case "http/protobuf":
      return { exporter: new OtlpProto(), label: `otlp http/protobuf -> ${endpoint}` };
    case "grpc": {
      // Loaded only when asked for: it pulls in @grpc/grpc-js, after the instrumentation is set.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-grpc") as typeof import("@opentelemetry/exporter-trace-otlp-grpc");
      return { exporter: new OTLPTraceExporter(), label: `otlp grpc -> ${endpoint}` };
    }
    default:
      throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf, http/json or grpc, got "${protocol}"`);
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
  // Always install a provider so spans (and trace ids for logs) exist even with no exporter.
  if (processors.length === 0) processors.push(new NoopSpanProcessor());
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName, [ATTR_SERVICE_VERSION]: opts.serviceVersion ?? "0.1.0" }),
    spanProcessors: processors,
    logRecordProcessors: [],
    instrumentations: [new GrpcInstrumentation()],
  });
  sdk.start();
  let stopping: Promise<void> | undefined;
  started = {
    serviceName,
    exporting: made?.label ?? "none",
    grpcLoadedTooEarly,
    shutdown: () => (stopping ??= sdk.shutdown().catch(() => undefined)),
  };
  return started;
}

/** Trace id of the active span, if any (for log lines). */
export function currentTraceId(): string | undefined {
  return trace.getActiveSpan()?.spanContext().traceId;
}
