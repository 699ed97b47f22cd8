// run-tests: own process (OpenTelemetry's providers and diag logger are global)
// OTLP metric push: with the standard OTEL_* variables set (as a collector deployment sets them),
// startTelemetry pushes the instruments to an OTLP/HTTP receiver on loopback; without an
// endpoint, or with OTEL_METRICS_EXPORTER=none, nothing is pushed. Own file: it sets process.env.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createMetricsPipeline, countTokens } from "./metrics";
import { startTelemetry } from "./index";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

test("which readers the OTEL_* variables ask for; bad values are one clear line", () => {
  assert.equal(createMetricsPipeline({}).pushing, "none", "no endpoint, no push (not the SDK's localhost:4318 default)");
  assert.equal(createMetricsPipeline({}).readers.length, 1, "Prometheus only");
  const ep = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };
  assert.equal(createMetricsPipeline(ep).pushing, "otlp http/protobuf -> http://collector:4318");
  assert.equal(createMetricsPipeline({ ...ep, OTEL_METRICS_EXPORTER: "none" }).pushing, "none");
  assert.equal(createMetricsPipeline({ ...ep, OTEL_METRICS_EXPORTER: "prometheus" }).pushing, "none");
  assert.equal(createMetricsPipeline({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://m:4318/v1/metrics", OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/json" }).pushing, "otlp http/json -> http://m:4318/v1/metrics");
  assert.throws(() => createMetricsPipeline({ ...ep, OTEL_EXPORTER_OTLP_PROTOCOL: "udp" }), /^Error: OTEL_EXPORTER_OTLP_METRICS_PROTOCOL \/ OTEL_EXPORTER_OTLP_PROTOCOL must be http\/protobuf, http\/json or grpc, got "udp"$/);
  assert.throws(() => createMetricsPipeline({ ...ep, OTEL_METRIC_EXPORT_INTERVAL: "1s" }), /OTEL_METRIC_EXPORT_INTERVAL must be a whole number of milliseconds >= 1, got "1s"/);
});

test("with an endpoint, metrics are pushed over OTLP/HTTP", async () => {
  const bodies: { path: string; body: string }[] = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      bodies.push({ path: req.url ?? "", body });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  Object.assign(process.env, { OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_METRIC_EXPORT_INTERVAL: "200", OTEL_TRACES_EXPORTER: "none" });
  const telemetry = startTelemetry({ serviceName: "otlp-metrics-test" });
  assert.equal(telemetry.metricsPushing, `otlp http/json -> ${url}`);
  countTokens("ptx", 3);
  const end = Date.now() + testDeadlineMs(20_000);
  type OtlpMetric = { name: string; sum?: { dataPoints: { asInt?: number | string; asDouble?: number }[] } };
  type OtlpRequest = { resourceMetrics: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeMetrics: { metrics: OtlpMetric[] }[] }[] };
  const look = (): { metric: OtlpMetric; service?: string } | undefined => {
    for (const b of bodies.filter((x) => x.path === "/v1/metrics")) {
      for (const rm of (JSON.parse(b.body) as OtlpRequest).resourceMetrics) {
        const metric = rm.scopeMetrics.flatMap((s) => s.metrics).find((x) => x.name === "rlhf.tokens");
        if (metric) return { metric, service: rm.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue };
      }
    }
    return undefined;
  };
  let got = look();
  while (!got && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    got = look();
  }
  await telemetry.shutdown();
  receiver.close();
  assert.ok(got, `no rlhf.tokens in ${bodies.length} OTLP requests (${bodies.map((b) => b.path).join(", ")})`);
  const point = got.metric.sum?.dataPoints[0];
  assert.equal(Number(point?.asInt ?? point?.asDouble), 3);
  assert.equal(got.service, "otlp-metrics-test");
});
