// Where a session's traces go: the user's endpoint (nothing collected here), off, or the CLI's
// loopback receiver writing each run's traces.jsonl, which a real OTLP/HTTP exporter configured
// by exactly the environment the children get can reach.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { readTraceFile } from "@rlhf/telemetry";
import { startTraceCollector, userTraceSettings } from "./traces";
import { serviceSpecs } from "./session";

test("a user's endpoint or OTEL_TRACES_EXPORTER=none: the CLI collects nothing and sets nothing", async () => {
  for (const env of [{ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces" }, { OTEL_TRACES_EXPORTER: "none" }, { OTEL_SDK_DISABLED: "true" }]) {
    const c = await startTraceCollector("/nonexistent", env);
    assert.deepEqual(c.env, {}, JSON.stringify(env));
    assert.equal(await c.close(), undefined);
  }
  assert.deepEqual(userTraceSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }), { endpoint: "http://c:4318", off: false });
  assert.deepEqual(userTraceSettings({ OTEL_TRACES_EXPORTER: "otlp" }), { endpoint: undefined, off: false });
});

test("no endpoint: the children's trace exporter is pointed at a loopback receiver that fills the run folders", async () => {
  const runsDir = mkdtempSync(join(tmpdir(), "cli-traces-"));
  mkdirSync(join(runsDir, "r1"));
  writeFileSync(join(runsDir, "r1", "run.json"), "{}");
  const c = await startTraceCollector(runsDir, { OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" });
  assert.match(c.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, /^http:\/\/127\.0\.0\.1:\d+\/v1\/traces$/);
  assert.equal(c.env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "http/json", "overrides a protocol the user set for other signals");
  assert.equal(c.env.OTEL_BSP_SCHEDULE_DELAY, "1000");
  assert.equal(c.env.OTEL_EXPORTER_OTLP_ENDPOINT, undefined, "metrics are not sent to the receiver");

  // The children get these variables, and each its own service name.
  const ports = { "ppo-coordinator": 1, policy: 2, "reward-model": 3, "reference-model": 4, "pretrain-mix": 5 };
  const specs = serviceSpecs({ ports, runsDir, tokenizer: "byte", cliMain: "main.js", traceEnv: c.env });
  for (const [name, spec] of Object.entries(specs)) {
    assert.equal(spec.env?.OTEL_SERVICE_NAME, name);
    assert.equal(spec.env?.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, c.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  }

  // An OTLP/HTTP JSON exporter, as a child's SDK builds it from that environment.
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "reward-model" }),
    spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: c.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT }))],
  });
  provider.getTracer("t").startSpan("Score", { attributes: { "rlhf.run_id": "r1" } }).end();
  provider.getTracer("t").startSpan("health", {}).end();
  await provider.shutdown();
  const stats = await c.close();
  assert.deepEqual({ spans: stats?.spans, unrouted: stats?.unrouted, dropped: stats?.dropped, failed: stats?.failed }, { spans: 1, unrouted: 1, dropped: 0, failed: 0 });
  const { spans } = await readTraceFile(join(runsDir, "r1", "traces.jsonl"));
  assert.deepEqual(spans.map((s) => [s.service, s.name]), [["reward-model", "Score"]]);
});
