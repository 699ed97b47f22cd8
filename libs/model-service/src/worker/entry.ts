/**
 * The compute worker of a model service: a worker thread that holds the compute backend, the
 * models and the service's handlers, so that the main thread (gRPC transport, health, reflection,
 * leases, cancellation) is never blocked by a forward or backward pass, however long it runs on
 * whatever backend. The main thread's {@link ComputeWorker} starts it with the service's module
 * (which exports a {@link CreateCompute}) and forwards every call; logs, metrics, span attributes,
 * the timings of the calls it makes (client spans), health changes and notices come back. Started only through ./host.ts.
 */
import { parentPort, workerData } from "node:worker_threads";
import { AsyncLocalStorage } from "node:async_hooks";
import { Writable } from "node:stream";
import { metrics } from "@opentelemetry/api";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import { DomainError } from "@rlhf/errors";
import { createLogger, handlerOf, SerialQueue, setOutgoingCalls, type CallContext, type HandlerKind, type Logger } from "@rlhf/grpc-kit";
import { childTraceparent, relayAnnotations } from "@rlhf/telemetry";
import { receiveBudget } from "@rlhf/tensor-transport";
import { fromWire, metadataFromWire, toWire, type FromWorker, type ToWorker, type WireError } from "./protocol";
import { relayMeterProvider } from "./metrics-relay";
import type { CreateCompute, WorkerStart } from "./host";

const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);
const start = workerData as WorkerStart;

// Lines go to the main thread's logger (its destination, its level).
const log: Logger = createLogger({
  service: start.service,
  level: start.logLevel,
  destination: new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split("\n")) if (line) post({ t: "log", line });
      cb();
    },
  }),
});

const meterProvider = relayMeterProvider(
  (instrument, value, attrs) => post({ t: "metric", instrument, value, attrs }),
  (points) => post({ t: "observed", points }),
);
metrics.setGlobalMeterProvider(meterProvider);
// The call being served, wherever its handler has got to: span attributes go to its server span,
// and the calls it makes carry its trace context (this thread has no OpenTelemetry of its own).
const currentCall = new AsyncLocalStorage<{ id: number; trace: Record<string, string> }>();
relayAnnotations((attrs) => {
  const call = currentCall.getStore();
  if (call !== undefined) post({ t: "annotate", id: call.id, attrs });
});
// A call made from here (a weights pull) carries the served call's baggage and a traceparent with a
// span id chosen here; once it ends, the main thread records the client span with that id, so the
// server span at the other end hangs from it.
const epochMs = () => performance.timeOrigin + performance.now();
setOutgoingCalls((path, address) => {
  const served = currentCall.getStore();
  if (served === undefined) return undefined;
  const child = childTraceparent(served.trace.traceparent);
  if (child === undefined) return { headers: served.trace, ended: () => undefined };
  const { spanId, traceparent } = child;
  const startMs = epochMs();
  return {
    headers: { ...served.trace, traceparent },
    ended: ({ code, details }) => post({ t: "clientSpan", call: { path, address, parent: served.trace, spanId, startMs, endMs: epochMs(), code, details } }),
  };
});

/** A call in progress: its cancellation, and what the main thread sends it. */
interface Pending {
  abort: AbortController;
  /** Resolves the request stream's waiting `next` (a message, the end, or a failure). */
  onReq?: (m: { msg?: unknown; end?: true; err?: WireError }) => void;
  /** Resolves a sent response message's wait for its ack. */
  onAck?: () => void;
}
const calls = new Map<number, Pending>();
const handlers: Record<string, { kind: HandlerKind; fn: (...args: unknown[]) => Promise<unknown> }> = {};
let dispose: () => void | Promise<void> = () => undefined;

/** How often the snapshot methods are answered anew between steps. */
const SNAPSHOT_EVERY_MS = 500;

const cancelled = () => new DomainError("CANCELLED", "call cancelled by the client");

/** Waits for the main thread's answer (`set` is given its resolver), or fails when the call is cancelled first. */
function untilAnswer<T>(signal: AbortSignal, set: (resolve: (v: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    set((v) => {
      signal.removeEventListener("abort", onAbort);
      resolve(v);
    });
  });
}

/** The request messages of a streaming call, pulled one at a time (the main thread reads the next only when asked). */
async function* requests(id: number, p: Pending): AsyncGenerator<unknown> {
  for (;;) {
    const got = await untilAnswer<{ msg?: unknown; end?: true; err?: WireError }>(p.abort.signal, (r) => {
      p.onReq = r;
      post({ t: "pull", id });
    });
    p.onReq = undefined;
    if (got.err) throw fromWire(got.err);
    if (got.end) return;
    yield got.msg;
  }
}

/** Answers of the snapshot methods (./host.ts `snapshots`) to an empty request, sent to the main thread. */
async function refreshSnapshots(): Promise<void> {
  for (const method of start.snapshots) {
    const h = handlers[method];
    if (!h) continue;
    const ctx: CallContext = { method, log, metadata: metadataFromWire({}), signal: new AbortController().signal };
    try {
      post({ t: "snapshot", method, res: await h.fn({}, ctx) });
    } catch (err) {
      post({ t: "snapshot", method, err: toWire(err) });
    }
  }
}

async function runCall(m: Extract<ToWorker, { t: "call" }>): Promise<void> {
  const h = handlers[m.method];
  const p: Pending = { abort: new AbortController() };
  calls.set(m.id, p);
  const ctx: CallContext = {
    method: m.path,
    log: log.child(m.traceId ? { method: m.path, traceId: m.traceId } : { method: m.path }),
    metadata: metadataFromWire(m.metadata),
    signal: p.abort.signal,
  };
  // Snapshots first: a client that has seen a message sees at least that state in GetInfo.
  const send = async (msg: unknown) => {
    await refreshSnapshots();
    return untilAnswer<void>(p.abort.signal, (r) => {
      p.onAck = r;
      post({ t: "msg", id: m.id, msg });
    });
  };
  try {
    if (!h) throw new DomainError("UNIMPLEMENTED", `${m.method} is not served by the compute worker`);
    const running = currentCall.run({ id: m.id, trace: m.trace }, () => {
      switch (h.kind) {
        case "unary":
          return h.fn(m.req, ctx);
        case "serverStream":
          return h.fn(m.req, send, ctx);
        case "clientStream":
          return h.fn(requests(m.id, p), ctx);
        case "bidiStream":
          return h.fn(requests(m.id, p), send, ctx);
      }
    });
    // The call has joined its queue (or started): what GetInfo says now. (Its failure is awaited
    // below; marked handled here so that it never counts as unhandled meanwhile.)
    running.catch(() => undefined);
    await refreshSnapshots();
    const res = await running;
    await refreshSnapshots();
    post({ t: "done", id: m.id, res });
  } catch (err) {
    await refreshSnapshots();
    post({ t: "fail", id: m.id, err: toWire(err) });
  } finally {
    calls.delete(m.id);
    // Fresh readings of the observables (queue depth, tensor memory) after every call, besides the timer's.
    meterProvider.collect();
  }
}

port.on("message", (m: ToWorker) => {
  switch (m.t) {
    case "call":
      void runCall(m);
      return;
    case "req":
      calls.get(m.id)?.onReq?.({ msg: m.msg });
      return;
    case "end":
      calls.get(m.id)?.onReq?.({ end: true });
      return;
    case "reqError":
      calls.get(m.id)?.onReq?.({ err: m.err });
      return;
    case "ack":
      calls.get(m.id)?.onAck?.();
      return;
    case "cancel":
      calls.get(m.id)?.abort.abort(cancelled());
      return;
    case "memory": {
      const mem = tf.memory();
      post({ t: "memory", id: m.id, numTensors: mem.numTensors, numBytes: mem.numBytes });
      return;
    }
    case "dispose":
      void (async () => {
        try {
          await dispose();
        } finally {
          meterProvider.collect();
          meterProvider.stop();
          post({ t: "disposed" });
          port.close();
        }
      })();
      return;
  }
});

async function main(): Promise<void> {
  const backend = await initBackend({ log: (msg, fields) => log.info(fields ?? {}, msg) });
  const cfg = start.cfg as { maxUploadBytes?: number };
  if (cfg.maxUploadBytes !== undefined) receiveBudget.setLimit(cfg.maxUploadBytes);
  // The service's module, by path (CommonJS, as the whole project; under tsx in the tests).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(start.module) as Record<string, unknown>;
  const create = mod[start.exportName] as CreateCompute<unknown> | undefined;
  if (typeof create !== "function") throw new Error(`${start.module} exports no function ${start.exportName}`);
  const built = await create({
    cfg: start.cfg,
    log,
    backend: backend.name,
    backendDetail: backend.detail,
    serving: { set: (on) => post({ t: "serving", on }) },
    notify: (notice) => post({ t: "notice", notice }),
  });
  const methods: Record<string, HandlerKind> = {};
  for (const [name, impl] of Object.entries(built.service.implementation)) {
    const spec = handlerOf(impl);
    if (!spec) throw new Error(`${name}: the compute worker serves handlers made with unary/serverStream/clientStream/bidiStream only`);
    handlers[name] = spec as (typeof handlers)[string];
    methods[name] = spec.kind;
  }
  // A file operation past its deadline holds the work queue: the main thread's readiness says so.
  const queue = (built.service as { queue?: unknown }).queue;
  if (queue instanceof SerialQueue) queue.onStuck = (what) => post({ t: "stuck", what });
  dispose = built.dispose;
  await refreshSnapshots();
  setInterval(() => void refreshSnapshots(), SNAPSHOT_EVERY_MS).unref();
  post({ t: "ready", backend: backend.name, backendDetail: backend.detail, methods });
  meterProvider.collect();
}

main().catch((err: unknown) => post({ t: "startFailed", err: toWire(err) }));
