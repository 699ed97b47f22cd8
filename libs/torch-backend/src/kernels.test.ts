// Every native kernel against tfjs' own cpu backend: the same op on the same inputs gives the same
// shape, dtype and values (exact for int32 and bool, 1e-5 relative for float32), including the
// edge cases tfjs defines (broadcasting, dtype promotion, reductions over no axis, exclusive and
// reverse cumsum, batchDims gathers, repeated scatter indices, out-of-range one-hot and segment
// ids). Bad input is an Error on both, never a crash, and nothing leaks in the addon's table.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { fallbackKernels, loadAddon, nativeTensorCount, NATIVE_KERNELS, registerTorchBackend } from "./index";

const addon = loadAddon();
const skip = addon.ok ? false : `torch addon unavailable: ${addon.reason}`;

before(async () => {
  if (!addon.ok) return;
  registerTorchBackend();
  assert.ok(await tf.setBackend("torch"));
});

type Out = tf.Tensor | tf.Tensor[];
interface Result {
  shape: number[];
  dtype: string;
  values: number[];
}

function snapshot(o: Out): Result[] {
  return (Array.isArray(o) ? o : [o]).map((t) => ({ shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync() as ArrayLike<number>) }));
}

async function on(backend: string, f: () => Out): Promise<Result[]> {
  assert.ok(await tf.setBackend(backend));
  const live = tf.memory().numTensors;
  try {
    let out: Result[] = [];
    tf.tidy(() => {
      out = snapshot(f());
    });
    assert.equal(tf.memory().numTensors, live);
    return out;
  } finally {
    await tf.setBackend("torch");
  }
}

function close(a: Result[], b: Result[], what: string): void {
  assert.equal(a.length, b.length, `${what}: number of outputs`);
  a.forEach((x, i) => {
    const y = b[i];
    assert.deepEqual(x.shape, y.shape, `${what}[${i}] shape`);
    assert.equal(x.dtype, y.dtype, `${what}[${i}] dtype`);
    if (x.dtype !== "float32") {
      assert.deepEqual(x.values, y.values, `${what}[${i}] values`);
      return;
    }
    x.values.forEach((v, j) => {
      const w = y.values[j];
      if (Number.isNaN(w)) assert.ok(Number.isNaN(v), `${what}[${i}][${j}]: ${v} vs NaN`);
      else if (!Number.isFinite(w)) assert.equal(v, w, `${what}[${i}][${j}]`);
      else assert.ok(Math.abs(v - w) <= 1e-5 * Math.max(1, Math.abs(w)), `${what}[${i}][${j}]: ${v} vs ${w}`);
    });
  });
}

const f = (v: number[], s?: number[]) => tf.tensor(v, s, "float32");
const i32 = (v: number[], s?: number[]) => tf.tensor(v, s, "int32");
const bool = (v: number[], s?: number[]) => tf.tensor(v, s, "bool");
const X = () => f([-2.5, -1, -0.5, 0, 0.25, 0.5, 1, 2, 3.5, 7], [2, 5]);
const P = () => f([0.1, 0.5, 0.9, 1.5, 2, 3], [2, 3]);

const cases: [string, () => Out][] = [
  // element-wise, one input
  ...(
    [
      ["abs", tf.abs], ["neg", tf.neg], ["exp", tf.exp], ["expm1", tf.expm1], ["square", tf.square], ["sigmoid", tf.sigmoid],
      ["tanh", tf.tanh], ["sin", tf.sin], ["cos", tf.cos], ["atan", tf.atan], ["sinh", tf.sinh], ["cosh", tf.cosh], ["asinh", tf.asinh],
      ["relu", tf.relu], ["relu6", tf.relu6], ["elu", tf.elu], ["selu", tf.selu], ["softplus", tf.softplus], ["sign", tf.sign],
      ["floor", tf.floor], ["ceil", tf.ceil], ["round", tf.round], ["erf", tf.erf], ["isNaN", tf.isNaN], ["isFinite", tf.isFinite],
      ["isInf", tf.isInf], ["zerosLike", tf.zerosLike], ["onesLike", tf.onesLike], ["step", (x: tf.Tensor) => tf.step(x, 0.3)],
      ["leakyRelu", (x: tf.Tensor) => tf.leakyRelu(x, 0.1)], ["reciprocal", tf.reciprocal],
    ] as [string, (x: tf.Tensor) => tf.Tensor][]
  ).map(([n, op]): [string, () => Out] => [n, () => op(X())]),
  ...(
    [["log", tf.log], ["log1p", tf.log1p], ["sqrt", tf.sqrt], ["rsqrt", tf.rsqrt], ["asin", (x: tf.Tensor) => tf.asin(tf.div(x, 4))], ["acos", (x: tf.Tensor) => tf.acos(tf.div(x, 4))], ["tan", tf.tan], ["acosh", (x: tf.Tensor) => tf.acosh(tf.add(x, 1))], ["atanh", (x: tf.Tensor) => tf.atanh(tf.div(x, 4))]] as [string, (x: tf.Tensor) => tf.Tensor][]
  ).map(([n, op]): [string, () => Out] => [n, () => op(P())]),
  ["logicalNot", () => tf.logicalNot(bool([1, 0, 1]))],
  ["abs int32", () => tf.abs(i32([-3, 0, 4]))],
  ["square int32", () => tf.square(i32([-3, 0, 4]))],
  ["NaN propagates", () => tf.exp(f([NaN, 0, Infinity, -Infinity]))],
  // element-wise, two inputs (broadcasting, dtypes)
  ["add broadcast", () => tf.add(X(), f([1, 2, 3, 4, 5]))],
  ["sub column", () => tf.sub(X(), f([1, -1], [2, 1]))],
  ["mul scalar", () => tf.mul(X(), tf.scalar(3))],
  ["div", () => tf.div(X(), f([2, 4, -8, 0.5, 1]))],
  ["div int32 (floor)", () => tf.div(i32([7, -7, 6]), i32([2, 2, -4]))],
  ["floorDiv float", () => tf.floorDiv(f([7, -7, 6.5]), f([2, 2, -4]))],
  ["mod", () => tf.mod(f([7, -7, 6.5, -1]), f([3, 3, -4, 5]))],
  ["mod int32", () => tf.mod(i32([7, -7, 6]), i32([3, 3, -4]))],
  ["maximum/minimum", () => [tf.maximum(X(), 0.4), tf.minimum(X(), f([0.1]))]],
  ["pow tensor", () => tf.pow(P(), f([1, 2, 0.5], [1, 3]))],
  ["pow scalar 3", () => tf.pow(X(), 3)],
  ["pow scalar 2, 0.5, -1", () => [tf.pow(P(), 2), tf.pow(P(), 0.5), tf.pow(P(), -1)]],
  ["pow int32", () => tf.pow(i32([2, 3, -2]), i32([3, 2, 3]))],
  ["squaredDifference", () => tf.squaredDifference(X(), 1)],
  ["atan2", () => tf.atan2(X(), f([1, -1, 2, -2, 0.5]))],
  ["comparisons", () => [tf.greater(X(), 0.5), tf.greaterEqual(X(), 0.5), tf.less(X(), 0.5), tf.lessEqual(X(), 0.5), tf.equal(X(), 0.5), tf.notEqual(X(), 0.5)]],
  ["comparisons int32", () => [tf.greater(i32([1, 2, 3]), i32([2])), tf.equal(i32([1, 2, 3]), i32([2]))]],
  ["logicalAnd/Or", () => [tf.logicalAnd(bool([1, 1, 0, 0]), bool([1, 0, 1, 0])), tf.logicalOr(bool([1, 1, 0, 0]), bool([1, 0, 1, 0]))]],
  ["add int32 + int32", () => tf.add(i32([1, 2]), i32([3, 4]))],
  ["mul int32 scalar", () => tf.mul(i32([1, 2, 3]), tf.scalar(4, "int32"))],
  ["cast", () => [tf.cast(f([1.7, -1.7, 0, 2.5]), "int32"), tf.cast(f([1.7, 0, -0.1]), "bool"), tf.cast(bool([1, 0]), "float32"), tf.cast(i32([3, 0]), "bool")]],
  ["clipByValue", () => tf.clipByValue(X(), -1, 2)],
  ["where", () => tf.where(bool([1, 0, 1, 0, 1, 0, 1, 0, 1, 0], [2, 5]), X(), tf.neg(X()))],
  ["where broadcast", () => tf.where(bool([1, 0], [2, 1]), X(), f([9]))],
  ["addN", () => tf.addN([X(), X(), tf.neg(X()), tf.mul(X(), 0.5)])],
  // reductions
  ["sum all / axis / keepDims", () => [tf.sum(X()), tf.sum(X(), 0), tf.sum(X(), 1, true), tf.sum(X(), [0, 1])]],
  ["sum int32 and bool", () => [tf.sum(i32([1, 2, 3, 4], [2, 2]), 1), tf.sum(bool([1, 0, 1, 1], [2, 2]), 0)]],
  ["mean", () => [tf.mean(X()), tf.mean(X(), -1, true), tf.mean(i32([1, 2, 4], [3]))]],
  ["max/min", () => [tf.max(X()), tf.max(X(), 1), tf.min(X(), 0, true), tf.max(i32([3, 9, 2], [3]))]],
  ["prod", () => [tf.prod(P(), 1), tf.prod(i32([2, 3, 4], [3]))]],
  ["any/all", () => [tf.any(bool([1, 0, 0, 0], [2, 2]), 1), tf.all(bool([1, 1, 0, 1], [2, 2]), 0)]],
  ["reduce over no axis", () => [tf.sum(X(), []), tf.max(X(), []), tf.mean(i32([1, 2]), [])]],
  ["rank-0 reductions", () => [tf.sum(tf.scalar(2.5)), tf.max(tf.scalar(3))]],
  ["argMax/argMin", () => [tf.argMax(X(), 1), tf.argMin(X(), 0), tf.argMax(f([1, 3, 3, 2]))]],
  ["softmax", () => [tf.softmax(X()), tf.softmax(f([1, 2, 3, 1000], [4]))]],
  ["logSoftmax", () => tf.logSoftmax(X())],
  ["cumsum", () => [tf.cumsum(X(), 1), tf.cumsum(X(), 1, true), tf.cumsum(X(), 1, false, true), tf.cumsum(X(), 1, true, true), tf.cumsum(i32([1, 2, 3]))]],
  ["cumprod", () => [tf.cumprod(P(), 1), tf.cumprod(P(), 1, true, true)]],
  // linear algebra
  ["matMul", () => [tf.matMul(X(), X(), false, true), tf.matMul(X(), X(), true, false), tf.matMul(tf.transpose(X()), X(), true, true)]],
  ["batched matMul with broadcasting", () => tf.matMul(tf.reshape(tf.range(0, 24), [2, 3, 4]), tf.reshape(tf.range(0, 8), [4, 2]))],
  ["rank-4 matMul", () => tf.matMul(tf.reshape(tf.range(0, 48), [2, 2, 3, 4]), tf.reshape(tf.range(0, 48), [2, 2, 3, 4]), false, true)],
  // shapes and indexing
  ["reshape / expandDims / squeeze", () => [tf.reshape(X(), [5, -1]), tf.expandDims(X(), 1), tf.expandDims(X(), -1), tf.squeeze(tf.reshape(X(), [1, 2, 1, 5]))]],
  ["transpose", () => [tf.transpose(X()), tf.transpose(tf.reshape(tf.range(0, 24), [2, 3, 4]), [2, 0, 1])]],
  ["slice", () => [tf.slice(X(), [0, 1], [2, 3]), tf.slice(X(), [1, 2], [-1, -1]), tf.slice(X(), [1, 0], [0, 5])]],
  ["stridedSlice (host)", () => tf.stridedSlice(X(), [0, 0], [2, 5], [1, 2])],
  ["concat", () => [tf.concat([X(), X()], 0), tf.concat([X(), f([9, 9], [2, 1])], 1), tf.concat([f([], [0, 5]), X()], 0), tf.concat([i32([1]), i32([2, 3])])]],
  ["stack / unstack", () => [tf.stack([X(), X()], 1), tf.stack([X(), X()], -1), ...tf.unstack(X(), 1)]],
  ["split", () => [...tf.split(X(), [2, 3], 1), ...tf.split(X(), 2, 0), ...tf.split(X(), [1, -1], 1)]],
  ["tile", () => [tf.tile(X(), [2, 3]), tf.tile(bool([1, 0]), [2])]],
  ["broadcastTo", () => tf.broadcastTo(f([1, 2, 3]), [2, 3])],
  ["pad", () => [tf.pad(X(), [[1, 0], [2, 3]]), tf.pad(X(), [[0, 1], [0, 0]], 7)]],
  ["reverse", () => [tf.reverse(X(), 1), tf.reverse(X(), [0, 1]), tf.reverse(X())]],
  ["gather", () => [tf.gather(X(), i32([4, 0, 4]), 1), tf.gather(X(), i32([1, 1, 0], [3, 1]), 0), tf.gather(i32([5, 6, 7]), i32([2, 0]))]],
  ["gather batchDims 1", () => tf.gather(tf.reshape(tf.range(0, 24), [2, 3, 4]), i32([1, 2, 0, 0, 3, 3], [2, 3]), 2, 1)],
  ["gatherND", () => [tf.gatherND(X(), i32([1, 4, 0, 0], [2, 2])), tf.gatherND(X(), i32([1, 0], [2, 1]))]],
  ["scatterND with repeated indices", () => tf.scatterND(i32([1, 3, 1], [3, 1]), f([1, 2, 3, 4, 5, 6], [3, 2]), [5, 2])],
  ["unsortedSegmentSum", () => [tf.unsortedSegmentSum(X(), i32([1, 0]) as tf.Tensor1D, 3), tf.unsortedSegmentSum(f([1, 2, 3, 4]), i32([0, 2, 0, 2]) as tf.Tensor1D, 3)]],
  // (int32 segment sums: tfjs' cpu kernel answers float32; ours keeps int32 like TensorFlow and
  // @rlhf/compute's host kernel. Compared after a cast.)
  ["unsortedSegmentSum int32", () => tf.cast(tf.unsortedSegmentSum(i32([1, 2, 3]), i32([1, 1, 0]) as tf.Tensor1D, 2), "float32")],
  ["oneHot", () => [tf.oneHot(i32([0, 2, 5, -1]) as tf.Tensor1D, 3), tf.oneHot(i32([1, 0]) as tf.Tensor1D, 2, 5, -1)]],
  ["fill / zeros / ones", () => [tf.fill([2, 3], 2.5), tf.fill([2], 4, "int32"), tf.zeros([2, 2], "bool"), tf.ones([3], "int32")]],
  ["range", () => [tf.range(0, 5), tf.range(5, 0, -2), tf.range(0, 1, 0.25), tf.range(3, 3), tf.range(0, 10, 3, "int32")]],
  ["topk (host)", () => Object.values(tf.topk(f([3, 1, 4, 1, 5, 9, 2, 6]), 3))],
];

test("every native kernel agrees with tfjs' cpu backend", { skip }, async () => {
  const before = nativeTensorCount();
  const failures: string[] = [];
  for (const [what, fn] of cases) {
    const want = await on("cpu", fn);
    const got = await on("torch", fn);
    try {
      close(got, want, what);
    } catch (e) {
      failures.push((e as Error).message.split("\n").slice(0, 4).join(" "));
    }
  }
  assert.deepEqual(failures, []);
  assert.equal(nativeTensorCount(), before, "the addon holds no tensor the cases made");
});

test("the fused kernels' names are registered and the common kernels are native", { skip }, () => {
  for (const k of [tf.BatchMatMul, tf.Add, tf.Softmax, tf.GatherV2, tf.UnsortedSegmentSum, tf.Sum, "RlhfAdamW", "RlhfCausalAttention"]) {
    assert.ok(NATIVE_KERNELS.includes(k), k);
    assert.ok(!fallbackKernels().has(k), k);
  }
  assert.ok(fallbackKernels().has(tf.TopK));
});

test("bad input is an Error naming the problem, on torch as on cpu, and leaks nothing", { skip }, async () => {
  const before = nativeTensorCount();
  const bad: [string, () => unknown][] = [
    ["gather index out of range", () => tf.gather(f([1, 2, 3]), i32([3]))],
    ["gather negative index", () => tf.gather(f([1, 2, 3]), i32([-1]))],
    ["matMul inner dimensions", () => tf.matMul(X(), X())],
    ["add shapes", () => tf.add(X(), f([1, 2, 3]))],
    ["reshape size", () => tf.reshape(X(), [3, 3])],
    ["gatherND out of bounds", () => tf.gatherND(X(), i32([2, 0], [1, 2]))],
    ["scatterND out of bounds", () => tf.scatterND(i32([5], [1, 1]), f([1, 2], [1, 2]), [5, 2])],
  ];
  for (const [what, fn] of bad) {
    for (const backend of ["cpu", "torch"]) {
      assert.ok(await tf.setBackend(backend));
      const live = tf.memory().numTensors;
      assert.throws(() => tf.tidy(() => void fn()), Error, `${what} on ${backend}`);
      assert.equal(tf.memory().numTensors, live, `${what} on ${backend} leaked`);
    }
  }
  await tf.setBackend("torch");
  // The addon itself: an unknown id, a freed id and a wrong argument are Errors, not crashes.
  const n = addon.ok ? addon.addon : undefined;
  assert.ok(n);
  assert.throws(() => n.read(1 << 30), /unknown or freed tensor id/);
  const id = n.write(new Float32Array([1, 2]), [2], 0);
  n.free(id);
  assert.throws(() => n.unary(0, id), /unknown or freed tensor id/);
  assert.throws(() => n.write(new Float32Array(3), [2], 0), /values has 3 elements, shape needs 2/);
  assert.throws(() => n.reshape("x" as unknown as number, [1]), /argument 0 must be a number/);
  assert.throws(() => n.unary(999, n.write(new Float32Array(1), [1], 0)), /unknown unary op 999/);
  assert.equal(nativeTensorCount(), before + 1); // the last write above, freed next
});
