// Prometheus metrics of a real service process (`rlhf serve reference-model`): gRPC calls, one
// failing with a known status, then /metrics scraped over HTTP: the RPC latency histogram by
// method and status, the tensor-memory gauges, the tokens counter, the queue depth, all under
// registered names. Then the METRICS_* configuration errors and the busy-port rules.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { referenceModel } from "@rlhf/proto";
import { createClient, waitForServing } from "@rlhf/grpc-kit";
import { allPrometheusSeries, findSamples, parsePrometheusText, type PrometheusSample } from "@rlhf/telemetry";
import { BACKEND, RLHF, TOKEN_FILE, freePort, start, exitWithin, type Proc } from "./helpers";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

/** `rlhf serve` with none of the runner's METRICS_* (spawn skips undefined values), on the tests' backend. */
function startClean(args: string[], extra: Record<string, string> = {}): Proc {
  return start(args, { METRICS_PORT: undefined, METRICS_HOST: undefined, RLHF_BACKEND: BACKEND, ...extra });
}

const one = (samples: PrometheusSample[], name: string, labels: Record<string, string>): number => {
  const found = findSamples(samples, name, labels);
  assert.equal(found.length, 1, `${name}${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0].value;
};

const logLines = (p: Proc) =>
  p
    .out()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test("a real service process serves /metrics: RPC latency by method and status, tensor memory, tokens, queue depth", async () => {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const svc = startClean([RLHF, "serve", "reference-model", "--port", String(port), "--init", "tiny", "--metrics-port", String(metricsPort)]);
  const address = `127.0.0.1:${port}`;
  await waitForServing(address, testDeadlineMs(60_000));
  const client = createClient(referenceModel.ReferenceModelServiceClient, address, { deadlineMs: testDeadlineMs(60_000) });
  const info = await client.unary("getInfo", {});
  const V = info.config?.vocabSize as number;
  const batch = { tokens: [1, 2, 3, 4, 5, 6, 7], lengths: [4, 3], promptLengths: [] };
  await client.unary("logProbs", { batch, temperature: 1 });
  await client.unary("logProbs", { batch, temperature: 1 });
  await assert.rejects(client.unary("logProbs", { batch: { tokens: [1, V], lengths: [2], promptLengths: [] }, temperature: 1 }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);

  const url = `http://127.0.0.1:${metricsPort}/metrics`;
  // The service has the tests' token file: a scrape needs the token (viewer role), as gRPC calls do.
  assert.equal((await fetch(url)).status, 401);
  const res = await fetch(url, { headers: { authorization: `Bearer ${readFileSync(TOKEN_FILE, "utf8").trim()}` } });
  assert.equal(res.status, 200);
  const text = await res.text();
  const samples = parsePrometheusText(text);
  const svcName = "rlhf.reference_model.v1.ReferenceModelService";
  const rpc = (method: string, code: number) => ({ service_name: "reference-model", rpc_service: svcName, rpc_method: method, rpc_grpc_status_code: String(code) });
  assert.equal(one(samples, "rpc_server_duration_count", rpc("LogProbs", grpc.status.OK)), 2);
  assert.equal(one(samples, "rpc_server_duration_count", rpc("LogProbs", grpc.status.INVALID_ARGUMENT)), 1);
  assert.equal(one(samples, "rpc_server_duration_count", rpc("GetInfo", grpc.status.OK)), 1);
  assert.equal(one(samples, "rpc_server_duration_bucket", { ...rpc("LogProbs", grpc.status.OK), le: "+Inf" }), 2);
  const sumMs = one(samples, "rpc_server_duration_sum", rpc("LogProbs", grpc.status.OK));
  assert.ok(sumMs > 0);
  // Tensor memory of the model this process holds (a tiny GPT), on the backend it chose.
  const tensors = one(samples, "rlhf_tensor_count", { service_name: "reference-model", rlhf_backend: BACKEND });
  const bytes = one(samples, "rlhf_tensor_memory", { service_name: "reference-model", rlhf_backend: BACKEND });
  assert.ok(tensors > 0 && bytes > 0, `tensors ${tensors}, bytes ${bytes}`);
  // The two good calls read 7 tokens each; the refused one counts nothing.
  assert.equal(one(samples, "rlhf_tokens_total", { service_name: "reference-model", rlhf_operation: "logprobs" }), 14);
  assert.equal(one(samples, "rlhf_queue_depth", { service_name: "reference-model", rlhf_queue: "reference-model compute" }), 0);
  // Nothing outside the registry.
  const registered = new Set(allPrometheusSeries());
  assert.deepEqual([...new Set(samples.map((s) => s.name))].filter((n) => n !== "target_info" && !registered.has(n)), []);
  console.log(`scrape: ${text.length} bytes, ${samples.length} samples; ${tensors} tensors, ${bytes} bytes; LogProbs mean ${(sumMs / 2).toFixed(1)} ms`);

  const starting = logLines(svc).find((l) => l.msg === "starting");
  assert.equal(starting?.metrics, `${url} (scrapes need a token with the viewer role)`, "the start line says where the metrics are, and that they need a token");
  client.close();
  svc.child.kill("SIGTERM");
  assert.equal(await exitWithin(svc, testDeadlineMs(20_000)), 0, svc.out());
  await assert.rejects(fetch(url), "the endpoint closes with the service");
});

test("bad METRICS_PORT / METRICS_HOST stop the service with one line; a busy port stops it only when it was set", async () => {
  const cases: [Record<string, string>, number, RegExp][] = [
    [{ METRICS_PORT: "abc" }, 2, /^reference-model: configuration error: METRICS_PORT must be an integer, got "abc"$/],
    [{ METRICS_PORT: "70000" }, 2, /^reference-model: configuration error: METRICS_PORT must be in \[0, 65535\], got 70000$/],
    [{ METRICS_HOST: "localhost:9464" }, 2, /^reference-model: configuration error: METRICS_HOST must be a host name or an IP address \(the port goes in METRICS_PORT\), got "localhost:9464"$/],
  ];
  // A port held by someone else, named explicitly: the start fails, saying so.
  const held: Server = createServer();
  await new Promise<void>((r) => held.listen(0, "127.0.0.1", r));
  const heldPort = (held.address() as { port: number }).port;
  cases.push([{ METRICS_PORT: String(heldPort) }, 1, new RegExp(`^reference-model: failed to start: METRICS_PORT ${heldPort} is already in use on 127\\.0\\.0\\.1 \\(set METRICS_PORT to a free port, or 0 to turn the Prometheus endpoint off\\)$`)]);
  for (const [env, code, re] of cases) {
    const p = startClean([RLHF, "serve", "reference-model", "--port", "0", "--init", "tiny"], env);
    assert.equal(await exitWithin(p, testDeadlineMs(30_000)), code, `${JSON.stringify(env)}: ${p.out()}`);
    const plain = p.out().trim().split("\n").filter((l) => !l.startsWith("{"));
    assert.equal(plain.length, 1, `one plain line: ${p.out()}`);
    assert.match(plain[0], re);
  }
  held.close();

  // The default port (9464) busy: the service starts without the endpoint and says why.
  const blocker: Server = createServer();
  const blocked = await new Promise<boolean>((r) => {
    blocker.once("error", () => r(false)); // someone else holds it: busy all the same
    blocker.listen(9464, "127.0.0.1", () => r(true));
  });
  const port = await freePort();
  const svc = startClean([RLHF, "serve", "reference-model", "--port", String(port), "--init", "tiny"]);
  await waitForServing(`127.0.0.1:${port}`, testDeadlineMs(60_000));
  const lines = logLines(svc);
  const warn = lines.find((l) => typeof l.msg === "string" && l.msg.startsWith("Prometheus endpoint not started"));
  assert.ok(warn && /METRICS_PORT 9464 is already in use/.test(String(warn.err)), svc.out());
  assert.equal(lines.find((l) => l.msg === "starting")?.metrics, "off (default port busy)");
  svc.child.kill("SIGTERM");
  assert.equal(await exitWithin(svc, testDeadlineMs(20_000)), 0, svc.out());
  if (blocked) blocker.close();
});
