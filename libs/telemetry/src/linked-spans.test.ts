// run-tests: own process (OpenTelemetry's providers and diag logger are global)
// Proves the module output keeps gRPC auto-instrumentation working: with telemetry started
// before @grpc/grpc-js is required (as every service's main.ts does), a client call and the
// server span it causes share a trace, and the server span's parent is the client span.
import { test } from "node:test";
import assert from "node:assert/strict";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { SpanKind, trace, context } from "@opentelemetry/api";
import { startTelemetry } from "./index";

const exporter = new InMemorySpanExporter();
const processor = new SimpleSpanProcessor(exporter);
const telemetry = startTelemetry({ serviceName: "linked-spans-test", spanProcessors: [processor], env: {} });

test("client and server spans are linked across a real gRPC call", async () => {
  assert.equal(telemetry.grpcLoadedTooEarly, false);
  // Loaded only now, after the instrumentation is registered, exactly like main.ts does.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const kit = require("@rlhf/grpc-kit") as typeof import("@rlhf/grpc-kit");
  const { referenceModel } = require("@rlhf/proto") as typeof import("@rlhf/proto");
  /* eslint-enable @typescript-eslint/no-require-imports */
  const log = kit.createLogger({ service: "t", level: "silent" });
  let traceIdSeenByHandler: string | undefined;
  const srv = await kit.startServer({
    log,
    services: [
      {
        definition: referenceModel.ReferenceModelServiceService,
        implementation: {
          getInfo: kit.unary(log, async () => {
            traceIdSeenByHandler = trace.getActiveSpan()?.spanContext().traceId;
            return { backend: "cpu", maxBatchSequences: 1, maxBatchTokens: 1 };
          }),
        },
      },
    ],
  });
  const client = kit.createClient(referenceModel.ReferenceModelServiceClient, srv.address);
  const tracer = trace.getTracer("test");
  const root = tracer.startSpan("iteration");
  await context.with(trace.setSpan(context.active(), root), () => client.unary("getInfo", {}));
  root.end();
  client.close();
  await srv.shutdown(100);
  // Export waits for asynchronous resource detection; flush before reading.
  await processor.forceFlush();

  const spans = exporter.getFinishedSpans();
  const clientSpan = spans.find((s) => s.kind === SpanKind.CLIENT && s.name.includes("GetInfo"));
  const serverSpan = spans.find((s) => s.kind === SpanKind.SERVER && s.name.includes("GetInfo"));
  assert.ok(clientSpan, `no client span in ${spans.map((s) => s.name).join(", ")}`);
  assert.ok(serverSpan, `no server span in ${spans.map((s) => s.name).join(", ")}`);
  const rootId = root.spanContext();
  assert.equal(clientSpan.spanContext().traceId, rootId.traceId);
  assert.equal(clientSpan.parentSpanContext?.spanId, rootId.spanId);
  assert.equal(serverSpan.spanContext().traceId, rootId.traceId);
  assert.equal(serverSpan.parentSpanContext?.spanId, clientSpan.spanContext().spanId);
  assert.equal(traceIdSeenByHandler, rootId.traceId, "the handler (and its logs) see the caller's trace id");
  await telemetry.shutdown();
});
