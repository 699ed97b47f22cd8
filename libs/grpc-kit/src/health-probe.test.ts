// The "liveness" / "readiness" health names that Kubernetes probes and the images' HEALTHCHECK
// use, against a real server on 127.0.0.1:0, and the health-probe command's exit statuses.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { referenceModel } from "@rlhf/proto";
import { createLogger, startServer, checkHealth, freePort, LIVENESS_HEALTH_SERVICE, READINESS_HEALTH_SERVICE } from "./index";
import { probe, probeTarget } from "./health-probe";

const log = createLogger({ service: "probe-test", level: "silent" });
const never = () => new Promise<never>(() => undefined);
const impl = { logProbs: never, loadWeights: never, uploadWeights: never, getInfo: never } as unknown as grpc.UntypedServiceImplementation;

async function server() {
  return startServer({ services: [{ definition: referenceModel.ReferenceModelServiceService, implementation: impl }], log });
}

test("liveness and readiness are SERVING while the service itself is not (no model loaded yet)", async () => {
  const s = await server();
  assert.equal(await checkHealth(s.address), "NOT_SERVING");
  assert.equal(await checkHealth(s.address, LIVENESS_HEALTH_SERVICE), "SERVING");
  assert.equal(await checkHealth(s.address, READINESS_HEALTH_SERVICE), "SERVING");
  s.setServing(true);
  s.setServing(false);
  assert.equal(await checkHealth(s.address, LIVENESS_HEALTH_SERVICE), "SERVING", "setServing leaves liveness alone");
  await s.shutdown(100);
});

test("readiness turns NOT_SERVING when a graceful shutdown starts; liveness stays SERVING", async () => {
  const s = await server();
  const Health = grpc.makeClientConstructor(healthService, "grpc.health.v1.Health");
  const c = new Health(s.address, grpc.credentials.createInsecure()) as unknown as grpc.Client & { watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }> };
  const seen: Record<string, string[]> = { readiness: [], liveness: [] };
  const watches = (["readiness", "liveness"] as const).map((name) => {
    const w = c.watch({ service: name });
    w.on("data", (m: { status: string }) => seen[name].push(m.status));
    w.on("error", () => undefined); // cancelled by the forced end of the shutdown
    return w;
  });
  while (seen.readiness.length === 0 || seen.liveness.length === 0) await new Promise((r) => setTimeout(r, 10));
  // The open watches keep the server busy, so the shutdown runs its whole grace period.
  await s.shutdown(300);
  for (const w of watches) w.cancel();
  c.close();
  assert.deepEqual(seen.readiness, ["SERVING", "NOT_SERVING"]);
  assert.deepEqual(seen.liveness, ["SERVING"]);
});

test("health-probe exits 0 on SERVING and 1 otherwise, naming what it saw", async () => {
  const s = await server();
  const errors: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => (errors.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    assert.equal(await probe([], { GRPC_PORT: String(s.port) }), 0, "liveness by default, on 127.0.0.1:$GRPC_PORT");
    assert.equal(await probe([s.address, "readiness"], {}), 0);
    assert.equal(await probe([s.address, ""], {}), 1);
    assert.match(errors.at(-1) ?? "", /"" is NOT_SERVING/);
    assert.equal(await probe([`127.0.0.1:${await freePort()}`], {}, 1000), 1);
    assert.match(errors.at(-1) ?? "", /health-probe: 127\.0\.0\.1:\d+ "liveness": /);
    assert.equal(await probe([], {}), 1);
    assert.match(errors.at(-1) ?? "", /give host:port, or set GRPC_PORT/);
  } finally {
    process.stderr.write = write;
    await s.shutdown(100);
  }
  assert.deepEqual(probeTarget(["policy:50051"], {}), { address: "policy:50051", service: "liveness" });
  assert.throws(() => probeTarget(["http://x:1"], {}), /address must look like host:port, got "http:\/\/x:1"/);
});
