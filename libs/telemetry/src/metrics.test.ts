// run-tests: own process (OpenTelemetry's providers and diag logger are global)
// Metrics through the real pipeline: startTelemetry, a grpc-kit server on a real socket called by
// the generated clients, and the Prometheus endpoint scraped over HTTP. Also: the registry's
// Prometheus names against what the 0.223 exporter really writes for every instrument, and the
// Grafana dashboard's queries against the registry.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { startTelemetry } from "./index";
import { countTokens, findSamples, parsePrometheusText, registeredGauge, serveMetrics, type PrometheusSample } from "./metrics";
import { ATTR, INSTRUMENTS, allPrometheusSeries, prometheusName, prometheusSeries } from "./instruments";

const telemetry = startTelemetry({ serviceName: "metrics-test", env: {} });

async function scrape(url: string): Promise<{ text: string; samples: PrometheusSample[] }> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  const text = await res.text();
  return { text, samples: parsePrometheusText(text) };
}

const one = (samples: PrometheusSample[], name: string, labels: Record<string, string>): number => {
  const found = findSamples(samples, name, labels);
  assert.equal(found.length, 1, `${name}${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0].value;
};

test("RPC durations by method and status (unary, client and server streams, errors), queue depth and refusals, tokens: scraped over HTTP", async () => {
  // Loaded only now, after telemetry started, exactly like a service's main.ts does.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const kit = require("@rlhf/grpc-kit") as typeof import("@rlhf/grpc-kit");
  const { referenceModel, policy } = require("@rlhf/proto") as typeof import("@rlhf/proto");
  const { InvalidArgumentError, NotFoundError } = require("@rlhf/errors") as typeof import("@rlhf/errors");
  /* eslint-enable @typescript-eslint/no-require-imports */
  const log = kit.createLogger({ service: "t", level: "silent" });
  const queue = new kit.SerialQueue("metrics-test compute", 1);
  const srv = await kit.startServer({
    log,
    services: [
      {
        definition: referenceModel.ReferenceModelServiceService,
        implementation: {
          logProbs: kit.unary(log, async (req: import("@rlhf/proto").referenceModel.LogProbsRequest) => {
            if (req.temperature === 1) throw new InvalidArgumentError("temperature", "must not be 1 here");
            return queue.run(() => {
              countTokens("logprobs", req.batch?.tokens.length ?? 0);
              return { logprobs: [], lengths: [], weights: undefined };
            });
          }),
          uploadWeights: kit.clientStream(log, async (reqs: AsyncIterable<unknown>) => {
            let n = 0;
            for await (const _ of reqs) n++;
            return { bytesReceived: n, weights: undefined };
          }),
        },
      },
      {
        definition: policy.PolicyServiceService,
        implementation: {
          generate: kit.serverStream(log, async (req: import("@rlhf/proto").policy.GenerateRequest, send) => {
            await send({ promptIndices: [0], sequences: undefined, logprobs: [], eos: [], weights: undefined });
            if (req.seed === 7) throw new NotFoundError("weights", "gone after the first message");
          }),
        },
      },
    ],
  });
  const ref = kit.createClient(referenceModel.ReferenceModelServiceClient, srv.address);
  const pol = kit.createClient(policy.PolicyServiceClient, srv.address);
  const batch = { tokens: [1, 2, 3, 4, 5], lengths: [5], promptLengths: [] };
  await ref.unary("logProbs", { batch, temperature: 0.5 });
  await ref.unary("logProbs", { batch, temperature: 0.5 });
  await assert.rejects(ref.unary("logProbs", { batch, temperature: 1 }), /INVALID_ARGUMENT/);
  const up = ref.clientStream("uploadWeights");
  await up.write({ chunk: undefined });
  await up.write({ chunk: undefined });
  await up.end();
  const gen = (seed: number) => ({ prompts: batch, samplesPerPrompt: 1, temperature: 1, topK: 0, topP: 1, maxNewTokens: 1, seed, ignoreEos: false });
  for await (const _ of pol.serverStream("generate", gen(1))) void _;
  await assert.rejects(async () => {
    for await (const _ of pol.serverStream("generate", gen(7))) void _;
  }, /NOT_FOUND/);
  // A full queue refuses: capacity 1 means one running plus one waiting.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const first = queue.run(() => gate);
  await new Promise((r) => setImmediate(r)); // the first task is running now
  const runs = Promise.allSettled([first, queue.run(() => gate), queue.run(() => gate)]);
  const during = parsePrometheusText(await (await fetch((await telemetry.serveMetrics({ host: "127.0.0.1", port: 0 })).url)).text());
  release();
  const settled = await runs;
  assert.equal(settled.filter((s) => s.status === "rejected").length, 1);
  assert.equal(one(during, "rlhf_queue_depth", { rlhf_queue: "metrics-test compute" }), 2, "one running + one waiting, read at scrape time");

  const ep = await telemetry.serveMetrics({ host: "127.0.0.1", port: 0 });
  assert.match(ep.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const { samples } = await scrape(ep.url);
  const refSvc = "rlhf.reference_model.v1.ReferenceModelService";
  const polSvc = "rlhf.policy.v1.PolicyService";
  const rpc = (service: string, method: string, code: number) => ({ rpc_system: "grpc", rpc_service: service, rpc_method: method, rpc_grpc_status_code: String(code) });
  assert.equal(one(samples, "rpc_server_duration_count", rpc(refSvc, "LogProbs", 0)), 2);
  assert.equal(one(samples, "rpc_server_duration_count", rpc(refSvc, "LogProbs", 3)), 1, "INVALID_ARGUMENT is its own series");
  assert.equal(one(samples, "rpc_server_duration_count", rpc(refSvc, "UploadWeights", 0)), 1, "client stream");
  assert.equal(one(samples, "rpc_server_duration_count", rpc(polSvc, "Generate", 0)), 1, "server stream");
  assert.equal(one(samples, "rpc_server_duration_count", rpc(polSvc, "Generate", 5)), 1, "server stream that failed with NOT_FOUND");
  assert.equal(one(samples, "rpc_server_duration_bucket", { ...rpc(refSvc, "LogProbs", 0), le: "+Inf" }), 2);
  assert.ok(one(samples, "rpc_server_duration_sum", rpc(refSvc, "LogProbs", 0)) > 0);
  // Buckets are cumulative and go up to 10 minutes (training streams).
  const buckets = findSamples(samples, "rpc_server_duration_bucket", rpc(refSvc, "LogProbs", 0));
  assert.deepEqual(buckets.map((b) => b.labels.le), [...kit.RPC_DURATION_BUCKETS_MS.map(String), "+Inf"]);
  assert.ok(buckets.every((b, i) => i === 0 || b.value >= buckets[i - 1].value));
  assert.equal(one(samples, "rlhf_tokens_total", { rlhf_operation: "logprobs" }), 10);
  assert.equal(one(samples, "rlhf_queue_depth", { rlhf_queue: "metrics-test compute" }), 0);
  assert.equal(one(samples, "rlhf_queue_rejected_total", { rlhf_queue: "metrics-test compute" }), 1);
  // Every series carries the service name (the resource's service.name), so one query covers all services.
  assert.ok(samples.filter((s) => s.name !== "target_info").every((s) => s.labels.service_name === "metrics-test"));
  // Everything the kit and this library export is in the registry.
  const registered = new Set(allPrometheusSeries());
  const unregistered = [...new Set(samples.map((s) => s.name))].filter((n) => n !== "target_info" && !registered.has(n));
  assert.deepEqual(unregistered, []);

  // Only GET/HEAD /metrics.
  assert.equal((await fetch(ep.url.replace("/metrics", "/other"))).status, 404);
  assert.equal((await fetch(ep.url, { method: "POST" })).status, 405);
  ref.close();
  pol.close();
  await srv.shutdown(100);
});

test("with an authorize check, a scrape without an accepted Authorization header is 401", async () => {
  const ep = await telemetry.serveMetrics({ host: "127.0.0.1", port: 0, authorize: (h) => h === "Bearer good-token-0123456789" });
  const none = await fetch(ep.url);
  assert.equal(none.status, 401);
  assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="metrics"');
  assert.equal((await fetch(ep.url, { headers: { authorization: "Bearer wrong" } })).status, 401);
  const ok = await fetch(ep.url, { headers: { authorization: "Bearer good-token-0123456789" } });
  assert.equal(ok.status, 200);
  assert.match(await ok.text(), /target_info/);
  await ep.close();
});

test("a busy port or a foreign address is one clear line", async () => {
  const ep = await telemetry.serveMetrics({ host: "127.0.0.1", port: 0 });
  await assert.rejects(telemetry.serveMetrics({ host: "127.0.0.1", port: ep.port }), {
    message: `METRICS_PORT ${ep.port} is already in use on 127.0.0.1 (set METRICS_PORT to a free port, or 0 to turn the Prometheus endpoint off)`,
  });
  await assert.rejects(telemetry.serveMetrics({ host: "192.0.2.1", port: 0 }), /^Error: METRICS_HOST 192\.0\.2\.1 is not an address of this machine \(EADDRNOTAVAIL\)$/);
});

test("training gauges carry run id, stage and variant; a name outside the registry is refused", async () => {
  registeredGauge("rlhf.objective.kl").record(1.25, { [ATTR.runId]: "r1", [ATTR.stage]: "ppo", [ATTR.variant]: "ppo_ptx" });
  registeredGauge("rlhf.objective.kl").record(0.5, { [ATTR.runId]: "r1", [ATTR.stage]: "ppo", [ATTR.variant]: "ppo_ptx" });
  const ep = await telemetry.serveMetrics({ host: "127.0.0.1", port: 0 });
  const { samples } = await scrape(ep.url);
  assert.equal(one(samples, "rlhf_objective_kl", { rlhf_run_id: "r1", rlhf_stage: "ppo", rlhf_variant: "ppo_ptx" }), 0.5, "last value wins");
  assert.throws(() => registeredGauge("rlhf.objective.bogus"), /rlhf\.objective\.bogus is not a registered gauge instrument/);
  assert.throws(() => registeredGauge("rlhf.tokens"), /rlhf\.tokens is not a registered gauge instrument/);
});

test("the registry's Prometheus names, types and units are what the 0.223 exporter writes for each instrument", async () => {
  // A separate provider: one instrument of each registered name and kind, one value each.
  const prom = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [prom] });
  const meter = provider.getMeter("registry-check");
  for (const s of INSTRUMENTS) {
    const o = { unit: s.unit, description: s.description };
    if (s.kind === "counter") meter.createCounter(s.name, o).add(1);
    else if (s.kind === "histogram") meter.createHistogram(s.name, o).record(1);
    else if (s.kind === "gauge") meter.createGauge(s.name, o).record(1);
    else meter.createObservableGauge(s.name, o).addCallback((r) => r.observe(1));
  }
  const ep = await serveMetrics(prom, { host: "127.0.0.1", port: 0 });
  const { text, samples } = await scrape(ep.url);
  await ep.close();
  await provider.shutdown();
  const names = new Set(samples.map((s) => s.name));
  names.delete("target_info");
  assert.deepEqual([...names].sort(), allPrometheusSeries().sort(), "exactly the registry's series, no unit suffixes added");
  for (const s of INSTRUMENTS) {
    const family = prometheusSeries(s)[0].replace(/_bucket$/, "");
    const type = s.kind === "counter" ? "counter" : s.kind === "histogram" ? "histogram" : "gauge";
    assert.ok(text.includes(`# TYPE ${family} ${type}\n`), `${s.name}: TYPE ${type}`);
    assert.ok(text.includes(`# UNIT ${family} ${s.unit}\n`), `${s.name}: UNIT ${s.unit}`);
  }
  // Names are unique, and each attribute key maps to a distinct label.
  assert.equal(new Set(INSTRUMENTS.map((i) => i.name)).size, INSTRUMENTS.length);
  assert.equal(prometheusName("rpc.grpc.status_code"), "rpc_grpc_status_code");
});

/** Label names a query may use besides the registry's attributes. */
const EXTRA_LABELS = new Set(["le", "service_name", "otel_scope_name", "job", "instance"]);

/** Metric and label names a PromQL expression uses (string literals, durations and functions aside). */
function promqlNames(expr: string): { metrics: Set<string>; labels: Set<string> } {
  const labels = new Set<string>();
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  // Label matchers {a="x", b=~""} and grouping clauses by (a, b) / without / on / ignoring / group_left.
  e = e.replace(/\{([^}]*)\}/g, (_, inner: string) => {
    for (const m of inner.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.add(m[1]);
    return " ";
  });
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, _kw: string, inner: string) => {
    for (const l of inner.split(",").map((x) => x.trim()).filter(Boolean)) labels.add(l);
    return " ";
  });
  e = e.replace(/\[[^\]]*\]/g, " "); // range selectors [5m], [$__rate_interval]
  e = e.replace(/\$[a-zA-Z_]+|\$\{[^}]*\}/g, " "); // Grafana variables
  const metrics = new Set<string>();
  for (const m of e.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b\s*(\()?/g)) {
    if (m[2]) continue; // a function call: rate(, sum(, histogram_quantile(
    if (/^(by|without|on|ignoring|bool|and|or|unless|offset|group_left|group_right|inf|nan)$/i.test(m[1])) continue;
    metrics.add(m[1]);
  }
  return { metrics, labels };
}

test("the Grafana dashboard is valid and queries only registered series and labels", () => {
  const path = join(__dirname, "..", "..", "..", "deploy", "observability", "grafana", "rlhf-dashboard.json");
  const dash = JSON.parse(readFileSync(path, "utf8")) as {
    uid: string;
    title: string;
    schemaVersion: number;
    templating: { list: { name: string; type: string; query?: unknown; definition?: string; datasource?: unknown }[] };
    panels: { id: number; title: string; type: string; datasource?: { type: string; uid: string }; targets?: { expr: string; refId: string }[]; gridPos: object }[];
  };
  assert.ok(dash.uid && dash.title && dash.schemaVersion >= 30);
  const ds = dash.templating.list.find((v) => v.type === "datasource");
  assert.ok(ds && ds.query === "prometheus", "a Prometheus datasource variable");
  const exprs: string[] = [];
  for (const v of dash.templating.list) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : (v.query as { query: string }).query;
    exprs.push(q.replace(/^label_values\((.*),\s*[a-zA-Z_]+\)$/, "$1").replace(/^label_values\(([a-zA-Z_]+)\)$/, "$1"));
  }
  const ids = new Set<number>();
  for (const p of dash.panels) {
    assert.ok(!ids.has(p.id), `panel id ${p.id} is unique`);
    ids.add(p.id);
    if (p.type === "row") continue;
    assert.deepEqual(p.datasource, { type: "prometheus", uid: "${datasource}" }, `${p.title}: uses the datasource variable`);
    assert.ok(p.targets && p.targets.length > 0, `${p.title}: has queries`);
    for (const t of p.targets) exprs.push(t.expr);
  }
  const series = new Set(allPrometheusSeries());
  const knownLabels = new Set([...INSTRUMENTS.flatMap((i) => i.attributes.map(prometheusName)), ...EXTRA_LABELS]);
  const used = new Set<string>();
  for (const expr of exprs) {
    const { metrics, labels } = promqlNames(expr);
    assert.ok(metrics.size > 0, `no metric in ${expr}`);
    for (const m of metrics) {
      assert.ok(series.has(m), `${m} (in ${expr}) is not a registered series`);
      used.add(m);
    }
    for (const l of labels) assert.ok(knownLabels.has(l), `label ${l} (in ${expr}) is neither an instrument attribute nor a scrape label`);
  }
  // The panels the dashboard promises.
  for (const m of ["rpc_server_duration_bucket", "rpc_server_duration_count", "rlhf_tokens_total", "rlhf_queue_depth", "rlhf_tensor_memory", "rlhf_tensor_count", "rlhf_objective_reward", "rlhf_objective_kl", "rlhf_objective_kl_bound", "rlhf_objective_beta", "rlhf_loss_policy", "rlhf_loss_value", "rlhf_ptx_loss", "rlhf_policy_clip_fraction", "rlhf_timing_generate_ms", "rlhf_timing_update_ms"]) {
    assert.ok(used.has(m), `the dashboard shows ${m}`);
  }
});

test("the PromQL name extractor finds metrics, not functions or labels", () => {
  const r = promqlNames('histogram_quantile(0.95, sum by (le, service_name) (rate(rpc_server_duration_bucket{rpc_method=~"$method"}[$__rate_interval]))) / on(service_name) group_left rlhf_queue_depth');
  assert.deepEqual([...r.metrics].sort(), ["rlhf_queue_depth", "rpc_server_duration_bucket"]);
  assert.deepEqual([...r.labels].sort(), ["le", "rpc_method", "service_name"]);
});
