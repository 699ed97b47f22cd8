// Linked spans across real processes: the reference-model service and a traced client both
// export OTLP/HTTP (JSON) to a receiver in this test; the service's server span must be the
// child of the client's span, in the client's trace. This is what the CommonJS output buys.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import { join } from "node:path";
import { waitForServing } from "@rlhf/grpc-kit";
import { BACKEND, RLHF, ROOT, freePort, start, exitWithin } from "./helpers";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
}
interface Collected extends OtlpSpan {
  service: string;
}

function body(req: IncomingMessage): Promise<string> {
  return new Promise((r) => {
    let s = "";
    req.on("data", (d) => (s += d));
    req.on("end", () => r(s));
  });
}

test("one trace spans a traced client and the reference-model service process", async () => {
  const spans: Collected[] = [];
  const receiver = createServer(async (req, res) => {
    const json = JSON.parse(await body(req)) as {
      resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
    };
    for (const rs of json.resourceSpans ?? []) {
      const service = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "?";
      for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, service });
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end("{}");
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  const endpoint = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_BSP_SCHEDULE_DELAY: "200" };

  const port = await freePort();
  const svc = start([RLHF, "serve", "reference-model", "--port", String(port), "--init", "tiny"], { ...otel, RLHF_BACKEND: BACKEND });
  await waitForServing(`127.0.0.1:${port}`, testDeadlineMs(30_000));
  const client = start([join(ROOT, "e2e", "dist", "fixtures", "traced-client.js"), `127.0.0.1:${port}`], otel);
  assert.equal(await exitWithin(client, testDeadlineMs(30_000)), 0, client.out());
  const root = JSON.parse(client.out().trim().split("\n").pop()!) as { traceId: string; spanId: string; grpcLoadedTooEarly: boolean };
  assert.equal(root.grpcLoadedTooEarly, false);
  svc.child.kill("SIGTERM"); // flushes its spans on the way out
  assert.equal(await exitWithin(svc, testDeadlineMs(20_000)), 0, svc.out());
  receiver.close();

  const inTrace = spans.filter((s) => s.traceId === root.traceId);
  const services = new Set(inTrace.map((s) => s.service));
  assert.deepEqual([...services].sort(), ["e2e-client", "reference-model"], JSON.stringify(spans.map((s) => [s.service, s.name])));
  for (const method of ["GetInfo", "LogProbs"]) {
    const clientSpan = inTrace.find((s) => s.service === "e2e-client" && s.name.endsWith(`/${method}`) && s.kind === 3);
    const serverSpan = inTrace.find((s) => s.service === "reference-model" && s.name.endsWith(`/${method}`) && s.kind === 2);
    assert.ok(clientSpan && serverSpan, `${method}: ${JSON.stringify(inTrace)}`);
    assert.equal(clientSpan.parentSpanId, root.spanId, `${method} client span is a child of the root`);
    assert.equal(serverSpan.parentSpanId, clientSpan.spanId, `${method} server span is a child of the client span, across processes`);
  }
});
