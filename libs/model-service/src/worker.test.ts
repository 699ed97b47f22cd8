// The compute worker (./worker): the main thread answers health and reflection while the worker
// blocks its own thread; cancellation, streams, errors, logs and a dying worker cross the boundary.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { existsSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { checkHealth, createLogger, listServicesByReflection } from "@rlhf/grpc-kit";
import { testDeadlineMs, waitUntil } from "@rlhf/errors/dist/testing/deadline";
import { siblingModule, startWorkerModelService, type WorkerModelServiceApp } from "./index";
import { BUSY_SERVICE } from "./testing/busy-compute";
import { chooseKernels } from "@rlhf/torch-backend/dist/kernel-set";
import { ADDON_PATH } from "@rlhf/torch-backend/dist/addon";

/** Why the torch case cannot run here: no addon, or a CPU without portable kernels. */
function torchSkip(): string | false {
  if (!existsSync(ADDON_PATH)) return "torch addon not built";
  const choice = chooseKernels("portable", { ...process.env });
  return choice.portable ? false : `no portable kernels here: ${choice.reason ?? "set in the environment"}`;
}

const lines: Record<string, unknown>[] = [];
const log = createLogger({
  service: "worker-test",
  destination: new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  }),
});

const gate = new Int32Array(new SharedArrayBuffer(4));
let app: WorkerModelServiceApp;
type Cb = (err: grpc.ServiceError | null, res?: unknown) => void;
type BusyClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
let client: BusyClient;
const Busy = grpc.makeGenericClientConstructor(BUSY_SERVICE, "Busy");

const start = () =>
  startWorkerModelService({ host: "127.0.0.1", port: 0, maxReceiveBytes: 4 << 20, gate }, log, {
    definition: BUSY_SERVICE,
    module: siblingModule(__filename, "testing/busy-compute"),
    snapshots: ["state"],
  });

before(async () => {
  app = await start();
  client = new Busy(app.server.address, grpc.credentials.createInsecure()) as unknown as BusyClient;
});
after(async () => {
  client.close();
  await app.stop(500);
});

const unaryCall = (name: string, req: object, opts: grpc.CallOptions = {}) =>
  new Promise<unknown>((resolve, reject) => client[name](req, new grpc.Metadata(), { deadline: Date.now() + testDeadlineMs(60_000), ...opts }, ((err, res) => (err ? reject(err) : resolve(res))) as Cb));
const statusOf = (p: Promise<unknown>) => p.then(() => "OK", (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`);

test("health, reflection and a snapshot method answer while the worker's thread is blocked by a call", async () => {
  Atomics.store(gate, 0, 0);
  let blockDone = false;
  const blocked = unaryCall("block", {}).then((r) => ((blockDone = true), r));
  // The worker spins until the gate opens: without a worker this thread would be the one
  // blocked, and neither answer would come before the gate opened.
  try {
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await checkHealth(app.server.address), "SERVING");
    // (The test's JSON service is not in the descriptor set reflection serves.)
    assert.ok((await listServicesByReflection(app.server.address)).includes("grpc.health.v1.Health"));
    // State is a snapshot method: answered here with the worker's last answer.
    assert.deepEqual(Object.keys((await unaryCall("state", {})) as object).sort(), ["steps", "total"]);
    assert.equal(blockDone, false, "all three answered while the worker was still blocked");
  } finally {
    Atomics.store(gate, 0, 1);
  }
  assert.deepEqual(await blocked, { blocked: true });
});

test("a cancelled call is stopped between its steps", async () => {
  const before = ((await unaryCall("state", {})) as { steps: number }).steps;
  const call = client.steps({ steps: 100_000, ms: 5 }, new grpc.Metadata(), {}, (() => undefined) as Cb) as grpc.ClientUnaryCall;
  for (let i = 0; i < testDeadlineMs(60_000) / 20 && ((await unaryCall("state", {})) as { steps: number }).steps < before + 3; i++) await new Promise((r) => setTimeout(r, 20));
  call.cancel();
  // The call's end is logged once the worker's handler has returned (CANCELLED): from then on
  // the count stands still, however slow the machine.
  const ended = () => lines.some((l) => l.msg === "rpc failed" && String(l.method).endsWith("/Steps") && l.code === "CANCELLED");
  await waitUntil(ended, "the worker's handler stopped and its call ended CANCELLED", testDeadlineMs(60_000));
  const last = ((await unaryCall("state", {})) as { steps: number }).steps;
  assert.ok(last > before && last < before + 100_000, `stopped after ${last - before} steps`);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(((await unaryCall("state", {})) as { steps: number }).steps, last, "no step after the stop");
});

test("a client stream is applied only once complete; a cancelled one changes nothing", async () => {
  const total = async () => ((await unaryCall("state", {})) as { total: number }).total;
  const t0 = await total();
  const cancelled = await new Promise<string>((resolve) => {
    const s = client.sum(new grpc.Metadata(), {}, ((err) => resolve(err ? grpc.status[err.code] : "OK")) as Cb) as grpc.ClientWritableStream<unknown>;
    s.write({ x: 5 });
    s.write({ x: 6 });
    setTimeout(() => s.cancel(), 50);
  });
  assert.equal(cancelled, "CANCELLED");
  assert.equal(await total(), t0, "nothing applied");
  const res = await new Promise<unknown>((resolve, reject) => {
    const s = client.sum(new grpc.Metadata(), {}, ((err, r) => (err ? reject(err) : resolve(r))) as Cb) as grpc.ClientWritableStream<unknown>;
    for (let i = 1; i <= 100; i++) s.write({ x: i });
    s.end();
  });
  assert.deepEqual(res, { total: t0 + 5050 });
  assert.ok(lines.some((l) => l.msg === "summed" && l.sum === 5050 && String(l.method).endsWith("/Sum")), "the worker's log line, with its call's method, through this thread's logger");
});

test("server and bidirectional streams keep order and size through the worker", async () => {
  const got: number[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = client.count({ n: 40, bytes: 200_000 }, new grpc.Metadata(), {}) as grpc.ClientReadableStream<{ i: number; pad: string }>;
    s.on("data", (m: { i: number; pad: string }) => got.push(m.pad.length === 200_000 ? m.i : -1));
    s.on("end", resolve);
    s.on("error", reject);
  });
  assert.deepEqual(got, Array.from({ length: 40 }, (_, i) => i));
  const echoed: number[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = client.echo(new grpc.Metadata(), {}) as grpc.ClientDuplexStream<unknown, { x: number }>;
    s.on("data", (m: { x: number }) => echoed.push(m.x));
    s.on("end", resolve);
    s.on("error", reject);
    for (const x of [1, 2, 3]) s.write({ x });
    s.end();
  });
  assert.deepEqual(echoed, [2, 4, 6]);
});

test("errors keep their status and message; an unexpected one is INTERNAL, its stack in the log", async () => {
  assert.equal(await statusOf(unaryCall("fail", { kind: "domain" })), "INVALID_ARGUMENT: kind: must be anything but domain");
  assert.equal(await statusOf(unaryCall("fail", { kind: "plain" })), "INTERNAL: internal error: a plain error in the worker");
  assert.ok(lines.some((l) => l.msg === "internal error" && String((l.err as { stack?: string } | undefined)?.stack).includes("busy-compute")));
});

test("a worker that dies fails its calls with INTERNAL, turns NOT_SERVING and says so", async () => {
  const other = await start();
  const c = new Busy(other.server.address, grpc.credentials.createInsecure()) as unknown as BusyClient;
  const call = (name: string) => statusOf(new Promise((resolve, reject) => c[name]({}, new grpc.Metadata(), { deadline: Date.now() + testDeadlineMs(60_000) }, ((err, res) => (err ? reject(err) : resolve(res))) as Cb)));
  assert.match(await call("exit"), /^INTERNAL: the compute worker stopped \(exit code 7\) during the call$/);
  assert.equal(await other.died, "exit code 7");
  assert.equal(await checkHealth(other.server.address), "NOT_SERVING");
  assert.match(await call("state"), /^INTERNAL: the compute worker stopped \(exit code 7\); the service must be restarted$/);
  c.close();
  await other.stop(500);
});

test("on the torch backend the worker computes with the portable kernels (OpenBLAS Haswell), pinned before it loads the addon", { skip: torchSkip() }, async () => {
  const saved = process.env.RLHF_BACKEND;
  process.env.RLHF_BACKEND = "torch";
  const torch = await start().finally(() => {
    if (saved === undefined) delete process.env.RLHF_BACKEND;
    else process.env.RLHF_BACKEND = saved;
  });
  const c = new Busy(torch.server.address, grpc.credentials.createInsecure()) as unknown as BusyClient;
  try {
    const info = await new Promise<{ backend: string; backendDetail: string }>((resolve, reject) => c.info({}, new grpc.Metadata(), {}, ((err, res) => (err ? reject(err) : resolve(res as { backend: string; backendDetail: string }))) as Cb));
    assert.equal(info.backend, "torch");
    // A pin set inside the worker reaches its copy of the environment, not OpenBLAS: the detail
    // would name this CPU's own core type.
    assert.match(info.backendDetail, /portable kernels \(OpenBLAS Haswell, ATen avx2\)/);
  } finally {
    c.close();
    await torch.stop(500);
  }
});

test("a module that fails to build its service fails the start with its message", async () => {
  await assert.rejects(
    startWorkerModelService({ host: "127.0.0.1", port: 0, maxReceiveBytes: 1 << 20 }, log, { definition: BUSY_SERVICE, module: siblingModule(__filename, "testing/busy-compute"), exportName: "nothing" }),
    /testing\/busy-compute\.ts exports no function nothing/,
  );
});
