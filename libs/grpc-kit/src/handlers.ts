import {
  status,
  type Metadata,
  type ServerUnaryCall,
  type ServerReadableStream,
  type ServerWritableStream,
  type ServerDuplexStream,
  type sendUnaryData,
  type handleUnaryCall,
  type handleClientStreamingCall,
  type handleServerStreamingCall,
  type handleBidiStreamingCall,
} from "@grpc/grpc-js";
import { trace } from "@opentelemetry/api";
import { DomainError } from "@rlhf/errors";
import type { Logger } from "pino";
import { toStatusError, statusName } from "./errors";
import { DecodeFailure } from "./decode";
import { recordRpc } from "./metrics";

/** What a handler gets besides its request: a per-call logger, metadata and cancellation. */
export interface CallContext {
  /** Full method path, e.g. `/rlhf.reference_model.v1.ReferenceModelService/LogProbs`. */
  method: string;
  /** Child logger with `{method, traceId}`. */
  log: Logger;
  /** Request metadata (trace context is already extracted by the instrumentation). */
  metadata: Metadata;
  /** Aborted when the client cancels or its deadline passes. */
  signal: AbortSignal;
}

/** What every kind of server call has in common. */
interface AnyCall {
  getPath(): string;
  metadata: Metadata;
  on(event: "cancelled", listener: () => void): unknown;
}

function makeContext(call: AnyCall, log: Logger): { ctx: CallContext; done: (code: number, extra?: object) => void } {
  const method = call.getPath();
  const traceId = trace.getActiveSpan()?.spanContext().traceId;
  const child = log.child(traceId ? { method, traceId } : { method });
  const ac = new AbortController();
  call.on("cancelled", () => ac.abort(new DomainError("CANCELLED", "call cancelled by the client")));
  const started = process.hrtime.bigint();
  const done = (code: number, extra?: object) => {
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    // rpc.server.duration by service, method and status: measured here, once for every service.
    recordRpc(method, code, durationMs);
    const fields = { code: statusName(code), durationMs: Math.round(durationMs * 100) / 100, ...extra };
    if (code === status.OK) child.info(fields, "rpc ok");
    else if (code === status.INTERNAL || code === status.UNKNOWN || code === status.DATA_LOSS) child.error(fields, "rpc failed");
    else child.warn(fields, "rpc failed");
  };
  return { ctx: { method, log: child, metadata: call.metadata, signal: ac.signal }, done };
}

/** The four shapes of gRPC handlers, as the wrappers below take them. */
export type HandlerKind = "unary" | "serverStream" | "clientStream" | "bidiStream";

/** A wrapped handler's kind and the function it wraps (see {@link handlerOf}). */
export interface HandlerSpec {
  kind: HandlerKind;
  // The function given to unary / serverStream / clientStream / bidiStream.
  fn: (...args: never[]) => Promise<unknown>;
}

const SPEC = Symbol("rlhf.handler");

function tagged<H extends object>(handler: H, kind: HandlerKind, fn: HandlerSpec["fn"]): H {
  return Object.assign(handler, { [SPEC]: { kind, fn } });
}

/**
 * What a handler made by {@link unary}, {@link serverStream}, {@link clientStream} or
 * {@link bidiStream} wraps, or undefined for any other function: lets a service's handlers run
 * elsewhere (the model services' compute worker, @rlhf/model-service) behind the same wrappers.
 */
export function handlerOf(handler: unknown): HandlerSpec | undefined {
  return typeof handler === "function" ? (handler as { [SPEC]?: HandlerSpec })[SPEC] : undefined;
}

/** Answers a unary-response call from the handler's promise, mapping errors in one place. */
function respond<Res>(p: Promise<Res>, callback: sendUnaryData<Res>, ctx: CallContext, done: (code: number, extra?: object) => void): void {
  p.then(
    (res) => {
      done(status.OK);
      callback(null, res);
    },
    (err: unknown) => {
      const se = toStatusError(err, ctx.log);
      done(se.code, { details: se.details });
      callback(se, null);
    },
  );
}

/** Wraps an async unary handler: errors map to statuses in one place, every call is logged. */
export function unary<Req, Res>(log: Logger, fn: (req: Req, ctx: CallContext) => Promise<Res>): handleUnaryCall<Req, Res> {
  const handler = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const { ctx, done } = makeContext(call as AnyCall, log);
    const req: unknown = call.request;
    respond(req instanceof DecodeFailure ? Promise.reject(req.toError()) : fn(call.request, ctx), callback, ctx, done);
  };
  return tagged(handler, "unary", fn);
}

/** A request stream that can tell a half-close from a cancellation. */
interface RequestStream<Req> {
  cancelled: boolean;
  iterator(opts: { destroyOnReturn: boolean }): AsyncIterableIterator<Req>;
}

/**
 * The requests of a client-streaming or bidirectional call, all or nothing: grpc-js ends the
 * request side the same way whether the client half-closed or cancelled (or its deadline passed),
 * so a plain `for await` would hand a handler a truncated request as if it were complete, and a
 * handler that applies what it read (an update, an upload) would apply it for a caller that gave
 * up. Here the loop throws CANCELLED instead, before and after the last message. The call is not
 * destroyed when the loop ends (that would also end the response side of a duplex call).
 */
async function* completeRequests<Req>(call: RequestStream<Req>, signal: AbortSignal): AsyncGenerator<Req> {
  const gaveUp = () => new DomainError("CANCELLED", "the client cancelled the call (or its deadline passed) before it half-closed: the request was not applied");
  let i = 0;
  try {
    for await (const req of call.iterator({ destroyOnReturn: false })) {
      if (signal.aborted || call.cancelled) throw gaveUp();
      if (req instanceof DecodeFailure) throw req.toError(`requests[${i}]`);
      i++;
      yield req;
    }
  } catch (e) {
    // A cancelled call's stream is destroyed: its iterator may throw ERR_STREAM_PREMATURE_CLOSE.
    if (signal.aborted || call.cancelled || (e as { code?: unknown }).code === "ERR_STREAM_PREMATURE_CLOSE") throw gaveUp();
    throw e;
  }
  // A client's RST_STREAM ends the request side first and reports the cancellation a couple of
  // event-loop turns later (measured: two setImmediate turns on Node 20): look for it for a few
  // turns and one timer tick (about a millisecond) before calling the request complete.
  for (let turn = 0; turn < 6; turn++) {
    if (signal.aborted || call.cancelled) throw gaveUp();
    await new Promise<void>((r) => (turn < 5 ? setImmediate(r) : setTimeout(r, 1)));
  }
  if (signal.aborted || call.cancelled) throw gaveUp();
}

/**
 * Wraps a client-streaming handler; `requests` is consumed with `for await` (back-pressure) and
 * ends normally only when the client half-closed (see {@link completeRequests}).
 */
export function clientStream<Req, Res>(
  log: Logger,
  fn: (requests: AsyncIterable<Req>, ctx: CallContext) => Promise<Res>,
): handleClientStreamingCall<Req, Res> {
  const handler = (call: ServerReadableStream<Req, Res>, callback: sendUnaryData<Res>) => {
    const { ctx, done } = makeContext(call as AnyCall, log);
    respond(fn(completeRequests(call as unknown as RequestStream<Req>, ctx.signal), ctx), callback, ctx, done);
  };
  return tagged(handler, "clientStream", fn);
}

/** Computation since the last waiting yield after which {@link yieldToEventLoop} waits. */
export const YIELD_WAIT_AFTER_MS = 250;
/** How long such a yield waits for I/O (a few round trips between processes). */
export const YIELD_WAIT_MS = 10;
let lastWait = performance.now();

/**
 * Lets the event loop serve other calls between two pieces of synchronous work (optimizer steps
 * on a synchronous backend): health checks, cancellations, GetInfo. One turn of the loop is not
 * enough for a call on a new connection (a Kubernetes probe, `grpc_health_probe`): accepting it,
 * the HTTP/2 handshake and the request each need the loop again, and the client's answers arrive
 * a little later, so with one turn per step such a check waited about three steps (measured:
 * `pnpm bench:yield`). After YIELD_WAIT_AFTER_MS of computation the yield therefore waits
 * YIELD_WAIT_MS in the poll phase (at most 4% of the time spent computing); otherwise it is one
 * turn. A check is then answered after the step it arrived in.
 */
export async function yieldToEventLoop(): Promise<void> {
  if (performance.now() - lastWait < YIELD_WAIT_AFTER_MS) return new Promise<void>((resolve) => setImmediate(resolve));
  await new Promise<void>((resolve) => setTimeout(resolve, YIELD_WAIT_MS));
  lastWait = performance.now();
}

/**
 * Sends one message, waiting for the stream to drain when its buffer is full. It resolves after
 * {@link yieldToEventLoop}: a handler that computes between its messages without awaiting I/O
 * (a training loop on a synchronous backend) would otherwise keep every message in memory until
 * it ends and send them in one burst, and no other call (health checks included) would be served
 * meanwhile.
 */
export type Send<Res> = (msg: Res) => Promise<void>;

function makeSend<Res>(call: ServerWritableStream<unknown, Res> | ServerDuplexStream<unknown, Res>, signal: AbortSignal): Send<Res> {
  return (msg: Res) =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      if (call.write(msg)) return void yieldToEventLoop().then(resolve);
      const onDrain = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        call.removeListener("drain", onDrain);
        reject(signal.reason);
      };
      call.once("drain", onDrain);
      signal.addEventListener("abort", onAbort, { once: true });
    });
}

function finishStream(
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
  p: Promise<void>,
  ctx: CallContext,
  done: (code: number, extra?: object) => void,
): void {
  p.then(
    () => {
      done(status.OK);
      call.end();
    },
    (err: unknown) => {
      const se = toStatusError(err, ctx.log);
      done(se.code, { details: se.details });
      if (!ctx.signal.aborted) call.emit("error", se);
    },
  );
}

/** Wraps a server-streaming handler; `send` respects back-pressure. */
export function serverStream<Req, Res>(
  log: Logger,
  fn: (req: Req, send: Send<Res>, ctx: CallContext) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  const handler = (call: ServerWritableStream<Req, Res>) => {
    const { ctx, done } = makeContext(call as AnyCall, log);
    const send = makeSend(call, ctx.signal);
    const req: unknown = call.request;
    finishStream(call as ServerWritableStream<unknown, unknown>, req instanceof DecodeFailure ? Promise.reject(req.toError()) : fn(call.request, send, ctx), ctx, done);
  };
  return tagged(handler, "serverStream", fn);
}

/**
 * Wraps a bidirectional-streaming handler; reading every request leaves the response side open,
 * and the requests end normally only when the client half-closed (see {@link completeRequests}).
 */
export function bidiStream<Req, Res>(
  log: Logger,
  fn: (requests: AsyncIterable<Req>, send: Send<Res>, ctx: CallContext) => Promise<void>,
): handleBidiStreamingCall<Req, Res> {
  const handler = (call: ServerDuplexStream<Req, Res>) => {
    const { ctx, done } = makeContext(call as AnyCall, log);
    const send = makeSend(call, ctx.signal);
    finishStream(call as ServerDuplexStream<unknown, unknown>, fn(completeRequests(call as unknown as RequestStream<Req>, ctx.signal), send, ctx), ctx, done);
  };
  return tagged(handler, "bidiStream", fn);
}
