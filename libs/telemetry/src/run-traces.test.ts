// run-tests: own process (OpenTelemetry's providers and diag logger are global)
// Run traces without an OTLP endpoint: root and phase spans, the run id carried as baggage over a
// real gRPC call onto the server span, the coordinator's traces.jsonl in the run folder, the
// loopback OTLP/HTTP receiver that the CLI points its children at, and the iteration timeline.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { InMemorySpanExporter, SimpleSpanProcessor, BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { SpanKind, SpanStatusCode, trace, context } from "@opentelemetry/api";
import {
  startTelemetry,
  inRootSpan,
  inPhase,
  annotateActiveSpan,
  registerRunTraceDir,
  readTraceFile,
  iterationTimeline,
  startOtlpReceiver,
  RunFolderTraceSink,
  LineAppender,
  RecentRunTraces,
  spanRecordsOf,
  splitByRun,
  TRACES_FILE,
  ITERATION_SPAN,
  OTLP_KIND,
  type OtlpTraceRequest,
  type SpanRecord,
} from "./index";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const memory = new InMemorySpanExporter();
const toMemory = new SimpleSpanProcessor(memory);
const recent = new RecentRunTraces({ service: "run-traces-test" });
const telemetry = startTelemetry({ serviceName: "run-traces-test", spanProcessors: [toMemory, recent], env: {}, runFolderTraces: true });

test("no endpoint: an iteration's spans, with the run id carried to the server span, land in the run folder as OTLP JSON", async () => {
  assert.equal(telemetry.exporting, "run folders (<run>/traces.jsonl)");
  /* eslint-disable @typescript-eslint/no-require-imports */
  const kit = require("@rlhf/grpc-kit") as typeof import("@rlhf/grpc-kit");
  const { referenceModel } = require("@rlhf/proto") as typeof import("@rlhf/proto");
  /* eslint-enable @typescript-eslint/no-require-imports */
  const log = kit.createLogger({ service: "t", level: "silent" });
  const srv = await kit.startServer({
    log,
    services: [
      {
        definition: referenceModel.ReferenceModelServiceService,
        implementation: {
          getInfo: kit.unary(log, async () => {
            annotateActiveSpan({ "rlhf.sequences": 3 });
            return { backend: "cpu", maxBatchSequences: 1, maxBatchTokens: 1 };
          }),
        },
      },
    ],
  });
  const client = kit.createClient(referenceModel.ReferenceModelServiceClient, srv.address);
  const runA = mkdtempSync(join(tmpdir(), "run-a-"));
  const runB = mkdtempSync(join(tmpdir(), "run-b-"));
  registerRunTraceDir("run-a", runA);
  registerRunTraceDir("run-b", runB);

  // Started inside another span (like the StartRun RPC): the iteration must still be a new trace.
  const outer = trace.getTracer("t").startSpan("StartRun");
  let rootIds: { traceId: string; spanId: string } | undefined;
  await context.with(trace.setSpan(context.active(), outer), () =>
    inRootSpan(ITERATION_SPAN, { baggage: { "rlhf.run_id": "run-a", "rlhf.iteration": 1, "rlhf.variant": "ppo_ptx" }, attributes: { "rlhf.batch_size": 8 } }, async (root) => {
      rootIds = root.spanContext();
      await inPhase("ppo.generate", {}, () => client.unary("getInfo", {}));
      // A phase started inside another phase is still a child of the root.
      await inPhase("ppo.update", {}, async () => {
        await sleep(3);
        await inPhase("ppo.ptx_gradients", {}, () => sleep(3));
      });
      await assert.rejects(inPhase("ppo.checkpoint", {}, async () => Promise.reject(new Error("disk full"))), /disk full/);
    }),
  );
  outer.end();
  await inRootSpan("stage.sft", { baggage: { "rlhf.run_id": "run-b" } }, async () => undefined);
  await inRootSpan("no-run", {}, async () => undefined);
  client.close();
  await srv.shutdown(100);
  await toMemory.forceFlush();
  const spans = [...memory.getFinishedSpans()];
  await telemetry.shutdown(); // flushes the run-folder exporter

  const by = (name: string) => {
    const s = spans.find((x) => x.name === name);
    assert.ok(s, `span ${name} in ${spans.map((x) => x.name).join(", ")}`);
    return s;
  };
  const root = by(ITERATION_SPAN);
  assert.equal(root.parentSpanContext, undefined, "a root span, not a child of StartRun");
  assert.notEqual(root.spanContext().traceId, outer.spanContext().traceId);
  assert.deepEqual(
    { run: root.attributes["rlhf.run_id"], it: root.attributes["rlhf.iteration"], v: root.attributes["rlhf.variant"], b: root.attributes["rlhf.batch_size"] },
    { run: "run-a", it: 1, v: "ppo_ptx", b: 8 },
  );
  for (const phase of ["ppo.generate", "ppo.update", "ppo.ptx_gradients", "ppo.checkpoint"]) assert.equal(by(phase).parentSpanContext?.spanId, rootIds!.spanId, `${phase} is a child of the root`);
  const clientSpan = spans.find((s) => s.kind === SpanKind.CLIENT && s.name.endsWith("/GetInfo"))!;
  const serverSpan = spans.find((s) => s.kind === SpanKind.SERVER && s.name.endsWith("/GetInfo"))!;
  assert.equal(clientSpan.parentSpanContext?.spanId, by("ppo.generate").spanContext().spanId);
  assert.equal(serverSpan.parentSpanContext?.spanId, clientSpan.spanContext().spanId);
  assert.equal(serverSpan.attributes["rlhf.run_id"], "run-a", "the run id reached the server span as baggage");
  assert.equal(serverSpan.attributes["rlhf.iteration"], 1);
  assert.equal(serverSpan.attributes["rlhf.sequences"], 3, "the handler's attribute");
  const failed = by("ppo.checkpoint");
  assert.equal(failed.status.code, SpanStatusCode.ERROR);
  assert.equal(failed.status.message, "disk full");
  assert.equal(failed.events[0]?.name, "exception");

  // The run folders: only each run's spans, as parseable ExportTraceServiceRequest lines.
  const fileA = join(runA, TRACES_FILE);
  const lines = readFileSync(fileA, "utf8").trim().split("\n");
  const fromFile = lines.flatMap((l) => spanRecordsOf(JSON.parse(l) as OtlpTraceRequest));
  assert.ok(fromFile.every((s) => s.attributes["rlhf.run_id"] === "run-a" && s.service === "run-traces-test"));
  assert.deepEqual(new Set(fromFile.map((s) => s.name)), new Set([ITERATION_SPAN, "ppo.generate", "ppo.update", "ppo.ptx_gradients", "ppo.checkpoint", clientSpan.name, serverSpan.name]));
  assert.ok(!fromFile.some((s) => s.name === "StartRun" || s.name === "no-run"));
  const b = (await readTraceFile(join(runB, TRACES_FILE))).spans;
  assert.deepEqual(b.map((s) => s.name), ["stage.sft"]);
  assert.equal(b[0].parentSpanId, undefined);

  // The timeline of the iteration, from the file and from memory alike.
  for (const source of [fromFile, recent.spans("run-a")]) {
    const tl = iterationTimeline(source, { runId: "run-a" });
    assert.ok(tl);
    assert.equal(tl.iteration, 1);
    assert.equal(tl.variant, "ppo_ptx");
    assert.deepEqual(
      tl.rows.map((r) => [r.depth, r.name]),
      [
        [0, ITERATION_SPAN],
        [1, "ppo.generate"],
        [2, serverSpan.name], // the client span is left out; its server span is drawn under the phase
        [1, "ppo.update"],
        [1, "ppo.ptx_gradients"],
        [1, "ppo.checkpoint"],
      ],
    );
    assert.ok(tl.rows.every((r) => r.startMs >= 0 && r.durationMs >= 0));
  }
  assert.equal(iterationTimeline(fromFile, { runId: "run-b" }), undefined, "no iteration of another run");
});

function post(url: string, body: Buffer | string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/traces`, { method: "POST", headers }, (res) => {
      let s = "";
      res.on("data", (d) => (s += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: s }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("the loopback receiver takes a real OTLP/HTTP JSON exporter's requests and routes them into run folders", async () => {
  const runsDir = mkdtempSync(join(tmpdir(), "runs-"));
  mkdirSync(join(runsDir, "r1"));
  writeFileSync(join(runsDir, "r1", "run.json"), "{}");
  mkdirSync(join(runsDir, "no-run-json"));
  const sink = new RunFolderTraceSink({ runsDir });
  const receiver = await startOtlpReceiver({ onRequest: (r) => sink.write(r) });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "policy" }),
    spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `${receiver.url}/v1/traces` }))],
  });
  const t = provider.getTracer("t");
  for (const [name, run] of [
    ["a", "r1"],
    ["b", "r1"],
    ["c", undefined],
    ["d", "no-run-json"],
    ["e", "../escape"],
  ] as const) {
    t.startSpan(name, { attributes: run ? { "rlhf.run_id": run } : {} }).end();
  }
  await provider.forceFlush();
  await provider.shutdown();
  await sink.flush();
  const spans = (await readTraceFile(join(runsDir, "r1", TRACES_FILE))).spans;
  assert.deepEqual(spans.map((s) => [s.name, s.service]).sort(), [
    ["a", "policy"],
    ["b", "policy"],
  ]);
  assert.deepEqual({ spans: sink.stats().spans, unrouted: sink.stats().unrouted, dropped: sink.stats().dropped }, { spans: 2, unrouted: 3, dropped: 0 });
  assert.ok(!existsSync(join(runsDir, "no-run-json", TRACES_FILE)) && !existsSync(join(runsDir, "..", "escape")));

  // Refusals, with the status an exporter understands.
  assert.equal((await post(receiver.url, "x", { "content-type": "application/x-protobuf" })).status, 415);
  assert.equal((await post(receiver.url, "{nope", { "content-type": "application/json" })).status, 400);
  const gz = gzipSync(JSON.stringify({ resourceSpans: [] }));
  assert.equal((await post(receiver.url, gz, { "content-type": "application/json", "content-encoding": "gzip" })).status, 200);
  const small = await startOtlpReceiver({ onRequest: () => undefined, maxBodyBytes: 100 });
  assert.equal((await post(small.url, JSON.stringify({ resourceSpans: [], pad: "x".repeat(200) }), { "content-type": "application/json" })).status, 413);
  await small.close();
  assert.ok(receiver.stats().requests >= 2 && receiver.stats().refused === 2, JSON.stringify(receiver.stats()));
  await receiver.close();
});

test("splitByRun keeps each span's resource and scope; the appender drops beyond its bound and counts failed writes", async () => {
  const span = (name: string, run?: string) => ({ traceId: "t", spanId: name, name, startTimeUnixNano: "1000000", endTimeUnixNano: "3000000", attributes: run ? [{ key: "rlhf.run_id", value: { stringValue: run } }] : [] });
  const req: OtlpTraceRequest = {
    resourceSpans: [
      { resource: { attributes: [{ key: "service.name", value: { stringValue: "policy" } }] }, scopeSpans: [{ scope: { name: "grpc" }, spans: [span("a", "x"), span("b", "y"), span("c")] }] },
      { resource: { attributes: [{ key: "service.name", value: { stringValue: "reward-model" } }] }, scopeSpans: [{ scope: { name: "grpc" }, spans: [span("d", "x")] }] },
    ],
  };
  const { byRun, unrouted } = splitByRun(req);
  assert.equal(unrouted, 1);
  assert.deepEqual(
    spanRecordsOf(byRun.get("x")!).map((s) => [s.service, s.name, s.startMs, s.endMs]),
    [
      ["policy", "a", 1, 3],
      ["reward-model", "d", 1, 3],
    ],
  );
  assert.deepEqual(spanRecordsOf(byRun.get("y")!).map((s) => s.name), ["b"]);

  const dir = mkdtempSync(join(tmpdir(), "appender-"));
  const errors: string[] = [];
  const a = new LineAppender({ maxPendingBytes: 10, onError: (file) => errors.push(file) });
  assert.equal(a.append(join(dir, "f"), "12345"), true);
  assert.equal(a.append(join(dir, "f"), "123456"), false, "over the bound: dropped");
  assert.equal(a.append(join(dir, "missing", "f"), "1"), true);
  await a.flush();
  assert.deepEqual({ ...a.stats() }, { written: 1, dropped: 1, failed: 1, pendingBytes: 0 });
  assert.equal(errors.length, 1);
  assert.equal(readFileSync(join(dir, "f"), "utf8"), "12345\n");
});

test("the timeline picks a PPO-ptx iteration with the most services and draws client spans' children under their parent", () => {
  const rec = (traceId: string, spanId: string, parent: string | undefined, name: string, service: string, start: number, end: number, extra: Partial<SpanRecord> = {}): SpanRecord => ({
    traceId,
    spanId,
    parentSpanId: parent,
    name,
    kind: OTLP_KIND.internal,
    service,
    startMs: start,
    endMs: end,
    attributes: { "rlhf.run_id": "r" },
    statusCode: 0,
    ...extra,
  });
  const iteration = (traceId: string, it: number, variant: string, start: number) => rec(traceId, `${traceId}-root`, undefined, ITERATION_SPAN, "ppo-coordinator", start, start + 100, { attributes: { "rlhf.run_id": "r", "rlhf.iteration": it, "rlhf.variant": variant } });
  const spans: SpanRecord[] = [
    iteration("t1", 1, "ppo_ptx", 1000),
    rec("t1", "g", "t1-root", "ppo.generate", "ppo-coordinator", 1000, 1040),
    rec("t1", "gc", "g", "Generate", "ppo-coordinator", 1001, 1039, { kind: OTLP_KIND.client }),
    rec("t1", "gs", "gc", "Generate", "policy", 1002, 1038, { kind: OTLP_KIND.server }),
    rec("t1", "s", "t1-root", "ppo.score", "ppo-coordinator", 1040, 1060),
    iteration("t2", 2, "ppo_ptx", 2000), // later, but only the coordinator's spans so far
    rec("t2", "g2", "t2-root", "ppo.generate", "ppo-coordinator", 2000, 2040),
    iteration("t3", 1, "ppo", 3000), // plain PPO: not preferred
    rec("t3", "x", "t3-root", "x", "policy", 3000, 3001),
    rec("t3", "y", "t3-root", "y", "reward-model", 3000, 3001),
  ];
  const tl = iterationTimeline([...spans, ...spans], { runId: "r" }); // duplicates (memory + file) count once
  assert.ok(tl);
  assert.equal(tl.traceId, "t1");
  assert.deepEqual(
    tl.rows.map((r) => [r.depth, r.name, r.service, r.startMs, r.durationMs]),
    [
      [0, ITERATION_SPAN, "ppo-coordinator", 0, 100],
      [1, "ppo.generate", "ppo-coordinator", 0, 40],
      [2, "Generate", "policy", 2, 36],
      [1, "ppo.score", "ppo-coordinator", 40, 20],
    ],
  );
  assert.equal(iterationTimeline(spans, { runId: "other" }), undefined);
  assert.equal(iterationTimeline(spans, { runId: "r", maxRows: 2 })?.rows.length, 2);
  assert.equal(iterationTimeline(spans, { runId: "r", clientSpans: true })?.rows.length, 5);
});

test("recent traces are kept per run and variant within their bounds, so PPO-ptx's survive plain PPO's", () => {
  const recent = new RecentRunTraces({ maxTracesPerRun: 2, maxSpansPerTrace: 3, service: "coordinator" });
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ "service.name": "coordinator" }), spanProcessors: [recent] });
  const t = provider.getTracer("t");
  const iteration = (variant: string, it: number, children: number) => {
    const attributes = { "rlhf.run_id": "r", "rlhf.variant": variant, "rlhf.iteration": it };
    const root = t.startSpan(ITERATION_SPAN, { root: true, attributes });
    const ctx = trace.setSpan(context.active(), root);
    for (let i = 0; i < children; i++) t.startSpan("ppo.update", { attributes }, ctx).end();
    root.end();
  };
  for (let it = 1; it <= 3; it++) iteration("ppo_ptx", it, 1);
  for (let it = 1; it <= 3; it++) iteration("ppo", it, 1);
  iteration("ppo", 4, 5); // 6 spans: 3 kept
  t.startSpan("other", { attributes: { "rlhf.run_id": "s" } }).end();
  const kept = recent.spans("r");
  const roots = (v: string) => kept.filter((s) => s.name === ITERATION_SPAN && s.attributes["rlhf.variant"] === v).map((s) => s.attributes["rlhf.iteration"]);
  assert.deepEqual(roots("ppo_ptx"), [2, 3]);
  assert.deepEqual(roots("ppo"), [3], "iteration 4's root came after its three children: dropped");
  assert.equal(recent.dropped, 3);
  assert.equal(iterationTimeline(kept, { runId: "r" })?.iteration, 3, "the latest PPO-ptx iteration");
  assert.deepEqual(recent.spans("s").map((s) => [s.name, s.service]), [["other", "coordinator"]]);
});
