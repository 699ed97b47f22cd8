// Service-kit tests against a real server on 127.0.0.1:0, called through the generated client.
// The ReferenceModelService contract is used only as a vehicle: these handlers test the kit.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { getEventListeners } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { referenceModel, rewardModel, descriptorSetPath } from "@rlhf/proto";
import { InvalidArgumentError, UnavailableError, NotFoundError } from "@rlhf/errors";
import {
  createLogger,
  startServer,
  unary,
  clientStream,
  createClient,
  checkHealth,
  listServicesByReflection,
  SerialQueue,
  bidiStream,
  type RunningServer,
  envInt,
  envAddress,
  envMetrics,
  ConfigError,
  yieldToEventLoop,
  YIELD_WAIT_AFTER_MS,
} from "./index";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk, _enc, cb) {
    for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l));
    cb();
  },
});
const log = createLogger({ service: "kit-test", destination: sink, level: "debug" });

let infoCalls = 0;
let loadCalls = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const impl: Omit<referenceModel.ReferenceModelServiceServer, "runLease"> = {
  logProbs: unary(log, async (req: referenceModel.LogProbsRequest) => {
    const t = req.temperature;
    if (t === 1) throw new InvalidArgumentError("temperature", "must not be exactly 1 in this test");
    if (t === 2) throw new Error("boom\nsecond line");
    if (t === 3) throw new NotFoundError("weights.version", "version 9 is not loaded");
    if (t === 4) await sleep(300);
    if (t === 5) {
      // a downstream status passes through unchanged
      const e = Object.assign(new Error("downstream"), { code: grpc.status.PERMISSION_DENIED, details: "nope", metadata: new grpc.Metadata() });
      throw e;
    }
    return { logprobs: [t], lengths: [1], weights: undefined };
  }),
  getInfo: unary(log, async () => {
    infoCalls++;
    if (infoCalls < 3) throw new UnavailableError("warming up");
    return { backend: "cpu", maxBatchSequences: 1, maxBatchTokens: 1, weights: undefined, config: undefined };
  }),
  loadWeights: unary(log, async () => {
    loadCalls++;
    throw new UnavailableError("not today");
  }),
  uploadWeights: clientStream(log, async (reqs: AsyncIterable<referenceModel.UploadWeightsRequest>) => {
    let n = 0;
    for await (const r of reqs) n += r.chunk?.part?.$case === "data" ? r.chunk.part.data.data.length : 0;
    return { bytesReceived: n, weights: undefined };
  }),
};

let srv: RunningServer;
async function server(): Promise<RunningServer> {
  srv ??= await startServer({
    services: [{ definition: referenceModel.ReferenceModelServiceService, implementation: impl }],
    log,
    descriptorSetPath,
  });
  return srv;
}
after(async () => srv?.shutdown(1000));

function client(s: RunningServer) {
  return createClient(referenceModel.ReferenceModelServiceClient, s.address, {
    deadlineMs: testDeadlineMs(5000),
    idempotent: ["getInfo", "logProbs"],
    initialBackoffMs: 10,
  });
}

test("listens on loopback by default, health goes NOT_SERVING -> SERVING, reflection lists only the served services", async () => {
  const s = await server();
  assert.equal(s.host, "127.0.0.1");
  assert.ok(s.port > 0);
  assert.equal(await checkHealth(s.address), "NOT_SERVING");
  s.setServing(true);
  assert.equal(await checkHealth(s.address), "SERVING");
  assert.equal(await checkHealth(s.address, "rlhf.reference_model.v1.ReferenceModelService"), "SERVING");
  // The descriptor set holds all five contracts; a server lists only what it serves.
  assert.deepEqual(await listServicesByReflection(s.address), ["grpc.health.v1.Health", "rlhf.reference_model.v1.ReferenceModelService"]);
});

test("domain errors map to their status with the field in the message; others become INTERNAL", async () => {
  const c = client(await server());
  const code = async (t: number) => {
    try {
      await c.unary("logProbs", { batch: undefined, temperature: t });
      return "OK";
    } catch (e) {
      return `${grpc.status[(e as grpc.ServiceError).code]}: ${(e as grpc.ServiceError).details}`;
    }
  };
  assert.equal(await code(1), "INVALID_ARGUMENT: temperature: must not be exactly 1 in this test");
  assert.equal(await code(2), "INTERNAL: internal error: boom");
  assert.equal(await code(3), "NOT_FOUND: weights.version: version 9 is not loaded");
  assert.equal(await code(5), "PERMISSION_DENIED: nope");
  assert.equal(await code(0.5), "OK");
  // the INTERNAL one logged its stack; responses never carry it
  assert.ok(lines.some((l) => l.msg === "internal error" && JSON.stringify(l).includes("stack")));
  assert.ok(lines.some((l) => l.msg === "rpc failed" && l.code === "INVALID_ARGUMENT" && l.service === "kit-test"));
  c.close();
});

test("every call has a deadline", async () => {
  const c = client(await server());
  await assert.rejects(c.unary("logProbs", { batch: undefined, temperature: 4 }, { deadlineMs: 50 }), (e: grpc.ServiceError) => e.code === grpc.status.DEADLINE_EXCEEDED); // deadline under test
  c.close();
});

test("a long-lived abort signal keeps no listener per finished call", async () => {
  const c = client(await server());
  const ac = new AbortController();
  const before = getEventListeners(ac.signal, "abort").length;
  for (let i = 0; i < 20; i++) {
    await c.unary("logProbs", { batch: undefined, temperature: 7 }, { signal: ac.signal });
    const up = c.clientStream("uploadWeights", { signal: ac.signal });
    await up.end();
  }
  // Listeners are removed as each call ends (20 unary + 20 streaming calls would leave 40).
  await sleep(20);
  assert.equal(getEventListeners(ac.signal, "abort").length, before);
  c.close();
});

test("a named client says which call failed; code and details stay the server's", async () => {
  const srvr = await server();
  const c = createClient(referenceModel.ReferenceModelServiceClient, srvr.address, { name: "reference-model" });
  await assert.rejects(c.unary("logProbs", { batch: undefined, temperature: 1 }), (e: grpc.ServiceError) => {
    assert.match(e.message, /^reference-model\.logProbs: 3 INVALID_ARGUMENT: temperature: must not be exactly 1/);
    assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(e.details, "temperature: must not be exactly 1 in this test");
    return true;
  });
  c.close();
});

test("idempotent calls retry on UNAVAILABLE; others are not retried", async () => {
  const c = client(await server());
  const info = await c.unary("getInfo", {});
  assert.equal(info.backend, "cpu");
  assert.equal(infoCalls, 3);
  await assert.rejects(c.unary("loadWeights", { source: { $case: "checkpointDir", checkpointDir: "/x" } }), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);
  assert.equal(loadCalls, 1);
  c.close();
});

test("a message over the 4 MiB receive limit is refused with RESOURCE_EXHAUSTED", async () => {
  const s = await server();
  const c = createClient(referenceModel.ReferenceModelServiceClient, s.address, { maxSendMessageBytes: 64 << 20 });
  const tokens = new Array(2_000_000).fill(100000); // 3 bytes each as varints: ~6 MB
  await assert.rejects(
    c.unary("logProbs", { batch: { tokens, lengths: [tokens.length], promptLengths: [] }, temperature: 0.5 }),
    (e: grpc.ServiceError) => e.code === grpc.status.RESOURCE_EXHAUSTED,
  );
  c.close();
});

test("client streaming with back-pressure-aware writes", async () => {
  const c = client(await server());
  const call = c.clientStream("uploadWeights");
  for (let i = 0; i < 50; i++) {
    await call.write({ chunk: { part: { $case: "data", data: { tensorIndex: 0, offset: i * 65536, data: Buffer.alloc(65536) } } } });
  }
  const res = await call.end();
  assert.equal(res.bytesReceived, 50 * 65536);
  c.close();
});

test("graceful shutdown lets an in-flight call finish and refuses new ones", async () => {
  const local = await startServer({
    services: [{ definition: referenceModel.ReferenceModelServiceService, implementation: impl }],
    log,
  });
  local.setServing(true);
  const c = client(local);
  const inflight = c.unary("logProbs", { batch: undefined, temperature: 4 });
  await sleep(50);
  const stopped = local.shutdown(5000);
  await assert.rejects(checkHealth(local.address, "", 500));
  const res = await inflight;
  assert.deepEqual(res.logprobs, [4]);
  await stopped;
  c.close();
});

test("SerialQueue runs one at a time in order and refuses when full", async () => {
  const q = new SerialQueue("train", 2);
  const order: number[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  const task = (i: number) => async () => {
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    await sleep(20);
    order.push(i);
    concurrent--;
    return i;
  };
  const a = q.run(task(1));
  const b = q.run(task(2));
  const c = q.run(task(3)); // 1 is waiting until the microtask runs, so 3 would be the third waiter
  const results = await Promise.allSettled([a, b, c]);
  const refused = results.filter((r) => r.status === "rejected");
  assert.equal(refused.length, 1);
  assert.match(String((refused[0] as PromiseRejectedResult).reason.message), /queue is full/);
  assert.equal((refused[0] as PromiseRejectedResult).reason.code, "RESOURCE_EXHAUSTED");
  assert.equal(maxConcurrent, 1);
  assert.deepEqual(order, [1, 2]);
  assert.equal(q.depth, 0);
  // a failing task does not block the next
  await assert.rejects(q.run(() => Promise.reject(new Error("x"))));
  assert.equal(await q.run(() => 7), 7);
});

test("environment parsing gives one clear line", () => {
  assert.equal(envInt({ N: "5" }, "N", 1, 0, 10), 5);
  assert.equal(envInt({}, "N", 1, 0, 10), 1);
  assert.throws(() => envInt({ N: "5x" }, "N", 1, 0, 10), (e: Error) => e instanceof ConfigError && e.message === 'N must be an integer, got "5x"');
  assert.throws(() => envInt({ N: "50" }, "N", 1, 0, 10), /N must be in \[0, 10\], got 50/);
  assert.equal(envAddress({ A: "dns:///ref.svc:50051" }, "A"), "dns:///ref.svc:50051");
  assert.throws(() => envAddress({ A: "nohost" }, "A"), /A must look like host:port/);
});

test("METRICS_HOST / METRICS_PORT: defaults, 0 turns the endpoint off, a set port is required, one clear line when wrong", () => {
  assert.deepEqual(envMetrics({}), { metricsHost: "127.0.0.1", metricsPort: 9464, metricsPortRequired: false });
  assert.deepEqual(envMetrics({ METRICS_HOST: "0.0.0.0", METRICS_PORT: "9500" }), { metricsHost: "0.0.0.0", metricsPort: 9500, metricsPortRequired: true });
  assert.deepEqual(envMetrics({ METRICS_PORT: "0" }), { metricsHost: "127.0.0.1", metricsPort: 0, metricsPortRequired: true });
  assert.equal(envMetrics({ METRICS_HOST: "[::1]" }).metricsHost, "::1");
  assert.equal(envMetrics({ METRICS_HOST: "policy-0.policy.rlhf.svc" }).metricsHost, "policy-0.policy.rlhf.svc");
  assert.throws(() => envMetrics({ METRICS_PORT: "x1" }), (e: Error) => e instanceof ConfigError && e.message === 'METRICS_PORT must be an integer, got "x1"');
  assert.throws(() => envMetrics({ METRICS_PORT: "65536" }), /METRICS_PORT must be in \[0, 65535\], got 65536/);
  for (const bad of ["10.0.0.1:9464", "http://x", "a b"]) {
    assert.throws(() => envMetrics({ METRICS_HOST: bad }), (e: Error) => e instanceof ConfigError && e.message === `METRICS_HOST must be a host name or an IP address (the port goes in METRICS_PORT), got "${bad}"`, bad);
  }
});

/** A server whose only method is RewardModelService.Train, handled by `handler` through the kit. */
function trainServer(handler: (reqs: AsyncIterable<rewardModel.TrainRequest>, send: (m: rewardModel.TrainResponse) => Promise<void>) => Promise<void>): Promise<RunningServer> {
  return startServer({ log, services: [{ definition: rewardModel.RewardModelServiceService, implementation: { train: bidiStream(log, handler) } }] });
}

test("yieldToEventLoop after a long computation waits in the poll phase: timers (and a new connection's round trips) get through", async () => {
  // Computation longer than YIELD_WAIT_AFTER_MS, then one yield: a timer due by then has run
  // (one setImmediate turn would return before the timers phase).
  const t0 = performance.now();
  while (performance.now() - t0 < YIELD_WAIT_AFTER_MS + 20);
  let fired = false;
  setTimeout(() => (fired = true), 0);
  await yieldToEventLoop();
  assert.equal(fired, true);
  // Right after it, a yield is one turn: an immediate queued before it has run.
  let turned = false;
  setImmediate(() => (turned = true));
  await yieldToEventLoop();
  assert.equal(turned, true);
});

test("send yields to the event loop: a handler that computes between messages lets I/O and other calls through", async () => {
  const ticks: boolean[] = [];
  const local = await trainServer(async (reqs, send) => {
    for await (const _r of reqs) void _r;
    for (let step = 1; step <= 3; step++) {
      // A macrotask queued before the send runs before the send returns.
      let ticked = false;
      setImmediate(() => (ticked = true));
      await send({ part: { $case: "progress", progress: rewardModel.TrainProgress.fromPartial({ step }) } });
      ticks.push(ticked);
    }
  });
  const c = createClient(rewardModel.RewardModelServiceClient, local.address, { deadlineMs: testDeadlineMs(5000) });
  try {
    const steps = await new Promise<number[]>((resolve, reject) => {
      const call = c.bidi("train");
      const got: number[] = [];
      call.on("data", (m: rewardModel.TrainResponse) => m.part?.$case === "progress" && got.push(m.part.progress.step));
      call.on("error", reject);
      call.on("status", (st: grpc.StatusObject) => st.code === grpc.status.OK && resolve(got));
      call.end();
    });
    assert.deepEqual(steps, [1, 2, 3]);
    assert.deepEqual(ticks, [true, true, true]);
  } finally {
    c.close();
    await local.shutdown(500);
  }
});

test("a bidirectional handler that reads every request can still send and finish with a status", async () => {
  const local = await trainServer(async (reqs, send) => {
    let n = 0;
    for await (const _r of reqs) n++;
    // after the request side ended: answer, then fail with a domain error for odd counts
    await send({ part: { $case: "progress", progress: rewardModel.TrainProgress.fromPartial({ step: n }) } });
    if (n % 2 === 1) throw new InvalidArgumentError("requests", `odd count ${n}`);
  });
  const c = createClient(rewardModel.RewardModelServiceClient, local.address, { deadlineMs: testDeadlineMs(5000) });
  const run = (n: number) =>
    new Promise<{ got: number; code: number }>((resolve) => {
      const call = c.bidi("train");
      let got = 0;
      call.on("data", () => got++);
      call.on("error", (e: grpc.ServiceError) => resolve({ got, code: e.code }));
      call.on("status", (st: grpc.StatusObject) => st.code === grpc.status.OK && resolve({ got, code: 0 }));
      for (let i = 0; i < n; i++) call.write({ part: undefined });
      call.end();
    });
  assert.deepEqual(await run(2), { got: 1, code: 0 });
  assert.deepEqual(await run(3), { got: 1, code: grpc.status.INVALID_ARGUMENT });
  c.close();
  await local.shutdown(500);
});
