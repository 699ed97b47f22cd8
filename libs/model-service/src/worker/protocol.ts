/**
 * The messages between a model service's main thread (gRPC, health, leases) and its compute
 * worker (the models and the handlers that use them), and the errors that cross between them.
 */
import { Metadata, type ServiceError } from "@grpc/grpc-js";
import { DomainError, type ErrorCode } from "@rlhf/errors";
import { isServiceError, type HandlerKind } from "@rlhf/grpc-kit";
import type { Attributes } from "@opentelemetry/api";
import type { TimedClientCall } from "@rlhf/telemetry";

/** An error as it crosses threads: a DomainError keeps its code, a downstream call's error its status. */
export type WireError = { kind: "domain"; code: ErrorCode; message: string } | { kind: "status"; code: number; details: string } | { kind: "internal"; message: string; stack?: string };

export function toWire(err: unknown): WireError {
  if (err instanceof DomainError) return { kind: "domain", code: err.code, message: err.message };
  if (isServiceError(err)) return { kind: "status", code: err.code, details: err.details || err.message };
  const e = err instanceof Error ? err : new Error(String(err));
  return { kind: "internal", message: e.message, stack: e.stack };
}

/** The error {@link toWire} described, as toStatusError (@rlhf/grpc-kit) maps it. */
export function fromWire(w: WireError): Error {
  if (w.kind === "domain") return new DomainError(w.code, w.message);
  if (w.kind === "status") return Object.assign(new Error(w.details), { code: w.code, details: w.details, metadata: new Metadata() }) as ServiceError;
  return Object.assign(new Error(w.message), { stack: w.stack });
}

/** Metadata as it crosses threads (Metadata.toJSON). */
export type WireMetadata = Record<string, (string | Uint8Array)[]>;

export function metadataFromWire(w: WireMetadata): Metadata {
  const md = new Metadata();
  for (const [k, values] of Object.entries(w)) for (const v of values) md.add(k, typeof v === "string" ? v : Buffer.from(v));
  return md;
}

/** A metric operation of the worker, applied to the main thread's instrument of that name. */
export interface WireInstrument {
  meter: string;
  name: string;
  kind: "counter" | "upDownCounter" | "histogram" | "gauge" | "observableGauge" | "observableCounter" | "observableUpDownCounter";
  options?: { unit?: string; description?: string };
}

/** Main thread to worker. */
export type ToWorker =
  /** `trace`: the call's context as W3C headers (traceparent, baggage), for what the worker calls in turn. */
  | { t: "call"; id: number; method: string; path: string; req?: unknown; metadata: WireMetadata; traceId?: string; trace: Record<string, string> }
  /** The next request message of a streaming call, its end (the client half-closed, and the request is complete), or its failure. */
  | { t: "req"; id: number; msg: unknown }
  | { t: "end"; id: number }
  | { t: "reqError"; id: number; err: WireError }
  /** The client cancelled (or its deadline passed). */
  | { t: "cancel"; id: number }
  /** A response message was handed to gRPC (its stream drained): the worker may send the next. */
  | { t: "ack"; id: number }
  /** Asks for the worker's live tensors (tf.memory()). */
  | { t: "memory"; id: number }
  | { t: "dispose" };

/** Worker to main thread. */
export type FromWorker =
  | { t: "ready"; backend: string; backendDetail: string; methods: Record<string, HandlerKind> }
  | { t: "startFailed"; err: WireError }
  | { t: "pull"; id: number }
  | { t: "msg"; id: number; msg: unknown }
  | { t: "done"; id: number; res?: unknown }
  | { t: "fail"; id: number; err: WireError }
  | { t: "log"; line: string }
  | { t: "metric"; instrument: WireInstrument; value: number; attrs?: Attributes }
  | { t: "observed"; points: { instrument: WireInstrument; value: number; attrs?: Attributes }[] }
  | { t: "annotate"; id: number; attrs: Attributes }
  /** A call the worker made (e.g. a weights pull) has ended: its client span, for the main thread to record. */
  | { t: "clientSpan"; call: TimedClientCall }
  | { t: "serving"; on: boolean }
  | { t: "stuck"; what?: string }
  | { t: "notice"; notice: unknown }
  | { t: "memory"; id: number; numTensors: number; numBytes: number }
  /** The latest answer of a snapshot method (e.g. GetInfo) to an empty request. */
  | { t: "snapshot"; method: string; res?: unknown; err?: WireError }
  | { t: "disposed" };
