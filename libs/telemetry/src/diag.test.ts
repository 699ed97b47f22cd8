// run-tests: own process (OpenTelemetry's providers and diag logger are global)
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { diag, DiagLogLevel } from "@opentelemetry/api";
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { ExportResult } from "@opentelemetry/core";
import { createLogger } from "@rlhf/grpc-kit";
import { createDiagLogger, diagCounts, installDiagLogger } from "./diag";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

interface Line {
  level: number;
  time: string;
  service: string;
  version: string;
  msg: string;
  heldBack: number;
}

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

test("OpenTelemetry's warnings and errors become JSON log lines, one per kind a minute, counted", () => {
  const lines: string[] = [];
  installDiagLogger("svc", { everyMs: 60_000, write: (l) => lines.push(l), version: "1.2.3" });
  diag.warn("Dropped 12 spans because maxQueueSize reached");
  diag.warn("Dropped 3 spans because maxQueueSize reached"); // same kind: held back
  diag.error(JSON.stringify({ message: "connect ECONNREFUSED 127.0.0.1:4318", stack: "..." }));
  diag.info("not logged");
  assert.equal(lines.length, 2);
  const [a, b] = lines.map((l) => JSON.parse(l) as Line);
  assert.deepEqual(a, { ...a, level: 40, service: "svc", version: "1.2.3", msg: "opentelemetry: Dropped 12 spans because maxQueueSize reached" });
  assert.deepEqual(b, { ...b, level: 50, msg: "opentelemetry: connect ECONNREFUSED 127.0.0.1:4318" });
  assert.match(a.time, ISO_TIME);
  assert.deepEqual({ ...diagCounts }, { warnings: 2, errors: 1 });
});

test("a diag line has the services' pino format: numeric level, ISO time, service, version, msg last", () => {
  const pinoLines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      pinoLines.push(chunk.toString());
      done();
    },
  });
  createLogger({ service: "svc", version: "1.2.3", level: "info", destination }).warn("hello");
  const diagLines: string[] = [];
  createDiagLogger("svc", { version: "1.2.3", write: (l) => diagLines.push(l), now: () => Date.UTC(2026, 11, 3, 10, 0, 0, 5) }).warn("hello");
  const fromPino = JSON.parse(pinoLines[0]) as Line;
  const fromDiag = JSON.parse(diagLines[0]) as Line;
  assert.match(fromPino.time, ISO_TIME);
  assert.equal(fromDiag.time, "2026-12-03T10:00:00.005Z");
  // Same keys in the same order (the diag line adds heldBack before msg).
  assert.deepEqual(Object.keys(fromDiag).filter((k) => k !== "heldBack"), Object.keys(fromPino));
  assert.deepEqual([fromDiag.level, fromDiag.service, fromDiag.version], [fromPino.level, fromPino.service, fromPino.version]);
});

test("the export timeouts the SDK reports as errors are warnings (level 40)", () => {
  const lines: Line[] = [];
  const logger = createDiagLogger("svc", { write: (l) => lines.push(JSON.parse(l) as Line) });
  // What core's loggingErrorHandler passes for the BatchSpanProcessor's `new Error('Timeout')`,
  // and the messages of the metric reader's and the HTTP transport's timeouts.
  logger.error(JSON.stringify({ message: "Timeout", stack: "Error: Timeout\n    at Timeout._onTimeout" }));
  logger.error(JSON.stringify({ message: "Operation timed out.", name: "TimeoutError" }));
  logger.error("Request timed out");
  logger.error(JSON.stringify({ message: "connect ECONNREFUSED 127.0.0.1:4318" }));
  assert.deepEqual(
    lines.map((l) => l.level),
    [40, 40, 40, 50],
  );
  assert.match(lines[0].msg, /^opentelemetry: Timeout \(an export did not finish in time/);
});

test("a span export that never answers logs one warning with an ISO time, no error", async () => {
  const lines: Line[] = [];
  diag.setLogger(createDiagLogger("svc", { write: (l) => lines.push(JSON.parse(l) as Line) }), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  // A collector that takes the spans and never answers: the processor gives up after 50 ms.
  const silent: SpanExporter = { export: (_spans: ReadableSpan[], _done: (r: ExportResult) => void) => undefined, shutdown: async () => undefined };
  const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(silent, { exportTimeoutMillis: 50, scheduledDelayMillis: 10 })] });
  provider.getTracer("t").startSpan("s").end();
  const deadline = Date.now() + testDeadlineMs(60_000); // only a bound on a hang, not a timing assertion
  while (lines.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await provider.shutdown().catch(() => undefined);
  assert.ok(lines.length >= 1, "a line was logged");
  assert.ok(lines.every((l) => l.level === 40), JSON.stringify(lines));
  assert.match(lines[0].msg, /^opentelemetry: Timeout/);
  assert.match(lines[0].time, ISO_TIME);
});
