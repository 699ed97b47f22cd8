/**
 * Chunked streaming of a named tensor set (weights or gradients) over any gRPC stream.
 *
 * Wire protocol (rlhf.common.v1.TensorSetChunk): one header declaring every tensor (name, dtype,
 * shape, byte length) and the total, then data pieces in header order (each tensor's bytes
 * contiguous, offsets checked), then a trailer with the SHA-256 of all data bytes.
 *
 * The receiver buffers everything and hands back a tensor set only after the digest matched:
 * a digest mismatch or a stream that ends early is DATA_LOSS; a piece past its declared size,
 * out of order, or for an unknown tensor, and a bad header, are INVALID_ARGUMENT. Nothing is
 * applied half-way because nothing is returned until the whole set is verified.
 */
import { createHash, type Hash } from "node:crypto";
import { common } from "@rlhf/proto";
import { DataLossError, InvalidArgumentError, ResourceExhaustedError } from "@rlhf/errors";
import type { HostTensor, NamedHostTensors } from "@rlhf/compute";
import type { Send, ClientStreamCall } from "@rlhf/grpc-kit";
import { hostToBytes, bytesToHost, elementSize } from "./convert";

/** Default payload per data piece: 1 MiB, well inside the 4 MiB message limit. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;
/** Default largest set a receiver accepts: 8 GiB. */
export const DEFAULT_MAX_TOTAL_BYTES = 8 * 1024 ** 3;
const MAX_TENSORS = 100_000;
const MAX_RANK = 8;

/** What a streamed set is. */
export interface TensorSetMeta {
  kind: common.TensorSetKind;
  /** The weights these tensors are, or were computed for. */
  weights?: common.WeightsRef;
  /** Architecture, for kind WEIGHTS. */
  modelConfig?: common.ModelConfig;
}

/** Options of the sending side. */
export interface SendOptions {
  /** "float16" halves the bytes of float32 tensors (int32 stays int32). Default "float32". */
  wireDtype?: "float32" | "float16";
  /** Bytes per data piece. Default 1 MiB. */
  chunkBytes?: number;
}

/** A verified, complete tensor set. */
export interface ReceivedTensorSet extends TensorSetMeta {
  tensors: NamedHostTensors;
  /** Data bytes received (wire size). */
  bytes: number;
}

function wireDtypeOf(t: HostTensor, wire: "float32" | "float16"): common.Dtype {
  if (t.dtype === "int32") return common.Dtype.DTYPE_INT32;
  return wire === "float16" ? common.Dtype.DTYPE_FLOAT16 : common.Dtype.DTYPE_FLOAT32;
}

/**
 * Encodes a tensor set as chunk messages, lazily: one tensor's wire bytes exist at a time
 * (zero-copy views for float32 on little-endian hosts).
 */
export function* encodeTensorSet(tensors: NamedHostTensors, meta: TensorSetMeta, opts: SendOptions = {}): Generator<common.TensorSetChunk> {
  const wire = opts.wireDtype ?? "float32";
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!(chunkBytes >= 1 && chunkBytes <= 4 * 1024 * 1024 - 1024)) throw new InvalidArgumentError("chunkBytes", `must be in [1, 4 MiB - 1 KiB], got ${chunkBytes}`);
  const specs: common.TensorSpec[] = [];
  let total = 0;
  for (const [name, t] of tensors) {
    const dtype = wireDtypeOf(t, wire);
    const byteLength = t.data.length * elementSize(dtype);
    specs.push({ name, dtype, shape: t.shape, byteLength });
    total += byteLength;
  }
  yield {
    part: {
      $case: "header",
      header: { kind: meta.kind, weights: meta.weights, modelConfig: meta.modelConfig, tensors: specs, totalBytes: total, digestAlgorithm: common.DigestAlgorithm.DIGEST_ALGORITHM_SHA256 },
    },
  };
  const hash = createHash("sha256");
  let index = 0;
  for (const t of tensors.values()) {
    const bytes = hostToBytes(t, wire);
    for (let off = 0; off < bytes.length; off += chunkBytes) {
      const piece = bytes.subarray(off, Math.min(off + chunkBytes, bytes.length));
      hash.update(piece);
      yield { part: { $case: "data", data: { tensorIndex: index, offset: off, data: piece } } };
    }
    index++;
  }
  yield { part: { $case: "trailer", trailer: { digest: hash.digest() } } };
}

interface Slot {
  spec: common.TensorSpec;
  buf?: Uint8Array;
  received: number;
}

/**
 * The bytes that every tensor set being received in this process may hold together. A receiver
 * reserves its set's total_bytes when the header arrives and gives them back when it finishes or
 * is abandoned, so that several large uploads at once are refused (RESOURCE_EXHAUSTED, retry
 * later) instead of growing the process without bound. Unlimited until a service sets it: the
 * model services set it to their MAX_UPLOAD_BYTES at start (@rlhf/model-service).
 */
export class ReceiveBudget {
  private held = 0;

  constructor(private max = Number.POSITIVE_INFINITY) {}

  /** The limit, bytes. */
  get limit(): number {
    return this.max;
  }

  /** Bytes reserved now. */
  get inUse(): number {
    return this.held;
  }

  /** Sets the limit (reservations already held stay). */
  setLimit(bytes: number): void {
    if (!(bytes > 0)) throw new RangeError(`receive budget must be > 0 bytes, got ${bytes}`);
    this.max = bytes;
  }

  /** Reserves `bytes` or throws RESOURCE_EXHAUSTED naming `field`; the returned function gives them back (once). */
  reserve(bytes: number, field: string): () => void {
    if (this.held + bytes > this.max) {
      throw new ResourceExhaustedError(`${field}: ${bytes} bytes would take the uploads in progress past their shared limit of ${this.max} bytes (${this.held} held now); retry when they finish`);
    }
    this.held += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= bytes;
    };
  }
}

/** The process's {@link ReceiveBudget}, shared by every {@link TensorSetReceiver}. */
export const receiveBudget = new ReceiveBudget();

/** Options of the receiving side. */
export interface ReceiveOptions {
  /** Largest total accepted, bytes. Default 8 GiB. */
  maxTotalBytes?: number;
  /** Kind the caller expects (e.g. WEIGHTS for an upload). Default: any. */
  expectKind?: common.TensorSetKind;
  /** Field path used in error messages. Default "chunk". */
  field?: string;
}

/**
 * Incremental receiver: `push` each chunk in arrival order, then `finish` after the stream
 * ended. Validates as it goes and returns the set only when complete and verified.
 */
export class TensorSetReceiver {
  private header?: common.TensorSetHeader;
  private slots: Slot[] = [];
  private current = 0;
  private received = 0;
  private hash: Hash = createHash("sha256");
  private digest?: Buffer;
  private n = 0;
  private readonly field: string;
  private release?: () => void;

  constructor(private readonly opts: ReceiveOptions = {}) {
    this.field = opts.field ?? "chunk";
  }

  /** Bytes of data received so far. */
  get bytesReceived(): number {
    return this.received;
  }

  push(chunk: common.TensorSetChunk | undefined): void {
    const at = `${this.field}[${this.n++}]`;
    const part = chunk?.part;
    if (!part) throw new InvalidArgumentError(at, "empty chunk: expected a header, data or trailer");
    if (this.digest) throw new InvalidArgumentError(at, "message after the trailer");
    switch (part.$case) {
      case "header":
        if (this.header) throw new InvalidArgumentError(at, "second header");
        this.acceptHeader(part.header, `${at}.header`);
        return;
      case "data":
        if (!this.header) throw new InvalidArgumentError(at, "data before the header");
        this.acceptData(part.data, `${at}.data`);
        return;
      case "trailer":
        if (!this.header) throw new InvalidArgumentError(at, "trailer before the header");
        this.digest = Buffer.from(part.trailer.digest);
        return;
    }
  }

  private acceptHeader(h: common.TensorSetHeader, at: string): void {
    if (h.kind === common.TensorSetKind.TENSOR_SET_KIND_UNSPECIFIED || common.TensorSetKind[h.kind] === undefined) {
      throw new InvalidArgumentError(`${at}.kind`, "must be WEIGHTS or GRADIENTS");
    }
    if (this.opts.expectKind !== undefined && h.kind !== this.opts.expectKind) {
      throw new InvalidArgumentError(`${at}.kind`, `expected ${common.tensorSetKindToJSON(this.opts.expectKind)}, got ${common.tensorSetKindToJSON(h.kind)}`);
    }
    if (h.digestAlgorithm !== common.DigestAlgorithm.DIGEST_ALGORITHM_SHA256) {
      throw new InvalidArgumentError(`${at}.digest_algorithm`, "must be DIGEST_ALGORITHM_SHA256");
    }
    if (h.tensors.length > MAX_TENSORS) throw new InvalidArgumentError(`${at}.tensors`, `at most ${MAX_TENSORS} tensors, got ${h.tensors.length}`);
    const names = new Set<string>();
    let total = 0;
    h.tensors.forEach((s, i) => {
      const f = `${at}.tensors[${i}]`;
      if (!s.name || Buffer.byteLength(s.name) > 256) throw new InvalidArgumentError(`${f}.name`, "must be 1..256 bytes");
      if (names.has(s.name)) throw new InvalidArgumentError(`${f}.name`, `duplicate tensor name "${s.name}"`);
      names.add(s.name);
      const size = elementSizeOrThrow(s.dtype, `${f}.dtype`);
      if (s.shape.length > MAX_RANK) throw new InvalidArgumentError(`${f}.shape`, `rank ${s.shape.length} exceeds ${MAX_RANK}`);
      const expected = s.shape.reduce((a, d) => a * d, 1) * size;
      if (s.byteLength !== expected) {
        throw new InvalidArgumentError(`${f}.byte_length`, `is ${s.byteLength} but shape [${s.shape.join(", ")}] of ${common.dtypeToJSON(s.dtype)} needs ${expected}`);
      }
      total += expected;
      this.slots.push({ spec: s, received: 0 });
    });
    if (h.totalBytes !== total) throw new InvalidArgumentError(`${at}.total_bytes`, `is ${h.totalBytes} but the tensors add up to ${total}`);
    const max = this.opts.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES;
    if (total > max) throw new InvalidArgumentError(`${at}.total_bytes`, `${total} exceeds the limit of ${max} bytes`);
    this.release = receiveBudget.reserve(total, `${at}.total_bytes`);
    this.header = h;
  }

  private acceptData(d: common.TensorSetData, at: string): void {
    const i = d.tensorIndex;
    if (i >= this.slots.length) throw new InvalidArgumentError(`${at}.tensor_index`, `${i} is not a declared tensor (${this.slots.length} declared)`);
    if (i < this.current) throw new InvalidArgumentError(`${at}.tensor_index`, `${i} goes back to an earlier tensor (now at ${this.current})`);
    // Moving on: every tensor before i must be complete.
    for (let j = this.current; j < i; j++) {
      const s = this.slots[j];
      if (s.received !== s.spec.byteLength) {
        throw new InvalidArgumentError(`${at}.tensor_index`, `moved to tensor ${i} but "${s.spec.name}" has ${s.received} of ${s.spec.byteLength} bytes`);
      }
    }
    this.current = i;
    const slot = this.slots[i];
    if (d.data.length === 0) throw new InvalidArgumentError(`${at}.data`, "empty data piece");
    if (d.offset !== slot.received) {
      throw new InvalidArgumentError(`${at}.offset`, `is ${d.offset} but ${slot.received} bytes of "${slot.spec.name}" were received (gap or overlap)`);
    }
    if (d.offset + d.data.length > slot.spec.byteLength) {
      throw new InvalidArgumentError(
        `${at}.data`,
        `chunk past the declared size of "${slot.spec.name}": bytes ${d.offset}..${d.offset + d.data.length} of ${slot.spec.byteLength}`,
      );
    }
    // A fresh ArrayBuffer per tensor keeps typed-array views aligned.
    slot.buf ??= new Uint8Array(new ArrayBuffer(slot.spec.byteLength));
    slot.buf.set(d.data, d.offset);
    slot.received += d.data.length;
    this.received += d.data.length;
    this.hash.update(d.data);
  }

  /**
   * Gives the set's bytes back to the process's {@link receiveBudget} (idempotent). {@link finish}
   * does it; call it yourself when the stream is abandoned before that (an error, a cancel).
   */
  abandon(): void {
    this.release?.();
  }

  /** Verifies completeness and digest; returns the decoded set. Gives the budget back, also when it throws. */
  finish(): ReceivedTensorSet {
    try {
      return this.complete();
    } finally {
      this.abandon();
    }
  }

  private complete(): ReceivedTensorSet {
    if (!this.header) throw new DataLossError(`${this.field}: stream ended before its header`);
    const total = this.header.totalBytes;
    if (!this.digest) throw new DataLossError(`${this.field}: stream ended before its trailer (received ${this.received} of ${total} bytes)`);
    const incomplete = this.slots.find((s) => s.received !== s.spec.byteLength);
    if (incomplete) {
      throw new DataLossError(`${this.field}: stream ended early: "${incomplete.spec.name}" has ${incomplete.received} of ${incomplete.spec.byteLength} bytes (${this.received} of ${total} in all)`);
    }
    const actual = this.hash.digest();
    if (!actual.equals(this.digest)) {
      throw new DataLossError(`${this.field}: digest mismatch: trailer says ${this.digest.toString("hex").slice(0, 16)}…, data hashes to ${actual.toString("hex").slice(0, 16)}…`);
    }
    const tensors: NamedHostTensors = new Map();
    this.slots.forEach((s, i) => {
      tensors.set(s.spec.name, bytesToHost(s.buf ?? new Uint8Array(0), s.spec.dtype, s.spec.shape, `${this.field}.tensors[${i}] "${s.spec.name}"`));
    });
    return { kind: this.header.kind, weights: this.header.weights, modelConfig: this.header.modelConfig, tensors, bytes: this.received };
  }
}

function elementSizeOrThrow(dtype: common.Dtype, field: string): number {
  if (dtype === common.Dtype.DTYPE_FLOAT32 || dtype === common.Dtype.DTYPE_INT32 || dtype === common.Dtype.DTYPE_FLOAT16) return elementSize(dtype);
  throw new InvalidArgumentError(field, `unsupported dtype ${dtype}: must be FLOAT32, INT32 or FLOAT16`);
}

/**
 * Receives a whole tensor set from a stream of messages. `unwrap` picks the chunk out of each
 * message (e.g. `(m) => m.chunk`). Throws a DomainError (see the module comment) on any defect.
 */
export async function receiveTensorSet<M>(
  source: AsyncIterable<M>,
  unwrap: (msg: M) => common.TensorSetChunk | undefined,
  opts: ReceiveOptions = {},
): Promise<ReceivedTensorSet> {
  const r = new TensorSetReceiver(opts);
  try {
    for await (const msg of source) r.push(unwrap(msg));
    return r.finish();
  } finally {
    r.abandon();
  }
}

/** Sends a tensor set down a server stream (the kit's back-pressure-aware `send`). */
export async function sendTensorSet<M>(
  send: Send<M>,
  wrap: (chunk: common.TensorSetChunk) => M,
  tensors: NamedHostTensors,
  meta: TensorSetMeta,
  opts: SendOptions = {},
): Promise<number> {
  let bytes = 0;
  for (const chunk of encodeTensorSet(tensors, meta, opts)) {
    if (chunk.part?.$case === "data") bytes += chunk.part.data.data.length;
    await send(wrap(chunk));
  }
  return bytes;
}

/** Writes a tensor set into a client stream and returns the server's response. */
export async function uploadTensorSet<M, R>(
  call: ClientStreamCall<M, R>,
  wrap: (chunk: common.TensorSetChunk) => M,
  tensors: NamedHostTensors,
  meta: TensorSetMeta,
  opts: SendOptions = {},
): Promise<R> {
  try {
    for (const chunk of encodeTensorSet(tensors, meta, opts)) await call.write(wrap(chunk));
  } catch (err) {
    // The server may have refused mid-stream: its status is the useful error.
    call.cancel();
    throw err;
  }
  return call.end();
}
