/**
 * The torch backend's native kernels: TensorFlow.js kernel names and attributes mapped onto the
 * addon's calls (native/addon.cc). Shapes, axes and sizes are resolved here with tfjs' own helpers
 * (parseAxisParam, parseSliceParams, prepareSplitSize, collectGatherOpShapeInfo) so that every
 * kernel reads its attributes exactly as the stock backends do; the addon sees resolved integers.
 *
 * Semantics follow tfjs' cpu backend: dtypes (bool < int32 < float32, comparisons give bool, sums
 * of bool and int32 give int32, means give float32), reductions over no axis return the input,
 * out-of-range gather indices are errors, out-of-range one-hot indices give all-off rows,
 * UnsortedSegmentSum drops ids outside [0, numSegments).
 */
import * as tf from "@tensorflow/tfjs-core";
import { shared } from "@tensorflow/tfjs-backend-cpu";
import { DTYPE_CODE, type TorchAddon } from "./addon";
import { TORCH_BACKEND_NAME, type TorchBackend } from "./backend";
import { FUSED_KERNELS } from "./names";

type Inputs = Record<string, tf.TensorInfo>;
type Attrs = Record<string, unknown>;
type Kernel = (b: TorchBackend, n: TorchAddon, inputs: Inputs, attrs: Attrs) => tf.TensorInfo | tf.TensorInfo[];

const kernels = new Map<string, Kernel>();

function numericCode(dtype: unknown, op: string): number {
  if (dtype === "float32" || dtype === "int32" || dtype === "bool") return DTYPE_CODE[dtype];
  throw new Error(`${op}: dtype ${String(dtype)} is not supported by the torch backend`);
}

// ---- element-wise ----------------------------------------------------------------------------------

/** Unary op codes of native/addon.cc (enum Unary), by tfjs kernel name. */
const UNARY: Record<string, number> = {
  [tf.Abs]: 0, [tf.Neg]: 1, [tf.Exp]: 2, [tf.Expm1]: 3, [tf.Log]: 4, [tf.Log1p]: 5, [tf.Sqrt]: 6,
  [tf.Rsqrt]: 7, [tf.Square]: 8, [tf.Sigmoid]: 9, [tf.Tanh]: 10, [tf.Sin]: 11, [tf.Cos]: 12,
  [tf.Relu]: 13, [tf.Relu6]: 14, [tf.Elu]: 15, [tf.Selu]: 16, [tf.Softplus]: 17, [tf.Sign]: 18,
  [tf.Floor]: 19, [tf.Ceil]: 20, [tf.Round]: 21, [tf.Reciprocal]: 22, [tf.Erf]: 23, [tf.IsNan]: 24,
  [tf.IsInf]: 25, [tf.IsFinite]: 26, [tf.LogicalNot]: 27, [tf.ZerosLike]: 28, [tf.OnesLike]: 29,
  [tf.Step]: 30, [tf.LeakyRelu]: 31, [tf.Atan]: 32, [tf.Asin]: 33, [tf.Acos]: 34, [tf.Sinh]: 35,
  [tf.Cosh]: 36, [tf.Tan]: 37, [tf.Asinh]: 38, [tf.Acosh]: 39, [tf.Atanh]: 40,
};

for (const [name, code] of Object.entries(UNARY)) {
  kernels.set(name, (b, n, { x }, attrs) => b.out(n.unary(code, b.id(x, name), typeof attrs.alpha === "number" ? attrs.alpha : 0)));
}

/** Binary op codes of native/addon.cc (enum Binary), by tfjs kernel name. */
const BINARY: Record<string, number> = {
  [tf.Add]: 0, [tf.Sub]: 1, [tf.Multiply]: 2, [tf.RealDiv]: 3, [tf.FloorDiv]: 4, [tf.Maximum]: 5,
  [tf.Minimum]: 6, [tf.Pow]: 7, [tf.SquaredDifference]: 8, [tf.Mod]: 9, [tf.Atan2]: 10,
  [tf.Greater]: 11, [tf.GreaterEqual]: 12, [tf.Less]: 13, [tf.LessEqual]: 14, [tf.Equal]: 15,
  [tf.NotEqual]: 16, [tf.LogicalAnd]: 17, [tf.LogicalOr]: 18,
};

for (const [name, code] of Object.entries(BINARY)) {
  kernels.set(name, (b, n, { a, b: y }) => b.out(n.binary(code, b.id(a, name), b.id(y, name))));
}

kernels.set(tf.Identity, (b, n, { x }) => b.out(n.alias(b.id(x, tf.Identity))));
kernels.set(tf.Cast, (b, n, { x }, { dtype }) => b.out(n.cast(b.id(x, tf.Cast), numericCode(dtype, tf.Cast))));
kernels.set(tf.ClipByValue, (b, n, { x }, a) => b.out(n.clip(b.id(x, tf.ClipByValue), a.clipValueMin as number, a.clipValueMax as number)));
kernels.set(tf.Select, (b, n, { condition, t, e }) => b.out(n.select(b.id(condition, tf.Select), b.id(t, tf.Select), b.id(e, tf.Select))));
kernels.set(tf.AddN, (b, n, inputs) => {
  const list = Object.values(inputs);
  return b.out(n.addN(list.map((t) => b.id(t, tf.AddN))));
});

// ---- reductions ------------------------------------------------------------------------------------

/** Reduction codes of native/addon.cc (enum Reduce) and the attribute holding the axes. */
const REDUCE: [string, number, string][] = [
  [tf.Sum, 0, "axis"],
  [tf.Mean, 1, "axis"],
  [tf.Max, 2, "reductionIndices"],
  [tf.Min, 3, "axis"],
  [tf.Prod, 4, "axis"],
  [tf.Any, 5, "axis"],
  [tf.All, 6, "axis"],
];

for (const [name, code, axisAttr] of REDUCE) {
  kernels.set(name, (b, n, { x }, attrs) => {
    const id = b.id(x, name);
    const axes = tf.util.parseAxisParam((attrs[axisAttr] ?? null) as number | number[], x.shape);
    if (axes.length === 0) {
      // Nothing to reduce: the input itself, in the dtype the reduction would give.
      if (code === 1) return b.out(n.cast(id, DTYPE_CODE.float32));
      if ((code === 0 || code === 4) && x.dtype === "bool") return b.out(n.cast(id, DTYPE_CODE.int32));
      if (code === 5 || code === 6) return b.out(n.cast(id, DTYPE_CODE.bool));
      return b.out(n.alias(id));
    }
    return b.out(n.reduce(code, id, axes, attrs.keepDims === true));
  });
}

for (const [name, isMax] of [[tf.ArgMax, true], [tf.ArgMin, false]] as const) {
  kernels.set(name, (b, n, { x }, { axis }) => b.out(n.argReduce(isMax, b.id(x, name), tf.util.parseAxisParam(axis as number, x.shape)[0])));
}

kernels.set(tf.Softmax, (b, n, { logits }, { dim }) => b.out(n.softmax(b.id(logits, tf.Softmax), tf.util.parseAxisParam(dim as number, logits.shape)[0])));

for (const [name, isProd] of [[tf.Cumsum, false], [tf.Cumprod, true]] as const) {
  kernels.set(name, (b, n, { x }, a) =>
    b.out(n.cumulative(isProd, b.id(x, name), tf.util.parseAxisParam(a.axis as number, x.shape)[0], a.exclusive === true, a.reverse === true)),
  );
}

// ---- linear algebra --------------------------------------------------------------------------------

kernels.set(tf.BatchMatMul, (b, n, { a, b: y }, attrs) =>
  b.out(n.matmul(b.id(a, tf.BatchMatMul), b.id(y, tf.BatchMatMul), attrs.transposeA === true, attrs.transposeB === true)),
);

// ---- shapes and indexing ---------------------------------------------------------------------------

kernels.set(tf.Reshape, (b, n, { x }, { shape }) => b.out(n.reshape(b.id(x, tf.Reshape), tf.util.inferFromImplicitShape(shape as number[], tf.util.sizeFromShape(x.shape)))));

kernels.set(tf.ExpandDims, (b, n, { input }, { dim }) => {
  const rank = input.shape.length;
  let d = dim as number;
  if (d < 0) d = rank + d + 1;
  const shape = input.shape.slice();
  shape.splice(d, 0, 1);
  return b.out(n.reshape(b.id(input, tf.ExpandDims), shape));
});

kernels.set(tf.Transpose, (b, n, { x }, { perm }) => b.out(n.transpose(b.id(x, tf.Transpose), perm as number[])));

kernels.set(tf.Slice, (b, n, { x }, attrs) => {
  const [begin, size] = tf.slice_util.parseSliceParams(x, attrs.begin as number[], attrs.size as number[]);
  return b.out(n.slice(b.id(x, tf.Slice), begin, size));
});

kernels.set(tf.Concat, (b, n, inputs, { axis }) => {
  const list = Object.values(inputs);
  const ax = tf.util.parseAxisParam(axis as number, list[0].shape)[0];
  return b.out(n.concat(list.map((t) => b.id(t, tf.Concat)), ax));
});

kernels.set(tf.Pack, (b, n, inputs, { axis }) => {
  const list = Object.values(inputs);
  const rank = list[0].shape.length;
  let ax = axis as number;
  if (ax < 0) ax += rank + 1;
  return b.out(n.stack(list.map((t) => b.id(t, tf.Pack)), ax));
});

kernels.set(tf.Unpack, (b, n, { value }, { axis }) => {
  let ax = axis as number;
  if (ax < 0) ax += value.shape.length;
  return b.outMany(n.unstack(b.id(value, tf.Unpack), ax));
});

kernels.set(tf.SplitV, (b, n, { x }, attrs) => {
  const ax = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x, attrs.numOrSizeSplits as number | number[], ax);
  return b.outMany(n.split(b.id(x, tf.SplitV), sizes, ax));
});

kernels.set(tf.Tile, (b, n, { x }, { reps }) => b.out(n.tile(b.id(x, tf.Tile), reps as number[])));

kernels.set(tf.PadV2, (b, n, { x }, attrs) => {
  const paddings = (attrs.paddings as [number, number][]).flat();
  return b.out(n.pad(b.id(x, tf.PadV2), paddings, attrs.constantValue as number));
});

kernels.set(tf.Reverse, (b, n, { x }, { dims }) => b.out(n.reverse(b.id(x, tf.Reverse), tf.util.parseAxisParam(dims as number | number[], x.shape))));

kernels.set(tf.GatherV2, (b, n, { x, indices }, attrs) => {
  const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
  const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(x, indices, axis, (attrs.batchDims as number | undefined) ?? 0);
  return b.out(n.gather(b.id(x, tf.GatherV2), b.id(indices, tf.GatherV2), info.batchSize, info.outerSize, info.dimSize, info.sliceSize, info.outputShape));
});

kernels.set(tf.GatherNd, (b, n, { params, indices }) => b.out(n.gatherNd(b.id(params, tf.GatherNd), b.id(indices, tf.GatherNd))));

kernels.set(tf.ScatterNd, (b, n, { indices, updates }, { shape }) => b.out(n.scatterNd(b.id(indices, tf.ScatterNd), b.id(updates, tf.ScatterNd), shape as number[])));

kernels.set(tf.UnsortedSegmentSum, (b, n, { x, segmentIds }, { numSegments }) =>
  b.out(n.unsortedSegmentSum(b.id(x, tf.UnsortedSegmentSum), b.id(segmentIds, tf.UnsortedSegmentSum), numSegments as number)),
);

kernels.set(tf.OneHot, (b, n, { indices }, a) =>
  b.out(n.oneHot(b.id(indices, tf.OneHot), a.depth as number, a.onValue as number, a.offValue as number, numericCode(a.dtype ?? "int32", tf.OneHot))),
);

kernels.set(tf.Fill, (b, n, _inputs, a) => {
  const dtype = a.dtype ?? (typeof a.value === "number" ? "float32" : typeof a.value);
  if (typeof a.value !== "number") throw new Error(`${tf.Fill}: value ${JSON.stringify(a.value)} is not supported by the torch backend`);
  return b.out(n.fill(a.shape as number[], a.value, numericCode(dtype, tf.Fill)));
});

kernels.set(tf.Range, (b, _n, _inputs, a) => {
  // Computed on the host by tfjs' own rangeImpl (start + i * step, its sign rules), then written.
  const dtype = ((a.dtype as string | undefined) ?? "float32") as "float32" | "int32";
  const values = shared.rangeImpl(a.start as number, a.stop as number, a.step as number, dtype);
  return b.makeTensorInfo([values.length], dtype, values);
});

kernels.set(FUSED_KERNELS.adamw, (b, n, { param, m, v, grad }, a) =>
  b.outMany(
    n.adamw(
      b.id(param, FUSED_KERNELS.adamw), b.id(m, FUSED_KERNELS.adamw), b.id(v, FUSED_KERNELS.adamw), b.id(grad, FUSED_KERNELS.adamw),
      a.lr as number, a.beta1 as number, a.beta2 as number, a.epsilon as number, a.decay as number,
      a.bc1 as number, a.bc2 as number, a.gradScale as number,
    ),
  ),
);
kernels.set(FUSED_KERNELS.sumSquares, (b, n, inputs) => b.out(n.sumSquares(Object.values(inputs).map((t) => b.id(t, FUSED_KERNELS.sumSquares)))));
kernels.set(FUSED_KERNELS.layerNorm, (b, n, { x, gamma, beta }, { epsilon }) =>
  b.out(n.layerNorm(b.id(x, FUSED_KERNELS.layerNorm), b.id(gamma, FUSED_KERNELS.layerNorm), b.id(beta, FUSED_KERNELS.layerNorm), epsilon as number)),
);
kernels.set(FUSED_KERNELS.layerNormGrad, (b, n, { dy, x, gamma, beta }, { epsilon }) => {
  const k = FUSED_KERNELS.layerNormGrad;
  return b.outMany(n.layerNormGrad(b.id(dy, k), b.id(x, k), b.id(gamma, k), b.id(beta, k), epsilon as number));
});
kernels.set(FUSED_KERNELS.causalAttention, (b, n, { qkv }, { nHead }) => b.outMany(n.causalAttention(b.id(qkv, FUSED_KERNELS.causalAttention), nHead as number)));
kernels.set(FUSED_KERNELS.causalAttentionGrad, (b, n, { dy, qkv, probs }, { nHead }) => {
  const k = FUSED_KERNELS.causalAttentionGrad;
  return b.out(n.causalAttentionGrad(b.id(dy, k), b.id(qkv, k), b.id(probs, k), nHead as number));
});
kernels.set(FUSED_KERNELS.targetLogProbs, (b, n, { logits, targets }, { temperature }) =>
  b.out(n.targetLogProbs(b.id(logits, FUSED_KERNELS.targetLogProbs), b.id(targets, FUSED_KERNELS.targetLogProbs), temperature as number)),
);
kernels.set(FUSED_KERNELS.targetLogProbsGrad, (b, n, { dy, logits, targets }, { temperature }) => {
  const k = FUSED_KERNELS.targetLogProbsGrad;
  return b.out(n.targetLogProbsGrad(b.id(dy, k), b.id(logits, k), b.id(targets, k), temperature as number));
});
kernels.set(FUSED_KERNELS.gelu, (b, n, { x }) => b.out(n.gelu(b.id(x, FUSED_KERNELS.gelu))));
kernels.set(FUSED_KERNELS.geluGrad, (b, n, { dy, x }) => b.out(n.geluGrad(b.id(dy, FUSED_KERNELS.geluGrad), b.id(x, FUSED_KERNELS.geluGrad))));
kernels.set(FUSED_KERNELS.softmaxGrad, (b, n, { dy, y }, { dim }) =>
  b.out(n.softmaxGrad(b.id(dy, FUSED_KERNELS.softmaxGrad), b.id(y, FUSED_KERNELS.softmaxGrad), tf.util.parseAxisParam(dim as number, y.shape)[0])),
);

/** Names of the kernels that run natively on the torch backend. */
export const NATIVE_KERNELS: readonly string[] = [...kernels.keys()];

/** Registers every native kernel for the torch backend (idempotent). */
export function registerNativeKernels(addon: TorchAddon): void {
  for (const [kernelName, k] of kernels) {
    if (tf.getKernel(kernelName, TORCH_BACKEND_NAME) !== undefined) continue;
    tf.registerKernel({
      kernelName,
      backendName: TORCH_BACKEND_NAME,
      kernelFunc: ({ inputs, backend, attrs }) => k(backend as TorchBackend, addon, inputs as unknown as Inputs, (attrs ?? {}) as Attrs),
    });
  }
}
