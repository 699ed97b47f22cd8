// run-tests: own process (OpenTelemetry's providers are global)
// A client span timed elsewhere (a model service's compute worker) and recorded here keeps the span
// id the call's traceparent carried, hangs from the context its headers describe, carries the run's
// baggage like every span, and leaves the ids of later spans random.
import { test } from "node:test";
import assert from "node:assert/strict";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { SpanKind, SpanStatusCode, context, propagation, trace } from "@opentelemetry/api";
import { hrTimeToMilliseconds } from "@opentelemetry/core";
import { childTraceparent, recordTimedClientCall, startTelemetry } from "./index";

const exporter = new InMemorySpanExporter();
const processor = new SimpleSpanProcessor(exporter);
startTelemetry({ serviceName: "timed-calls-test", spanProcessors: [processor], env: {} });
const tracer = trace.getTracer("timed-calls-test");

test("childTraceparent keeps the trace and its flags, with a new valid span id each time; anything else is undefined", () => {
  const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const a = childTraceparent(parent);
  const b = childTraceparent(parent);
  assert.ok(a && b);
  assert.match(a.spanId, /^[0-9a-f]{16}$/);
  assert.notEqual(a.spanId, "0000000000000000");
  assert.notEqual(a.spanId, b.spanId);
  assert.equal(a.traceparent, `00-0af7651916cd43dd8448eb211c80319c-${a.spanId}-01`);
  for (const bad of [undefined, "", "00-xyz-b7ad6b7169203331-01", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71-01"]) assert.equal(childTraceparent(bad), undefined, String(bad));
});

test("recordTimedClientCall: the chosen span id, under the served call's span, with the run's baggage, the times and the status", async () => {
  exporter.reset();
  const served = tracer.startSpan("served", { kind: SpanKind.SERVER });
  const ctx = propagation.setBaggage(trace.setSpan(context.active(), served), propagation.createBaggage({ "rlhf.run_id": { value: "run-7" } }));
  const parent: Record<string, string> = {};
  propagation.inject(ctx, parent);
  assert.ok(parent.traceparent && parent.baggage, "the served call's W3C headers");
  const t0 = Date.now() - 40;
  const ok = recordTimedClientCall({ path: "/rlhf.policy.v1.PolicyService/StreamWeights", address: "127.0.0.1:5000", parent, spanId: "00f067aa0ba902b7", startMs: t0, endMs: t0 + 25.5, code: 0, details: "" });
  const failed = recordTimedClientCall({ path: "/rlhf.policy.v1.PolicyService/StreamWeights", address: "127.0.0.1:5000", parent, spanId: "1111111111111111", startMs: t0, endMs: t0 + 1, code: 5, details: "version 9 is not the policy's" });
  const later = tracer.startSpan("later", {}, ctx);
  later.end();
  served.end();
  await processor.forceFlush();
  assert.ok(ok && failed);
  const spans = new Map(exporter.getFinishedSpans().map((s) => [s.name === "grpc.rlhf.policy.v1.PolicyService/StreamWeights" ? s.spanContext().spanId : s.name, s]));
  const a = spans.get("00f067aa0ba902b7");
  const b = spans.get("1111111111111111");
  assert.ok(a && b, `both client spans exported with their chosen ids: ${[...spans.keys()].join(", ")}`);
  assert.equal(a.kind, SpanKind.CLIENT);
  assert.equal(a.spanContext().traceId, served.spanContext().traceId);
  assert.equal(a.parentSpanContext?.spanId, served.spanContext().spanId);
  assert.deepEqual(
    { ...a.attributes },
    { "rlhf.run_id": "run-7", "rpc.system": "grpc", "rpc.service": "rlhf.policy.v1.PolicyService", "rpc.method": "StreamWeights", "rpc.grpc.status_code": 0, "server.address": "127.0.0.1:5000", "rlhf.timed_in": "compute worker" },
  );
  assert.equal(Math.round(hrTimeToMilliseconds(a.startTime)), t0);
  assert.equal(Math.round(hrTimeToMilliseconds(a.duration) * 10) / 10, 25.5);
  assert.equal(a.status.code, SpanStatusCode.UNSET);
  assert.deepEqual(b.status, { code: SpanStatusCode.ERROR, message: "version 9 is not the policy's" });
  assert.equal(b.attributes["rpc.grpc.status_code"], 5);
  const l = spans.get("later");
  assert.ok(l && !["00f067aa0ba902b7", "1111111111111111"].includes(l.spanContext().spanId), "a later span's id is random again");
});

test("recordTimedClientCall records nothing without a parent context or with a malformed span id", async () => {
  exporter.reset();
  const call = { path: "/p.S/M", address: "a:1", startMs: Date.now(), endMs: Date.now(), code: 0, details: "" };
  assert.equal(recordTimedClientCall({ ...call, parent: {}, spanId: "00f067aa0ba902b7" }), undefined);
  const served = tracer.startSpan("served");
  const parent: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), served), parent);
  for (const spanId of ["", "0000000000000000", "00F067AA0BA902B7", "00f067aa"]) assert.equal(recordTimedClientCall({ ...call, parent, spanId }), undefined, spanId);
  served.end();
  await processor.forceFlush();
  assert.deepEqual(exporter.getFinishedSpans().map((s) => s.name), ["served"]);
});
