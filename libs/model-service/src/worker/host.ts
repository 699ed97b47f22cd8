/**
 * The main thread's side of a model service's compute worker (./entry.ts): it starts the worker
 * with the service's module, and serves each of the service's methods with a handler that
 * forwards the call there. The handler wrappers (@rlhf/grpc-kit handlers.ts) still run here:
 * statuses, logs, rpc.server.duration, all-or-nothing request streams (the worker sees a
 * stream's end only once the client half-closed) and back-pressure (one response message in
 * flight per call; the worker reads the next request only when its handler asks for it).
 * Cancellation reaches the worker at once; its handler sees it at its next step.
 */
import { Worker } from "node:worker_threads";
import { extname, resolve } from "node:path";
import type { ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import { context, propagation, trace, type Span } from "@opentelemetry/api";
import { DomainError } from "@rlhf/errors";
import { bidiStream, clientStream, serverStream, unary, type CallContext, type HandlerKind, type Logger, type Send, type ServiceRegistration } from "@rlhf/grpc-kit";
import { fromWire, toWire, type FromWorker, type ToWorker, type WireError, type WireMetadata } from "./protocol";
import { RelayedMetrics } from "./metrics-relay";
import { recordTimedClientCall } from "@rlhf/telemetry";
import { KERNELS_ENV_VAR, chooseKernels, parseKernelSet } from "@rlhf/torch-backend/dist/kernel-set";

/** The health a service reports, as its compute sets it. */
export interface Serving {
  set(on: boolean): void;
}

/** What the service's module gets in the worker. */
export interface ComputeContext<C> {
  cfg: C;
  log: Logger;
  backend: string;
  backendDetail: string;
  /** SERVING once a model is in place (the main thread reports it). */
  serving: Serving;
  /** Sends `notice` (structured-cloneable) to the main thread's `onNotice` (e.g. a weights event to publish). */
  notify(notice: unknown): void;
}

/** The service's module's export: builds its models and handlers inside the worker. */
export type CreateCompute<C> = (ctx: ComputeContext<C>) => Promise<{ service: ServiceRegistration; dispose(): void | Promise<void> }>;

/** The worker's start data. */
export interface WorkerStart {
  module: string;
  exportName: string;
  cfg: unknown;
  service: string;
  logLevel: string;
  snapshots: string[];
}

/** Options of {@link ComputeWorker.start}. */
export interface ComputeWorkerOptions {
  /** The module exporting the {@link CreateCompute}: an absolute path (see {@link siblingModule}). */
  module: string;
  exportName?: string;
  /** The service's config (structured-cloneable), handed to the module. */
  cfg: unknown;
  /**
   * Unary methods answered here from the worker's latest answer to an empty request (e.g.
   * `getInfo`), refreshed when a call starts and before it ends, and every second between steps:
   * they answer at once during a long step, with the state as of the last one.
   */
  snapshots?: readonly string[];
  /** Name on the worker's log lines. */
  service: string;
  log: Logger;
  onServing(on: boolean): void;
  onStuck(what: string | undefined): void;
  onNotice?(notice: unknown): void;
  /** The worker stopped without being asked (an error, or out of memory): every call in flight has failed. */
  onDied(reason: string): void;
}

/** `name` beside `file` (a module's __filename), with the same extension: `.ts` under tsx, `.js` when built. */
export function siblingModule(file: string, name: string): string {
  return resolve(file, "..", `${name}${extname(file)}`);
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  span?: Span;
  requests?: AsyncIterator<unknown>;
  send?: Send<unknown>;
  done(): void;
}

const LEVELS: Record<number, "trace" | "debug" | "info" | "warn" | "error" | "fatal"> = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" };

export class ComputeWorker {
  private readonly pending = new Map<number, Pending>();
  private readonly metrics = new RelayedMetrics();
  private nextId = 0;
  private stopped?: string;
  private disposed?: () => void;
  private readonly latest = new Map<string, { res?: unknown; err?: WireError }>();
  private readonly memoryAsked = new Map<number, { resolve(m: { numTensors: number; numBytes: number }): void; reject(e: Error): void }>();

  private constructor(
    private readonly worker: Worker,
    private readonly opts: ComputeWorkerOptions,
    readonly backend: string,
    readonly backendDetail: string,
    readonly methods: ReadonlySet<string>,
  ) {}

  /** Starts the worker and waits until the module built its service (or failed to: the start rejects with its error). */
  static async start(opts: ComputeWorkerOptions): Promise<ComputeWorker> {
    const start: WorkerStart = { module: opts.module, exportName: opts.exportName ?? "createCompute", cfg: opts.cfg, service: opts.service, logLevel: opts.log.level, snapshots: [...(opts.snapshots ?? [])] };
    pinKernels();
    const entry = siblingModule(__filename, "entry");
    // Under tsx (the tests: this file is TypeScript) the worker registers tsx, then loads the entry.
    const worker = entry.endsWith(".ts")
      ? new Worker(`require(${JSON.stringify(require.resolve("tsx/cjs"))}); require(${JSON.stringify(entry)});`, { eval: true, workerData: start })
      : new Worker(entry, { workerData: start });
    const box: { self?: ComputeWorker } = {};
    const early: FromWorker[] = [];
    const ready = new Promise<Extract<FromWorker, { t: "ready" }>>((resolveReady, rejectReady) => {
      worker.on("message", (m: FromWorker) => {
        if (m.t === "ready") resolveReady(m);
        else if (m.t === "startFailed") rejectReady(fromWire(m.err));
        else if (box.self) box.self.onMessage(m);
        else early.push(m);
      });
      worker.on("error", (err) => (box.self ? box.self.died(`error: ${err.message}`) : rejectReady(err)));
      worker.on("exit", (code) => (box.self ? box.self.died(`exit code ${code}`) : rejectReady(new Error(`the compute worker exited (code ${code}) before it was ready`))));
    });
    let r: Extract<FromWorker, { t: "ready" }>;
    try {
      r = await ready;
    } catch (err) {
      for (const m of early) if (m.t === "log") relayLog(opts.log, m.line);
      await worker.terminate();
      throw err;
    }
    const self = new ComputeWorker(worker, opts, r.backend, r.backendDetail, new Set(Object.keys(r.methods)));
    box.self = self;
    for (const m of early) self.onMessage(m);
    return self;
  }

  /**
   * The implementation of `definition`: every method the worker serves, forwarded to it (a method
   * the definition has and the worker does not serve is an error at start, except `except`'s).
   */
  implementation(definition: ServiceDefinition, log: Logger, except: readonly string[] = []): UntypedServiceImplementation {
    const impl: UntypedServiceImplementation = {};
    for (const [name, m] of Object.entries(definition)) {
      if (except.includes(name)) continue;
      if (!this.methods.has(name)) throw new Error(`${m.path}: not served by the compute worker's module ${this.opts.module}`);
      const kind: HandlerKind = m.requestStream ? (m.responseStream ? "bidiStream" : "clientStream") : m.responseStream ? "serverStream" : "unary";
      const call = (ctx: CallContext, input: { req?: unknown; requests?: AsyncIterable<unknown>; send?: Send<unknown> }) => this.call(name, ctx, input);
      const snapshot = kind === "unary" && this.opts.snapshots?.includes(name);
      impl[name] = snapshot
        ? unary(log, async (req: unknown, ctx) => {
            const last = this.latest.get(name);
            if (this.stopped !== undefined || last === undefined) return call(ctx, { req });
            if (last.err) throw fromWire(last.err);
            return last.res;
          })
        : kind === "unary"
          ? unary(log, (req: unknown, ctx) => call(ctx, { req }))
          : kind === "serverStream"
            ? serverStream(log, async (req: unknown, send: Send<unknown>, ctx) => void (await call(ctx, { req, send })))
            : kind === "clientStream"
              ? clientStream(log, (requests: AsyncIterable<unknown>, ctx) => call(ctx, { requests }))
              : bidiStream(log, async (requests: AsyncIterable<unknown>, send: Send<unknown>, ctx) => void (await call(ctx, { requests, send })));
    }
    return impl;
  }

  private post(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  private call(method: string, ctx: CallContext, input: { req?: unknown; requests?: AsyncIterable<unknown>; send?: Send<unknown> }): Promise<unknown> {
    if (this.stopped !== undefined) return Promise.reject(new DomainError("INTERNAL", `the compute worker stopped (${this.stopped}); the service must be restarted`));
    const id = ++this.nextId;
    // The call's server span: the worker's attributes go on it, its trace id on the worker's log lines.
    const span = trace.getActiveSpan();
    return new Promise((resolveCall, rejectCall) => {
      const onAbort = () => this.post({ t: "cancel", id });
      this.pending.set(id, {
        resolve: resolveCall,
        reject: rejectCall,
        span,
        requests: input.requests?.[Symbol.asyncIterator](),
        send: input.send,
        done: () => ctx.signal.removeEventListener("abort", onAbort),
      });
      const carrier: Record<string, string> = {};
      propagation.inject(context.active(), carrier);
      this.post({ t: "call", id, method, path: ctx.method, req: input.req, metadata: ctx.metadata.toJSON() as WireMetadata, traceId: span?.spanContext().traceId, trace: carrier });
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private settle(id: number, f: (p: Pending) => void): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.done();
    f(p);
  }

  private onMessage(m: FromWorker): void {
    switch (m.t) {
      case "pull": {
        const p = this.pending.get(m.id);
        p?.requests?.next().then(
          (r) => this.post(r.done ? { t: "end", id: m.id } : { t: "req", id: m.id, msg: r.value }),
          (err: unknown) => this.post({ t: "reqError", id: m.id, err: toWire(err) }),
        );
        return;
      }
      case "msg": {
        const p = this.pending.get(m.id);
        // A send that fails has lost its call (cancelled: the worker is told so already).
        p?.send?.(m.msg).then(
          () => this.post({ t: "ack", id: m.id }),
          () => undefined,
        );
        return;
      }
      case "done":
        return this.settle(m.id, (p) => p.resolve(m.res));
      case "fail":
        return this.settle(m.id, (p) => p.reject(fromWire(m.err)));
      case "annotate":
        this.pending.get(m.id)?.span?.setAttributes(m.attrs);
        return;
      case "clientSpan":
        recordTimedClientCall(m.call);
        return;
      case "log":
        return relayLog(this.opts.log, m.line);
      case "metric":
        return this.metrics.apply(m.instrument, m.value, m.attrs);
      case "observed":
        return this.metrics.observed(m.points);
      case "serving":
        return this.opts.onServing(m.on);
      case "stuck":
        return this.opts.onStuck(m.what);
      case "notice":
        return this.opts.onNotice?.(m.notice);
      case "snapshot":
        this.latest.set(m.method, { res: m.res, err: m.err });
        return;
      case "memory":
        this.memoryAsked.get(m.id)?.resolve({ numTensors: m.numTensors, numBytes: m.numBytes });
        this.memoryAsked.delete(m.id);
        return;
      case "disposed":
        this.disposed?.();
        return;
      case "ready":
      case "startFailed":
        return;
    }
  }

  /** The worker is gone: calls in flight fail, new ones are refused, the service is told. */
  private died(reason: string): void {
    if (this.stopped !== undefined) return;
    this.stopped = reason;
    if (this.disposed) return this.disposed();
    for (const id of [...this.pending.keys()]) this.settle(id, (p) => p.reject(new DomainError("INTERNAL", `the compute worker stopped (${reason}) during the call`)));
    for (const asked of this.memoryAsked.values()) asked.reject(new Error(`the compute worker stopped (${reason})`));
    this.memoryAsked.clear();
    this.opts.onDied(reason);
  }

  /** The worker's live tensors (its tf.memory()), once it is between two steps: for leak checks. */
  memory(): Promise<{ numTensors: number; numBytes: number }> {
    if (this.stopped !== undefined) return Promise.reject(new Error(`the compute worker stopped (${this.stopped})`));
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.memoryAsked.set(id, { resolve, reject });
      this.post({ t: "memory", id });
    });
  }

  /** Frees the worker's models (its module's dispose) and ends it; at most `graceMs` before it is terminated. */
  async dispose(graceMs = 30_000): Promise<void> {
    if (this.stopped === undefined) {
      const disposed = new Promise<void>((r) => (this.disposed = r));
      this.post({ t: "dispose" });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([disposed, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    this.stopped ??= "disposed";
    await this.worker.terminate();
  }
}

/**
 * The torch backend's kernel pins (@rlhf/torch-backend kernel-set.ts), applied here, before the
 * worker starts: a worker's process.env is a copy of its own, so a pin it set would not reach
 * OpenBLAS, which reads its core type from the process's environment when the worker loads the
 * addon (a service then computed with this CPU's own kernels, and its figures differed from
 * every other machine's). The worker finds the pins in its copy and reports them as before; a
 * bad RLHF_TORCH_KERNELS is left for the worker's backend to refuse.
 */
function pinKernels(): void {
  const raw = (process.env[KERNELS_ENV_VAR] ?? "").trim();
  const set = raw === "" ? "portable" : parseKernelSet(raw);
  if (set !== undefined) chooseKernels(set);
}

/** One of the worker's log lines, through the main thread's logger (its level, bindings and destination). */
function relayLog(log: Logger, line: string): void {
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(line) as Record<string, unknown>;
  } catch {
    log.info({ line }, "compute worker");
    return;
  }
  // The main thread's logger writes its own time, service, version, pid and host.
  const { level, msg, ...rest } = obj;
  for (const k of ["time", "service", "version", "pid", "hostname"]) delete rest[k];
  log[LEVELS[level as number] ?? "info"](rest, typeof msg === "string" ? msg : "");
}
