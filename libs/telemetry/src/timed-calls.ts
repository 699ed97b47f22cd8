/**
 * gRPC client spans of calls made where OpenTelemetry does not run: a model service's compute
 * worker (a thread with no SDK) makes its calls (the policy's weights, pulled at a version) with a
 * `traceparent` that carries a span id it chose, times them, and hands the result to its main
 * thread, which records the client span here with that very span id. So the server span at the
 * other end has its client span as parent, as for every call the main thread makes itself.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, propagation, trace, type Span } from "@opentelemetry/api";
import { RandomIdGenerator, type IdGenerator } from "@opentelemetry/sdk-trace-base";

/** W3C ids as the SDK makes them (random, never all zeros). */
const random = new RandomIdGenerator();

/** A span id generator that hands out one chosen id when asked to (see {@link recordTimedClientCall}). */
export class ChosenSpanIds implements IdGenerator {
  private chosen: string | undefined;
  generateTraceId(): string {
    return random.generateTraceId();
  }
  generateSpanId(): string {
    const id = this.chosen;
    this.chosen = undefined;
    return id ?? random.generateSpanId();
  }
  /** Runs `fn` (which starts exactly one span, synchronously) so that its span gets `spanId`. */
  with<T>(spanId: string, fn: () => T): T {
    this.chosen = spanId;
    try {
      return fn();
    } finally {
      this.chosen = undefined;
    }
  }
}

/** The generator of this process's tracer provider (startTelemetry installs it). */
export const CHOSEN_SPAN_IDS = new ChosenSpanIds();

/** A call timed elsewhere, as a client span. */
export interface TimedClientCall {
  /** `/package.Service/Method`. */
  path: string;
  /** The server's address as the client was given it. */
  address: string;
  /** The W3C headers of the context the call was made in (`traceparent`, `baggage`): the span's parent and the run's baggage. */
  parent: Record<string, string>;
  /** The span id the call's own `traceparent` carried: 16 lower-case hex digits. */
  spanId: string;
  /** Start and end, in milliseconds since the epoch (fractions allowed). */
  startMs: number;
  endMs: number;
  /** The gRPC status code (0 = OK) and its details. */
  code: number;
  details: string;
}

/**
 * A client span for a call made under the W3C `parent` traceparent: a new span id, and the
 * traceparent the call sends (the parent's trace and flags, that span id). Undefined without a
 * well-formed parent.
 */
export function childTraceparent(parent: string | undefined): { spanId: string; traceparent: string } | undefined {
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/.exec(parent ?? "");
  if (!m) return undefined;
  const spanId = random.generateSpanId();
  return { spanId, traceparent: `${m[1]}-${m[2]}-${spanId}-${m[3]}` };
}

/**
 * Records a client span for a call that was timed elsewhere (named and attributed as the gRPC
 * instrumentation names its own: `grpc.<package.Service>/<Method>`, rpc.* attributes), under the
 * context its `parent` headers describe. Nothing is recorded when the parent is not sampled or no
 * tracer provider runs (the span would not be exported anyway); a malformed span id is ignored.
 */
export function recordTimedClientCall(c: TimedClientCall): Span | undefined {
  if (!/^[0-9a-f]{16}$/.test(c.spanId) || /^0+$/.test(c.spanId)) return undefined;
  const ctx = propagation.extract(ROOT_CONTEXT, c.parent);
  if (trace.getSpanContext(ctx) === undefined) return undefined;
  const [service, method] = c.path.replace(/^\//, "").split("/");
  const span = CHOSEN_SPAN_IDS.with(c.spanId, () =>
    trace.getTracer("@rlhf/telemetry").startSpan(
      `grpc.${service}/${method}`,
      {
        kind: SpanKind.CLIENT,
        startTime: c.startMs,
        attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method, "rpc.grpc.status_code": c.code, "server.address": c.address, "rlhf.timed_in": "compute worker" },
      },
      ctx,
    ),
  );
  if (c.code !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message: c.details });
  span.end(c.endMs);
  return span;
}
