/**
 * The torch backend's tensor storage: a TensorFlow.js `KernelBackend` whose tensors are ATen
 * tensors held by the native addon, addressed by integer ids. Each tfjs data id maps to one native
 * id (plus tfjs' reference count); kernels (./kernels.ts) pass native ids to the addon and wrap the
 * id it returns with {@link TorchBackend.out}. Tensors of dtypes ATen does not hold for us
 * (`string`, `complex64`) stay in JS memory; a kernel given one says so.
 */
import * as tf from "@tensorflow/tfjs-core";
import { DTYPE_CODE, type TorchAddon } from "./addon";

const CODE_DTYPE: readonly tf.DataType[] = ["float32", "int32", "bool"];

interface Entry {
  /** Native id, or -1 when the values are kept in JS (string, complex64). */
  id: number;
  dtype: tf.DataType;
  refCount: number;
  values?: tf.BackendValues;
}

/** What {@link TorchBackend} was started with. */
export interface TorchBackendInfo {
  threads: number;
  device: string;
  openblasThreads: boolean;
  /** OpenBLAS' kernel family in use (`openblas_get_corename`: Haswell, SkylakeX, Cooperlake, Zen, ...); "" without OpenBLAS. */
  openblasCore: string;
  torchVersion: string;
}

/** The tfjs backend name this package registers. */
export const TORCH_BACKEND_NAME = "torch";

/** Capacity of the shared output-description buffer (dtype, rank and dims of outputs). */
const META_LENGTH = 4096;

export class TorchBackend extends tf.KernelBackend {
  /** Written by every native call that makes tensors: see native/addon.cc. */
  readonly meta = new Int32Array(META_LENGTH);
  readonly info: TorchBackendInfo;
  private readonly data: tf.DataStorage<Entry>;
  private host: tf.KernelBackend | undefined;

  constructor(
    readonly native: TorchAddon,
    options: { threads: number; device: string },
  ) {
    super();
    this.data = new tf.DataStorage<Entry>(this, tf.engine());
    this.info = native.init(this.meta, options.threads, options.device);
  }

  /** The native id of a kernel input; `op` names the kernel in the error for a JS-held dtype. */
  id(t: tf.TensorInfo, op: string): number {
    const e = this.data.get(t.dataId);
    if (e === undefined) throw new Error(`${op}: tensor data not found on the torch backend (disposed?)`);
    if (e.id < 0) throw new Error(`${op}: dtype ${e.dtype} is not supported by the torch backend's native kernels`);
    return e.id;
  }

  /** Wraps the output a native call just described in `meta` (see native/addon.cc). */
  out(id: number): tf.TensorInfo {
    const m = this.meta;
    const dtype = CODE_DTYPE[m[0]];
    const rank = m[1];
    const shape = new Array<number>(rank);
    for (let i = 0; i < rank; i++) shape[i] = m[2 + i];
    const dataId = {};
    this.data.set(dataId, { id, dtype, refCount: 1 });
    return { dataId, shape, dtype };
  }

  /** Wraps `n` outputs of a multi-output native call ([id, dtype, rank, dims...] each in `meta`). */
  outMany(n: number): tf.TensorInfo[] {
    const m = this.meta;
    const outs: tf.TensorInfo[] = [];
    let p = 0;
    for (let k = 0; k < n; k++) {
      const id = m[p];
      const dtype = CODE_DTYPE[m[p + 1]];
      const rank = m[p + 2];
      const shape = Array.from(m.subarray(p + 3, p + 3 + rank));
      p += 3 + rank;
      const dataId = {};
      this.data.set(dataId, { id, dtype, refCount: 1 });
      outs.push({ dataId, shape, dtype });
    }
    return outs;
  }

  private entryFor(values: tf.BackendValues | null, shape: number[], dtype: tf.DataType, refCount: number): Entry {
    if (dtype !== "float32" && dtype !== "int32" && dtype !== "bool") return { id: -1, dtype, refCount, values: values ?? [] };
    let v = values;
    const n = tf.util.sizeFromShape(shape);
    if (v == null) v = tf.util.getTypedArrayFromDType(dtype, n);
    else if (!(v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array)) {
      v = tf.util.toTypedArray(v as unknown as number[], dtype) as Float32Array | Int32Array | Uint8Array;
    }
    const id = this.native.write(v as Float32Array | Int32Array | Uint8Array, shape, DTYPE_CODE[dtype]);
    return { id, dtype, refCount };
  }

  override write(values: tf.BackendValues, shape: number[], dtype: tf.DataType): tf.DataId {
    const dataId = {};
    this.data.set(dataId, this.entryFor(values, shape, dtype, 1));
    return dataId;
  }

  /** A new tensor from host values (for kernels computed on the host, e.g. Range). */
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.BackendValues): tf.TensorInfo {
    return { dataId: this.write(values ?? (null as unknown as tf.BackendValues), shape, dtype), shape, dtype };
  }

  override move(dataId: tf.DataId, values: tf.BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
    this.data.set(dataId, this.entryFor(values, shape, dtype, refCount));
  }

  override readSync(dataId: tf.DataId): tf.BackendValues {
    const e = this.data.get(dataId);
    if (e.id < 0) return e.values as tf.BackendValues;
    return this.native.read(e.id);
  }

  override async read(dataId: tf.DataId): Promise<tf.BackendValues> {
    return this.readSync(dataId);
  }

  override refCount(dataId: tf.DataId): number {
    return this.data.has(dataId) ? this.data.get(dataId).refCount : 0;
  }

  override incRef(dataId: tf.DataId): void {
    this.data.get(dataId).refCount++;
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    if (!this.data.has(dataId)) return true;
    const e = this.data.get(dataId);
    e.refCount--;
    if (!force && e.refCount > 0) return false;
    if (e.id >= 0) this.native.free(e.id);
    this.data.delete(dataId);
    return true;
  }

  override numDataIds(): number {
    return this.data.numDataIds();
  }

  override memory(): { unreliable: boolean; nativeTensors: number } {
    // Native memory is freed when a tensor is disposed (no garbage collector in between).
    return { unreliable: false, nativeTensors: this.native.stats().tensors };
  }

  override async time(f: () => void): Promise<tf.BackendTimingInfo> {
    const start = tf.util.now();
    f();
    return { kernelMs: tf.util.now() - start };
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override dispose(): void {
    // Tensors are freed one by one through disposeData; nothing process-wide to release.
  }

  /** A private cpu backend for kernels this backend runs on the host (./fallback.ts). */
  hostBackend(make: () => tf.KernelBackend): tf.KernelBackend {
    this.host ??= make();
    return this.host;
  }
}
