/**
 * Conversions between the wire tensor (`rlhf.common.v1.Tensor`: dtype, shape, little-endian bytes),
 * host tensors (`HostTensor` from `@rlhf/compute`) and tfjs tensors, with the request validation
 * the contract promises: every problem is an `InvalidArgumentError` naming the request field.
 */
import { common } from "@rlhf/proto";
import { InvalidArgumentError } from "@rlhf/errors";
import type { HostDtype, HostTensor } from "@rlhf/compute";
import * as tf from "@tensorflow/tfjs-core";
import { firstNonFiniteHalf, float16ToFloat32, float32ToFloat16 } from "./fp16";

/** Dtypes a float tensor may travel as. Int32 tensors always travel as `DTYPE_INT32`. */
export type WireFloat = "float32" | "float16";

/** Most dimensions a wire tensor may have (the contract's limit). */
export const MAX_RANK = 8;

/** Limits applied when decoding a wire tensor. */
export interface DecodeLimits {
  /**
   * Largest decoded size in bytes (elements x 4: float16 counts as the float32 it becomes).
   * Default: no limit beyond the message itself.
   */
  maxBytes?: number;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Bytes per element of a wire dtype: 4 for FLOAT32 and INT32, 2 for FLOAT16.
 *
 * @throws InvalidArgumentError (field `dtype`) for DTYPE_UNSPECIFIED or an unknown value.
 */
export function elementSize(dtype: common.Dtype): number {
  switch (dtype) {
    case common.Dtype.DTYPE_FLOAT32:
    case common.Dtype.DTYPE_INT32:
      return 4;
    case common.Dtype.DTYPE_FLOAT16:
      return 2;
    default:
      throw new InvalidArgumentError("dtype", dtypeProblem(dtype));
  }
}

/** The wire dtype `t` travels as under `wireDtype` (int32 tensors always as INT32). */
export function wireDtypeOf(t: HostTensor, wireDtype: WireFloat = "float32"): common.Dtype {
  if (t.dtype === "int32") return common.Dtype.DTYPE_INT32;
  return wireDtype === "float16" ? common.Dtype.DTYPE_FLOAT16 : common.Dtype.DTYPE_FLOAT32;
}

/**
 * Little-endian wire bytes of `t` in the wire dtype {@link wireDtypeOf}(t, wireDtype).
 *
 * float32/int32 on a little-endian host: a Buffer over `t.data`'s memory (no copy), so do not
 * change `t.data` while the bytes are in use. float16: a new buffer, rounded to nearest even.
 *
 * @param wireDtype "float32" (default) or "float16"; ignored for int32 tensors.
 * @throws Error if `t` is inconsistent (data length vs shape, dtype vs array type) or, for
 *   float16, if a value is not finite or overflows float16 (|v| >= 65520): the receiver would
 *   reject it, so the sender fails first, naming the element.
 */
export function hostToBytes(t: HostTensor, wireDtype: WireFloat = "float32"): Buffer {
  checkHost(t);
  const wire = wireDtypeOf(t, wireDtype);
  if (wire === common.Dtype.DTYPE_FLOAT16) {
    const src = t.data as Float32Array;
    const halves = float32ToFloat16(src);
    const bad = firstNonFiniteHalf(halves);
    if (bad >= 0) {
      const v = src[bad];
      throw new Error(
        Number.isFinite(v)
          ? `element ${bad} = ${v} overflows float16 (largest finite 65504)`
          : `element ${bad} is ${v}; tensors on the wire must be finite`,
      );
    }
    if (LITTLE_ENDIAN) return Buffer.from(halves.buffer, halves.byteOffset, halves.byteLength);
    const out = Buffer.allocUnsafe(halves.length * 2);
    for (let i = 0; i < halves.length; i++) out.writeUInt16LE(halves[i], i * 2);
    return out;
  }
  if (LITTLE_ENDIAN) return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = Buffer.allocUnsafe(t.data.length * 4);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (t.data instanceof Float32Array) for (let i = 0; i < t.data.length; i++) view.setFloat32(i * 4, t.data[i], true);
  else for (let i = 0; i < t.data.length; i++) view.setInt32(i * 4, t.data[i], true);
  return out;
}

/**
 * Wire tensor of `t`.
 *
 * @param opts.wireDtype "float32" (default) or "float16" for float tensors; int32 stays INT32.
 * @throws as {@link hostToBytes}.
 */
export function hostToProto(t: HostTensor, opts: { wireDtype?: WireFloat } = {}): common.Tensor {
  const data = hostToBytes(t, opts.wireDtype);
  return { dtype: wireDtypeOf(t, opts.wireDtype), shape: [...t.shape], data };
}

/**
 * Host tensor of a wire tensor, validated.
 *
 * @param field the request path of `p`, e.g. `"tensors[3]"`; errors name `${field}.dtype`,
 *   `${field}.shape` or `${field}.data`.
 * @param limits optional size limit.
 * @throws InvalidArgumentError as {@link bytesToHost}.
 */
export function protoToHost(p: common.Tensor, field: string, limits?: DecodeLimits): HostTensor {
  return bytesToHost(p.data ?? new Uint8Array(0), p.dtype, p.shape ?? [], field, limits);
}

/**
 * Host tensor of raw little-endian wire bytes, validated. float16 is decoded to float32.
 *
 * The result shares memory with `bytes` (no copy) when the wire dtype is 4 bytes wide, the bytes
 * are 4-byte aligned and the host is little-endian; otherwise it is a copy.
 *
 * @param field request path used in error messages, e.g. `"tensors[3]"`.
 * @throws InvalidArgumentError naming the field when: the dtype is unspecified or unknown; the
 *   rank exceeds {@link MAX_RANK}; a dimension is not a non-negative integer; the decoded size
 *   exceeds `limits.maxBytes`; the byte length is not elements x element size (both numbers are
 *   given); a float is NaN or infinite (the index of the first is given).
 */
export function bytesToHost(bytes: Uint8Array, dtype: common.Dtype, shape: readonly number[], field: string, limits: DecodeLimits = {}): HostTensor {
  const size = sizeOfDtype(dtype, field);
  if (shape.length > MAX_RANK) {
    throw new InvalidArgumentError(`${field}.shape`, `rank ${shape.length} exceeds the maximum of ${MAX_RANK} dimensions`);
  }
  let elements = 1n;
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d];
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new InvalidArgumentError(`${field}.shape[${d}]`, `dimension must be a non-negative integer, got ${n}`);
    }
    elements *= BigInt(n);
  }
  const hostBytes = elements * 4n;
  if (limits.maxBytes !== undefined && hostBytes > BigInt(limits.maxBytes)) {
    throw new InvalidArgumentError(
      field,
      `shape [${shape.join(", ")}] decodes to ${hostBytes} bytes, over the limit of ${limits.maxBytes} bytes`,
    );
  }
  const wantBytes = elements * BigInt(size);
  if (BigInt(bytes.length) !== wantBytes) {
    throw new InvalidArgumentError(
      `${field}.data`,
      `has ${bytes.length} bytes, but shape [${shape.join(", ")}] of ${common.dtypeToJSON(dtype)} needs ${wantBytes} (${elements} elements x ${size} bytes)`,
    );
  }
  const n = Number(elements);
  const outShape = [...shape];

  if (dtype === common.Dtype.DTYPE_FLOAT16) {
    const halves = new Uint16Array(n);
    if (LITTLE_ENDIAN) new Uint8Array(halves.buffer).set(bytes);
    else for (let i = 0; i < n; i++) halves[i] = bytes[2 * i] | (bytes[2 * i + 1] << 8);
    const bad = firstNonFiniteHalf(halves);
    if (bad >= 0) throw nonFinite(field, bad, (halves[bad] & 0x3ff) !== 0);
    return { dtype: "float32", shape: outShape, data: float16ToFloat32(halves) };
  }

  const hostDtype: HostDtype = dtype === common.Dtype.DTYPE_INT32 ? "int32" : "float32";
  let data: Float32Array | Int32Array;
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
    data = hostDtype === "int32" ? new Int32Array(bytes.buffer, bytes.byteOffset, n) : new Float32Array(bytes.buffer, bytes.byteOffset, n);
  } else if (LITTLE_ENDIAN) {
    const copy = new Uint8Array(n * 4);
    copy.set(bytes);
    data = hostDtype === "int32" ? new Int32Array(copy.buffer) : new Float32Array(copy.buffer);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    data = hostDtype === "int32" ? new Int32Array(n) : new Float32Array(n);
    if (data instanceof Int32Array) for (let i = 0; i < n; i++) data[i] = view.getInt32(4 * i, true);
    else for (let i = 0; i < n; i++) data[i] = view.getFloat32(4 * i, true);
  }
  if (data instanceof Float32Array) {
    for (let i = 0; i < n; i++) {
      // v - v is 0 for finite v and NaN for NaN and +-Infinity: one comparison per element.
      const v = data[i];
      if (v - v !== 0) throw nonFinite(field, i, Number.isNaN(v));
    }
  }
  return { dtype: hostDtype, shape: outShape, data };
}

/**
 * tfjs tensor of a host tensor, on the active backend.
 *
 * On the cpu backend the tensor may share memory with `t.data` (tfjs keeps the typed array); do not
 * change `t.data` afterwards.
 *
 * @throws Error if `t` is inconsistent (data length vs shape, dtype vs array type).
 */
export function hostToTf(t: HostTensor): tf.Tensor {
  checkHost(t);
  return tf.tensor(t.data, [...t.shape], t.dtype);
}

/**
 * Host tensor of a float32 or int32 tfjs tensor (a copy, independent of `t`; `t` is not disposed).
 *
 * @throws Error for any other tfjs dtype (bool, complex64, string).
 */
export function tfToHost(t: tf.Tensor): HostTensor {
  if (t.dtype !== "float32" && t.dtype !== "int32") {
    throw new Error(`tfToHost: only float32 and int32 tensors convert to host tensors, got ${t.dtype}`);
  }
  const values = t.dataSync() as Float32Array | Int32Array;
  // The cpu backend hands out its own storage: copy so that the host tensor is independent.
  const data = tf.getBackend() === "cpu" ? values.slice() : values;
  return { dtype: t.dtype, shape: [...t.shape], data };
}

function sizeOfDtype(dtype: common.Dtype, field: string): number {
  try {
    return elementSize(dtype);
  } catch {
    throw new InvalidArgumentError(`${field}.dtype`, dtypeProblem(dtype));
  }
}

function dtypeProblem(dtype: common.Dtype): string {
  return dtype === common.Dtype.DTYPE_UNSPECIFIED
    ? "dtype is DTYPE_UNSPECIFIED; set DTYPE_FLOAT32, DTYPE_INT32 or DTYPE_FLOAT16"
    : `unknown dtype ${dtype}; expected DTYPE_FLOAT32, DTYPE_INT32 or DTYPE_FLOAT16`;
}

function nonFinite(field: string, index: number, isNaN: boolean): InvalidArgumentError {
  return new InvalidArgumentError(`${field}.data`, `element ${index} is ${isNaN ? "NaN" : "infinite"}; tensors must be finite`);
}

/** Throws unless `t`'s dtype, typed array and shape agree. */
function checkHost(t: HostTensor): void {
  const arrayOk = t.dtype === "float32" ? t.data instanceof Float32Array : t.dtype === "int32" ? t.data instanceof Int32Array : false;
  if (!arrayOk) throw new Error(`host tensor of dtype ${String(t.dtype)} holds a ${t.data?.constructor?.name}`);
  if (t.shape.length > MAX_RANK) throw new Error(`host tensor has rank ${t.shape.length}, over the wire limit of ${MAX_RANK}`);
  let n = 1;
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`host tensor shape [${t.shape.join(", ")}] has an invalid dimension`);
    n *= d;
  }
  if (n !== t.data.length) throw new Error(`host tensor shape [${t.shape.join(", ")}] needs ${n} elements, data has ${t.data.length}`);
}
