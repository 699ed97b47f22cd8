/**
 * Kernel fallbacks for TensorFlow.js backends that lack (or get wrong) kernels a GPT-2 style
 * decoder needs in its forward and backward passes.
 *
 * Found on `@tensorflow/tfjs-backend-wasm` 4.22.0 by `gradients.test.ts`, which runs the
 * gradients of every op a GPT-2 decoder, its LM loss, logprob picking and the RLHF losses use on
 * wasm and compares them with the cpu backend:
 *
 * - `UnsortedSegmentSum` — missing. The gradient of `GatherV2` (embedding lookup
 *   `tf.gather(wte, ids)`) scatters the output gradient back onto the table with it. Fixed by
 *   {@link unsortedSegmentSumKernel}: reads the inputs to host memory, sums rows in
 *   O(elements of x), and hands the result back with `backend.write`.
 * - `GatherV2` with `batchDims > 0` — present but wrong: the wasm C++ kernel reads out of bounds
 *   (garbage values, or "RuntimeError: memory access out of bounds" that kills the process), e.g.
 *   `tf.gather(logp [N, V], targets [N, 1], 1, 1)` to pick per-token logprobs. Fixed by
 *   {@link gatherV2Kernel}: `batchDims = 0` (embedding lookups) still runs the wasm kernel; other
 *   cases are gathered on the host.
 *
 * - `BatchMatMul` with `transposeA` or `transposeB` on plain matrices — correct but slow: wasm
 *   sends only untransposed single matrices to XNNPACK and runs the rest in a plain loop, ~2
 *   GFLOP/s against ~20 (measured on [2032, 64] x [256, 64]^T: 31.6 ms, against 3.5 ms for a
 *   Transpose and an untransposed matMul). Every weight gradient of a dense layer is such a
 *   product (`x^T dy`, `dy W^T`), so training spent most of its time there. Fixed by
 *   {@link batchMatMulKernel}: transposes the operand explicitly (the wasm Transpose kernel) and
 *   runs the native kernel untransposed. Batched products (attention's [B, H, T, D]) stay native:
 *   they never reach XNNPACK, and a Transpose first only adds time.
 *
 * Every other kernel those ops and their gradients dispatch exists on wasm and gives the cpu
 * backend's gradients: Add, AddN, BatchMatMul (batched: rank 3 and 4, incl. transposes), Cast, ClipByValue, Concat,
 * Exp, Fill, GatherNd, Greater, GreaterEqual, Identity, Less, LessEqual, Log, LogicalAnd, Max,
 * Maximum, Mean, Multiply, Neg, OneHot, Pack, PadV2, Pow, Range, RealDiv, Reshape, Rsqrt, ScatterNd,
 * Select, Sigmoid, Slice, Softmax, Softplus, SplitV, Sqrt, Square, Sub, Sum, Tanh, Tile, Transpose,
 * Unpack, ZerosLike. Also absent on wasm but not needed by the decoder (not registered here): Einsum,
 * FFT/IFFT and the complex kernels, Conv2DBackpropFilter, DepthwiseConv2dNative backprops, the
 * Ragged* kernels, StaticRegexReplace, Draw.
 *
 * Gradients (backend-independent, registered by `initBackend`): `GatherNd` has none in tfjs 4.22
 * ({@link gatherNdGradConfig}); `tf.logSigmoid`'s gradient is broken for intermediate inputs (use
 * {@link logSigmoid}); `StridedSlice` and `Einsum` have none either (use `tf.slice` and `tf.matMul`).
 *
 * The host kernels use only the generic `KernelBackend` storage API (`readSync`, `write`), so they
 * work on any backend. The stock cpu `UnsortedSegmentSum` is correct but costs
 * O(numSegments x elements) (one equal/multiply/sum pass per segment, i.e. per vocabulary entry);
 * `initBackend` installs the host kernel for cpu too.
 */
import * as tf from "@tensorflow/tfjs-core";
import { FUSED_GRADIENTS } from "./fused";

type HostArray = Float32Array | Int32Array | Uint8Array;

/** Names of the kernels {@link registerWasmFallbacks} installs for the wasm backend. */
export const WASM_FALLBACK_KERNELS: readonly string[] = [tf.UnsortedSegmentSum, tf.GatherV2, tf.BatchMatMul];

function readHost(b: tf.KernelBackend, t: tf.TensorInfo, op: string): HostArray {
  const v = b.readSync(t.dataId);
  if (v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array) return v;
  throw new Error(`${op}: unsupported dtype ${t.dtype}`);
}

function alloc(dtype: tf.DataType, n: number, op: string): HostArray {
  if (dtype === "float32") return new Float32Array(n);
  if (dtype === "int32") return new Int32Array(n);
  if (dtype === "bool") return new Uint8Array(n);
  throw new Error(`${op}: unsupported dtype ${dtype}`);
}

function input(inputs: tf.NamedTensorInfoMap, name: string, op: string): tf.TensorInfo {
  const t = inputs[name];
  if (t === undefined) throw new Error(`${op}: missing input ${name}`);
  return t;
}

/**
 * Host implementation of `UnsortedSegmentSum` for any backend.
 *
 * Semantics (TensorFlow's): `segmentIds` has a prefix of `x`'s shape (usually rank 1, length
 * `x.shape[0]`); the output has shape `[numSegments, ...x.shape.slice(segmentIds.rank)]` and the
 * dtype of `x` (float32 or int32); row `s` is the sum of the rows of `x` whose id is `s`. Ids
 * outside `[0, numSegments)` are dropped (TensorFlow drops negative ids; tfjs' cpu kernel drops
 * too-large ones as well), so an empty segment gives zeros.
 */
export const unsortedSegmentSumKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const op = tf.UnsortedSegmentSum;
  const x = input(inputs, "x", op);
  const segmentIds = input(inputs, "segmentIds", op);
  const { numSegments } = attrs as unknown as tf.UnsortedSegmentSumAttrs;
  const b = backend as tf.KernelBackend;
  if (x.dtype !== "float32" && x.dtype !== "int32") throw new Error(`${op}: x must be float32 or int32, got ${x.dtype}`);
  const idsRank = segmentIds.shape.length;
  for (let d = 0; d < idsRank; d++) {
    if (segmentIds.shape[d] !== x.shape[d]) {
      throw new Error(`${op}: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`);
    }
  }
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(`${op}: numSegments must be a non-negative integer, got ${numSegments}`);
  }
  const innerShape = x.shape.slice(idsRank);
  const inner = tf.util.sizeFromShape(innerShape);
  const outShape = [numSegments, ...innerShape];
  const out = alloc(x.dtype, numSegments * inner, op);
  const nRows = tf.util.sizeFromShape(segmentIds.shape);
  if (nRows > 0 && inner > 0 && numSegments > 0) {
    const xs = readHost(b, x, op);
    const ids = readHost(b, segmentIds, op);
    for (let r = 0; r < nRows; r++) {
      const s = ids[r];
      if (s < 0 || s >= numSegments) continue;
      const src = r * inner;
      const dst = s * inner;
      for (let j = 0; j < inner; j++) out[dst + j] += xs[src + j];
    }
  }
  return { dataId: b.write(out, outShape, x.dtype), shape: outShape, dtype: x.dtype };
};

/**
 * Host implementation of `GatherV2` (any `axis` and `batchDims`, float32/int32/bool) for any
 * backend. Indices out of `[0, x.shape[axis])` are an error, as on every tfjs backend.
 */
export const gatherV2HostKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const op = tf.GatherV2;
  const x = input(inputs, "x", op);
  const indices = input(inputs, "indices", op);
  const { axis, batchDims } = attrs as unknown as tf.GatherV2Attrs;
  const b = backend as tf.KernelBackend;
  const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
  const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(x, indices, parsedAxis, batchDims);
  const { batchSize, outerSize, dimSize, sliceSize, outputShape } = info;
  const nIdx = batchSize === 0 ? 0 : tf.util.sizeFromShape(indices.shape) / batchSize;
  const out = alloc(x.dtype, batchSize * outerSize * nIdx * sliceSize, op);
  if (out.length > 0) {
    const xs = readHost(b, x, op);
    const idx = readHost(b, indices, op);
    for (let bi = 0; bi < batchSize; bi++) {
      for (let o = 0; o < outerSize; o++) {
        const srcBase = (bi * outerSize + o) * dimSize;
        const dstBase = (bi * outerSize + o) * nIdx;
        for (let j = 0; j < nIdx; j++) {
          const k = idx[bi * nIdx + j];
          if (!(k >= 0 && k < dimSize)) throw new Error(`${op}: the index value ${k} is not in [0, ${dimSize - 1}]`);
          const src = (srcBase + k) * sliceSize;
          out.set(xs.subarray(src, src + sliceSize), (dstBase + j) * sliceSize);
        }
      }
    }
  }
  return { dataId: b.write(out, outputShape, x.dtype), shape: outputShape, dtype: x.dtype };
};

/**
 * Wraps a backend's own `GatherV2`: keeps it for `batchDims = 0` and uses
 * {@link gatherV2HostKernel} otherwise (wasm's native kernel is wrong there).
 */
export function gatherV2Kernel(native: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { batchDims } = args.attrs as unknown as tf.GatherV2Attrs;
    return batchDims ? gatherV2HostKernel(args) : native(args);
  };
}

/** Product of the batch dimensions of a matMul operand (all but the last two). */
function batchSize(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length - 2; i++) n *= shape[i];
  return n;
}

/** A Transpose of the last two dimensions through `transpose` (a backend's Transpose kernel). */
function swapLastTwo(transpose: tf.KernelFunc, x: tf.TensorInfo, backend: tf.KernelBackend): tf.TensorInfo {
  const perm = x.shape.map((_, i) => i);
  const r = x.shape.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return transpose({ inputs: { x }, backend, attrs: { perm } as unknown as tf.NamedAttrMap }) as tf.TensorInfo;
}

/**
 * Wraps a backend's own `BatchMatMul` (`native`): a product of single matrices (batch size 1)
 * with `transposeA`/`transposeB` becomes Transpose + the untransposed native kernel (see the
 * module comment); everything else (mismatched operands too, so that the error names the caller's
 * shapes) goes to `native` unchanged. The temporary transposes are
 * freed before returning, also when the kernel throws.
 */
export function batchMatMulKernel(native: tf.KernelFunc, transpose: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const op = tf.BatchMatMul;
    const a = input(args.inputs, "a", op);
    const b = input(args.inputs, "b", op);
    const attrs = args.attrs as unknown as tf.BatchMatMulAttrs;
    const ta = attrs.transposeA === true;
    const tb = attrs.transposeB === true;
    if ((!ta && !tb) || batchSize(a.shape) !== 1 || batchSize(b.shape) !== 1) return native(args);
    // Mismatched operands: the native kernel's error then names the caller's shapes and flags,
    // not those of our transposed temporaries.
    const innerA = a.shape[a.shape.length - (ta ? 2 : 1)];
    const innerB = b.shape[b.shape.length - (tb ? 1 : 2)];
    if (innerA !== innerB) return native(args);
    const backend = args.backend as tf.KernelBackend;
    const temps: tf.TensorInfo[] = [];
    try {
      const a2 = ta ? swapLastTwo(transpose, a, backend) : a;
      if (ta) temps.push(a2);
      const b2 = tb ? swapLastTwo(transpose, b, backend) : b;
      if (tb) temps.push(b2);
      return native({ inputs: { a: a2, b: b2 }, backend, attrs: { ...args.attrs, transposeA: false, transposeB: false } });
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}

/** The backends' own kernels that a wrapper replaced, by `<backend>/<kernel>`. */
const replacedNative = new Map<string, tf.KernelConfig>();

/**
 * Puts back the backend's own kernel that {@link registerFallbackKernels} wrapped (`GatherV2`,
 * `BatchMatMul`). For benchmarks that compare with the stock kernel; the fallbacks come back with
 * `registerFallbackKernels`. Returns false when nothing was wrapped.
 */
export function restoreNativeKernel(kernelName: string, backendName: string): boolean {
  const native = replacedNative.get(`${backendName}/${kernelName}`);
  const current = tf.getKernel(kernelName, backendName);
  if (native === undefined || current === undefined || !ours.has(current.kernelFunc)) return false;
  tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel(native);
  return true;
}

/** Kernel functions installed by this module, so that registering twice is a no-op. */
const ours = new WeakSet<tf.KernelFunc>([unsortedSegmentSumKernel, gatherV2HostKernel]);

/** Builds the replacement config for `kernelName` on `backendName` given what is registered now. */
function fallbackFor(kernelName: string, backendName: string, existing: tf.KernelConfig | undefined): tf.KernelConfig {
  if (kernelName === tf.UnsortedSegmentSum) return { kernelName, backendName, kernelFunc: unsortedSegmentSumKernel };
  if (kernelName === tf.GatherV2) {
    // Keep the backend's setupFunc (wasm binds its C++ function there) and its batchDims=0 path.
    if (existing === undefined) return { kernelName, backendName, kernelFunc: gatherV2HostKernel };
    const kernelFunc = gatherV2Kernel(existing.kernelFunc);
    ours.add(kernelFunc);
    return { ...existing, kernelFunc };
  }
  if (kernelName === tf.BatchMatMul) {
    const transpose = tf.getKernel(tf.Transpose, backendName);
    if (existing === undefined || transpose === undefined) throw new Error(`${backendName} has no BatchMatMul or Transpose kernel to wrap`);
    const kernelFunc = batchMatMulKernel(existing.kernelFunc, transpose.kernelFunc);
    ours.add(kernelFunc);
    return { ...existing, kernelFunc };
  }
  throw new Error(`no fallback kernel named ${kernelName}`);
}

/**
 * Registers host fallbacks for `backendName`.
 *
 * @param backendName tfjs backend name, e.g. `"wasm"` or `"cpu"`.
 * @param kernelNames which fallbacks; default {@link WASM_FALLBACK_KERNELS}. `UnsortedSegmentSum`
 *   replaces the backend's kernel; `GatherV2` wraps it (batchDims > 0 goes to the host);
 *   `BatchMatMul` wraps it (transposed single matrices are transposed first).
 * @returns the names of the kernels registered by this call (already-installed ones are skipped).
 */
export function registerFallbackKernels(backendName: string, kernelNames: readonly string[] = WASM_FALLBACK_KERNELS): string[] {
  const registered: string[] = [];
  for (const kernelName of kernelNames) {
    const existing = tf.getKernel(kernelName, backendName);
    if (existing !== undefined && ours.has(existing.kernelFunc)) continue;
    const config = fallbackFor(kernelName, backendName, existing);
    if (existing !== undefined && config.kernelFunc !== existing.kernelFunc) replacedNative.set(`${backendName}/${kernelName}`, existing);
    // Unregister first so that tfjs does not warn "already registered".
    if (existing !== undefined) tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel(config);
    registered.push(kernelName);
  }
  return registered;
}

/**
 * Registers every fallback the wasm backend needs ({@link WASM_FALLBACK_KERNELS}). Idempotent;
 * call it after `@tensorflow/tfjs-backend-wasm` is loaded (its kernels must be registered first),
 * before or after the backend is initialised.
 *
 * @returns the names of the kernels registered by this call.
 */
export function registerWasmFallbacks(): string[] {
  if (tf.getKernel(tf.GatherV2, "wasm") === undefined) {
    throw new Error("registerWasmFallbacks: load @tensorflow/tfjs-backend-wasm first");
  }
  return registerFallbackKernels("wasm");
}

/**
 * Kernels whose gradient {@link registerMissingGradients} registers: GatherNd (none in tfjs 4.22),
 * the fused GELU, and Softmax (tfjs' maths, with the fused kernel where the backend has it).
 */
export const ADDED_GRADIENTS: readonly string[] = [tf.GatherNd, ...FUSED_GRADIENTS.map((g) => g.kernelName)];

/**
 * Gradient of `GatherNd` (`tf.gatherND`, e.g. picking `logp[b, t, token]` for each token):
 * `dParams = scatterND(indices, dy, params.shape)`, which sums the updates of repeated indices.
 * tfjs 4.22 registers none, so `tf.grad` through `tf.gatherND` throws "gradient function not
 * found for GatherNd" on every backend.
 */
export const gatherNdGradConfig: tf.GradConfig = {
  kernelName: tf.GatherNd,
  inputsToSave: ["params", "indices"],
  gradFunc: (dy, saved) => {
    const [params, indices] = saved;
    const g = Array.isArray(dy) ? dy[0] : dy;
    return {
      params: () => tf.scatterND(indices, g, params.shape),
      // Integer input: never on a differentiable path; present so the tape finds every input.
      indices: () => tf.zeros(indices.shape),
    };
  },
};

/**
 * Registers the gradients of {@link ADDED_GRADIENTS} and of the fused ops (`FUSED_GRADIENTS`,
 * ./fused.ts: the fused GELU's, and Softmax's, which then uses the fused kernel where the backend
 * has one) — global, backend-independent. Idempotent;
 * `initBackend` calls it. Requires tfjs' own gradients to be registered first (`ensureGradients`).
 *
 * @returns the kernel names whose gradient this call registered.
 */
export function registerMissingGradients(): string[] {
  const registered: string[] = [];
  for (const config of [gatherNdGradConfig, ...FUSED_GRADIENTS]) {
    if (tf.getGradient(config.kernelName) === config) continue;
    // Softmax's replaces tfjs' own (same maths, see ./fused.ts); tfjs warns about that only in DEBUG.
    tf.registerGradient(config);
    registered.push(config.kernelName);
  }
  return registered;
}

/**
 * `log(sigmoid(x))`, computed stably as `-softplus(-x)`, with a working gradient
 * (`sigmoid(-x) * dy`, through the Softplus kernel's registered gradient).
 *
 * Use it instead of `tf.logSigmoid`: in tfjs-core 4.22 that op's custom gradient closes over its
 * input without saving it, so `tf.grad` throws "Cannot read properties of undefined (reading
 * 'backend')" whenever the input is an intermediate tensor (e.g. the reward-model loss
 * `-logSigmoid(r_w - r_l)`) — on every backend.
 */
export function logSigmoid<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.neg(tf.softplus(tf.neg(x))));
}
