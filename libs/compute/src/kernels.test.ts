// run-tests: own process (the compute backend is chosen once per process)
// The fallback kernels and gradients of kernels.ts, registered by hand (no initBackend), checked
// against values worked out by hand and against the cpu backend's stock kernels.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { ensureGradients } from "./backend";
import {
  ADDED_GRADIENTS,
  WASM_FALLBACK_KERNELS,
  batchMatMulKernel,
  restoreNativeKernel,
  gatherV2HostKernel,
  logSigmoid,
  registerFallbackKernels,
  registerMissingGradients,
  registerWasmFallbacks,
  unsortedSegmentSumKernel,
} from "./kernels";

/** Runs `f` on `backend` and returns its result as a flat array (f's tensors are disposed). */
async function on(backend: string, f: () => tf.Tensor): Promise<number[]> {
  assert.ok(await tf.setBackend(backend));
  return tf.tidy(() => Array.from(f().dataSync()));
}

function assertClose(got: number[], want: number[], tol = 1e-5, what = ""): void {
  assert.equal(got.length, want.length, `${what} length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

before(() => {
  assert.equal(tf.getKernel(tf.UnsortedSegmentSum, "wasm"), undefined, "wasm gained UnsortedSegmentSum: revisit kernels.ts");
  ensureGradients();
  assert.deepEqual(registerWasmFallbacks().sort(), [...WASM_FALLBACK_KERNELS].sort());
  assert.deepEqual(registerMissingGradients(), [...ADDED_GRADIENTS]);
});

test("registering again is a no-op and tfjs prints no 'already registered' warning", () => {
  const warnings: unknown[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args);
  try {
    assert.deepEqual(registerWasmFallbacks(), []);
    assert.deepEqual(registerFallbackKernels("wasm"), []);
    assert.deepEqual(registerMissingGradients(), []);
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(warnings, []);
  assert.equal(tf.getKernel(tf.UnsortedSegmentSum, "wasm")?.kernelFunc, unsortedSegmentSumKernel);
  // The cpu backend keeps its stock kernel unless asked (used as the reference below).
  assert.notEqual(tf.getKernel(tf.UnsortedSegmentSum, "cpu")?.kernelFunc, unsortedSegmentSumKernel);
});

test("UnsortedSegmentSum on wasm: hand-computed sums, empty segments, dropped ids, int32", async () => {
  // rows: [1,2] [3,4] [5,6] [7,8] [9,10] with ids 2, 0, 2, -1 (dropped), 5 (>= numSegments: dropped)
  const x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const ids = [2, 0, 2, -1, 5];
  const want = [3, 4, 0, 0, 6, 8, 0, 0];
  const got = await on("wasm", () => tf.unsortedSegmentSum(tf.tensor2d(x, [5, 2]), tf.tensor1d(ids, "int32"), 4));
  assert.deepEqual(got, want);
  const gotInt = await on("wasm", () => tf.unsortedSegmentSum(tf.tensor2d(x, [5, 2], "int32"), tf.tensor1d(ids, "int32"), 4));
  assert.deepEqual(gotInt, want);
  const cpu = await on("cpu", () => tf.unsortedSegmentSum(tf.tensor2d(x, [5, 2]), tf.tensor1d(ids, "int32"), 4));
  assert.deepEqual(got, cpu);
  // Rank-1 and rank-3 x, zero rows.
  assert.deepEqual(await on("wasm", () => tf.unsortedSegmentSum(tf.tensor1d([1, 2, 4]), tf.tensor1d([1, 1, 0], "int32"), 2)), [4, 3]);
  const x3 = Array.from({ length: 12 }, (_, i) => i);
  const w3 = await on("wasm", () => tf.unsortedSegmentSum(tf.tensor3d(x3, [3, 2, 2]), tf.tensor1d([1, 0, 1], "int32"), 2));
  assert.deepEqual(w3, [4, 5, 6, 7, 8, 10, 12, 14]);
  const empty = await on("wasm", () => tf.unsortedSegmentSum(tf.zeros([0, 3]), tf.zeros([0], "int32"), 2));
  assert.deepEqual(empty, [0, 0, 0, 0, 0, 0]);
});

test("UnsortedSegmentSum gradient: hand-computed and equal to cpu", async () => {
  // y = sum(w * uss(x, ids, 3)) with w = [[1,10],[100,1000],[1e4,1e5]] => dy/dx[r] = w[ids[r]], 0 for a dropped id.
  const w = [1, 10, 100, 1000, 1e4, 1e5];
  const ids = [2, 0, -1, 2];
  const want = [1e4, 1e5, 1, 10, 0, 0, 1e4, 1e5];
  const grad = () =>
    tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.tensor2d(w, [3, 2]), tf.unsortedSegmentSum(x, tf.tensor1d(ids, "int32"), 3))))(tf.ones([4, 2]));
  const wasm = await on("wasm", grad);
  assert.deepEqual(wasm, want);
  assert.deepEqual(await on("cpu", grad), wasm);
});

test("embedding gradient (gather -> UnsortedSegmentSum): row v gets dy summed over tokens == v", async () => {
  // loss = sum(gather(wte, tokens) * c) with c[i, :] = i + 1 => d wte[v] = sum over i with tokens[i] == v of (i + 1)
  const tokens = [3, 1, 3, 0, 3];
  const V = 5;
  const C = 2;
  const want = new Array<number>(V * C).fill(0);
  tokens.forEach((v, i) => {
    for (let j = 0; j < C; j++) want[v * C + j] += i + 1;
  });
  const grad = () =>
    tf.grad((wte: tf.Tensor) => {
      const c = tf.tile(tf.reshape(tf.range(1, tokens.length + 1), [tokens.length, 1]), [1, C]);
      return tf.sum(tf.mul(tf.gather(wte, tf.tensor1d(tokens, "int32")), c));
    })(tf.ones([V, C]));
  const wasm = await on("wasm", grad);
  assert.deepEqual(wasm, want); // [4,4, 2,2, 0,0, 9,9, 0,0]
  assert.deepEqual(await on("cpu", grad), want);
});

test("GatherV2 with batchDims on wasm matches cpu (the native wasm kernel reads out of bounds)", async () => {
  const cases: { x: number[]; xShape: number[]; idx: number[]; idxShape: number[]; axis: number; batchDims: number; want?: number[] }[] = [
    { x: [1, 2, 3, 4, 5, 6, 7, 8, 9], xShape: [3, 3], idx: [1, 2, 0], idxShape: [3], axis: 1, batchDims: 1, want: [2, 6, 7] },
    { x: [1, 2, 3, 4, 5, 6, 7, 8, 9], xShape: [3, 3], idx: [1, 2, 0], idxShape: [3, 1], axis: 1, batchDims: 1, want: [2, 6, 7] },
    { x: [1, 2, 3, 4, 5, 6], xShape: [2, 3], idx: [2, 1, 0, 0], idxShape: [2, 2], axis: 1, batchDims: 1, want: [3, 2, 4, 4] },
    // [B, T, V] logprobs, [B, T] targets, batchDims 2: picks logp[b, t, targets[b, t]].
    { x: Array.from({ length: 24 }, (_, i) => i), xShape: [2, 3, 4], idx: [3, 0, 1, 2, 2, 0], idxShape: [2, 3], axis: 2, batchDims: 2, want: [3, 4, 9, 14, 18, 20] },
    // batchDims 1 with an outer axis between batch and gather axis, and a trailing slice.
    { x: Array.from({ length: 24 }, (_, i) => i), xShape: [2, 2, 3, 2], idx: [2, 0, 1, 1], idxShape: [2, 2], axis: 2, batchDims: 1 },
  ];
  for (const c of cases) {
    const f = () => tf.gather(tf.tensor(c.x, c.xShape), tf.tensor(c.idx, c.idxShape, "int32"), c.axis, c.batchDims);
    const wasm = await on("wasm", f);
    const cpu = await on("cpu", f);
    assert.deepEqual(wasm, cpu, JSON.stringify(c));
    if (c.want) assert.deepEqual(wasm, c.want);
  }
  await tf.setBackend("wasm");
  assert.throws(() => tf.tidy(() => tf.gather(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor1d([0, 2], "int32"), 1, 1)), /index value 2 is not in \[0, 1\]/);
  // batchDims = 0 still runs wasm's own kernel (embedding lookups stay fast): same answer.
  assert.deepEqual(await on("wasm", () => tf.gather(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]), tf.tensor1d([2, 0, 2], "int32"))), [5, 6, 1, 2, 5, 6]);
});

test("the host GatherV2 kernel works for batchDims 0 too (any backend)", async () => {
  await tf.setBackend("cpu");
  const out = tf.tidy(() => {
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const idx = tf.tensor1d([2, 2, 0], "int32");
    const info = gatherV2HostKernel({ inputs: { x, indices: idx }, backend: tf.backend(), attrs: { axis: 1, batchDims: 0 } }) as tf.TensorInfo;
    const t = tf.engine().makeTensorFromTensorInfo(info);
    return Array.from(t.dataSync());
  });
  assert.deepEqual(out, [3, 3, 1, 6, 6, 4]);
});

test("GatherNd gradient (registered here): scatter with repeated indices summed, wasm == cpu == hand", async () => {
  // params [2, 3]; pick (0,2), (1,0), (0,2) with weights 1, 10, 100 => d params = [[0,0,101],[10,0,0]]
  const want = [0, 0, 101, 10, 0, 0];
  const grad = () =>
    tf.grad((p: tf.Tensor) => tf.sum(tf.mul(tf.gatherND(p, tf.tensor2d([0, 2, 1, 0, 0, 2], [3, 2], "int32")), tf.tensor1d([1, 10, 100]))))(
      tf.ones([2, 3]),
    );
  assert.deepEqual(await on("wasm", grad), want);
  assert.deepEqual(await on("cpu", grad), want);
});

test("logSigmoid: value and gradient, also on an intermediate tensor", async () => {
  const xs = [-30, -2, 0, 0.5, 30];
  const want = xs.map((x) => -Math.log1p(Math.exp(-x)));
  // d/dx log(sigmoid(2x)) = 2 * sigmoid(-2x)
  const wantGrad = xs.map((x) => 2 / (1 + Math.exp(2 * x)));
  for (const backend of ["wasm", "cpu"]) {
    assertClose(await on(backend, () => logSigmoid(tf.tensor1d(xs))), want, 1e-5, `${backend} value`);
    const g = await on(backend, () => tf.grad((x: tf.Tensor) => tf.sum(logSigmoid(tf.mul(x, 2))))(tf.tensor1d(xs)));
    assertClose(g, wantGrad, 1e-5, `${backend} grad`);
  }
});

test("canary: tf.logSigmoid's own gradient still fails on intermediate inputs (drop our logSigmoid when this fails)", async () => {
  await tf.setBackend("cpu");
  assert.throws(() => tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tf.logSigmoid(tf.mul(x, 2))))(tf.tensor1d([1, 2]))));
});

test("no tensors or backend buffers leak from the fallback kernels and their gradients", async () => {
  for (const backend of ["wasm", "cpu"]) {
    await tf.setBackend(backend);
    const tensors = tf.memory().numTensors;
    const buffers = tf.backend().numDataIds();
    tf.tidy(() => {
      const x = tf.ones([4, 2]);
      tf.grad((t: tf.Tensor) => tf.sum(tf.unsortedSegmentSum(t, tf.tensor1d([1, 0, 1, 1], "int32"), 3)))(x).dataSync();
      tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t, tf.tensor2d([1, 0, 0, 1], [4, 1], "int32"), 1, 1)))(x).dataSync();
      tf.grad((t: tf.Tensor) => tf.sum(tf.gatherND(t, tf.tensor2d([1, 0, 3, 1], [2, 2], "int32"))))(x).dataSync();
      tf.grad((t: tf.Tensor) => tf.sum(logSigmoid(tf.mul(t, 2))))(x).dataSync();
    });
    assert.equal(tf.memory().numTensors, tensors, `${backend} tensors`);
    assert.equal(tf.backend().numDataIds(), buffers, `${backend} buffers`);
  }
});

test("BatchMatMul on wasm: every transpose combination equals cpu, batched products go native, no tensor leaks", async () => {
  const rnd = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3));
  // [M, K] x [K, N] written in each layout; M, K, N distinct so a wrong transpose cannot pass.
  const [M, K, N] = [5, 3, 4];
  const a = rnd(M * K, 1);
  const b = rnd(K * N, 2);
  const want = await on("cpu", () => tf.matMul(tf.tensor2d(a, [M, K]), tf.tensor2d(b, [K, N])));
  for (const [ta, tb] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const) {
    const before = tf.memory().numTensors;
    const got = await on("wasm", () => {
      const A = tf.tensor2d(a, [M, K]);
      const B = tf.tensor2d(b, [K, N]);
      return tf.matMul(ta ? tf.transpose(A) : A, tb ? tf.transpose(B) : B, ta, tb);
    });
    assertClose(got, want, 1e-5, `transposeA=${ta} transposeB=${tb}`);
    assert.equal(tf.memory().numTensors, before, "the temporary transposes are freed");
  }
  // Rank 3 with batch 1 takes the transposing path too; batch 2 stays native; both equal cpu.
  for (const batch of [1, 2]) {
    const a3 = rnd(batch * K * M, 3);
    const b3 = rnd(batch * N * K, 4);
    const f = () => tf.matMul(tf.tensor3d(a3, [batch, K, M]), tf.tensor3d(b3, [batch, N, K]), true, true);
    assertClose(await on("wasm", f), await on("cpu", f), 1e-5, `batch ${batch}`);
  }
  // Mismatched operands: the error names the caller's shapes and flags, and nothing is left behind.
  assert.ok(await tf.setBackend("wasm"));
  const before = tf.memory().numTensors;
  assert.throws(
    () => tf.tidy(() => tf.matMul(tf.zeros([2, 3]), tf.zeros([4, 5]), false, true)),
    /inner shapes \(3\) and \(5\) of Tensors with shapes 2,3 and 4,5 and transposeA=false and transposeB=true/,
  );
  assert.equal(tf.memory().numTensors, before);
  // Its gradient (itself transposed products) equals cpu's.
  const g = () => {
    const [gA, gB] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D, false, true), tf.reshape(tf.range(1, M * N + 1), [M, N]))))([
      tf.tensor2d(a, [M, K]),
      tf.tensor2d(rnd(N * K, 5), [N, K]),
    ]);
    return tf.concat([tf.reshape(gA, [-1]), tf.reshape(gB, [-1])]);
  };
  assertClose(await on("wasm", g), await on("cpu", g), 1e-5, "gradients");
});

test("batchMatMulKernel hands untransposed and batched products to the native kernel as they are", () => {
  const seen: tf.NamedAttrMap[] = [];
  const native: tf.KernelFunc = ({ attrs }) => {
    seen.push({ ...attrs });
    return { dataId: {}, shape: [1, 1], dtype: "float32" } as tf.TensorInfo;
  };
  const transposed: number[][] = [];
  const freed: object[] = [];
  const backend = { disposeData: (id: object) => freed.push(id) } as unknown as tf.KernelBackend;
  const transpose: tf.KernelFunc = ({ attrs }) => {
    transposed.push((attrs as unknown as { perm: number[] }).perm);
    return { dataId: { t: transposed.length }, shape: [1, 1], dtype: "float32" } as tf.TensorInfo;
  };
  const k = batchMatMulKernel(native, transpose);
  const info = (shape: number[]) => ({ dataId: {}, shape, dtype: "float32" }) as tf.TensorInfo;
  const call = (as: number[], bs: number[], transposeA: boolean, transposeB: boolean) =>
    k({ inputs: { a: info(as), b: info(bs) }, backend, attrs: { transposeA, transposeB } as unknown as tf.NamedAttrMap });
  call([2, 3], [3, 4], false, false);
  call([2, 2, 3], [2, 4, 3], false, true);
  assert.deepEqual(transposed, [], "nothing to transpose, or batched");
  call([3, 2], [4, 3], true, true);
  call([1, 3, 2], [1, 3, 4], true, false);
  assert.deepEqual(transposed, [[1, 0], [1, 0], [0, 2, 1]]);
  assert.deepEqual(
    seen.map((s) => [s.transposeA, s.transposeB]),
    [[false, false], [false, true], [false, false], [false, false]],
  );
  assert.equal(freed.length, 3, "every temporary transpose is freed");
  // A native kernel that throws still frees the temporaries.
  const failing = batchMatMulKernel(() => {
    throw new Error("boom");
  }, transpose);
  assert.throws(() => failing({ inputs: { a: info([3, 2]), b: info([3, 4]) }, backend, attrs: { transposeA: true, transposeB: false } as unknown as tf.NamedAttrMap }), /boom/);
  assert.equal(freed.length, 4);
});

test("restoreNativeKernel puts the stock BatchMatMul back and registering again wraps it", () => {
  const wrapped = tf.getKernel(tf.BatchMatMul, "wasm")?.kernelFunc;
  assert.ok(restoreNativeKernel(tf.BatchMatMul, "wasm"));
  assert.notEqual(tf.getKernel(tf.BatchMatMul, "wasm")?.kernelFunc, wrapped);
  assert.equal(restoreNativeKernel(tf.BatchMatMul, "wasm"), false, "already native");
  assert.equal(restoreNativeKernel(tf.UnsortedSegmentSum, "wasm"), false, "replaced, not wrapped: there is no native one");
  assert.deepEqual(registerFallbackKernels("wasm", [tf.BatchMatMul]), [tf.BatchMatMul]);
  assert.equal(restoreNativeKernel(tf.BatchMatMul, "wasm"), true);
  assert.deepEqual(registerFallbackKernels("wasm", [tf.BatchMatMul]), [tf.BatchMatMul]);
});
