// run-tests: own process (the compute backend is chosen once per process)
// The torch backend forced, with two intra-op threads: the log line says what it runs with, and
// kernels it does not run natively still work through the host fallback. Skipped where the addon
// is not built. Own file: backend choice is global per process.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { cpuFlags, fallbackKernelCalls, loadAddon, nativeTensorCount } from "@rlhf/torch-backend";
import { initBackend } from "./backend";

test("RLHF_BACKEND=torch with RLHF_TORCH_THREADS=2", async (t) => {
  const load = loadAddon();
  if (!load.ok) return t.skip(`torch addon unavailable: ${load.reason}`);
  const lines: [string, Record<string, unknown> | undefined][] = [];
  const info = await initBackend({ env: { RLHF_BACKEND: "torch", RLHF_TORCH_THREADS: "2" }, log: (msg, fields) => lines.push([msg, fields]) });
  // The default kernel set is portable: on x86-64 with AVX2 and FMA, OpenBLAS runs its Haswell
  // kernels (read back from OpenBLAS itself, not from our variable) and ATen its AVX2 ones.
  const flags = cpuFlags();
  const portable = process.arch === "x64" && flags.has("avx2") && flags.has("fma");
  const kernels = portable ? "portable kernels (OpenBLAS Haswell, ATen avx2)" : "native kernels, portable not possible (";
  assert.ok(/^torch 1\.\d+\.\d+, 2 threads, cpu, /.test(info.detail) && info.detail.includes(kernels), info.detail);
  assert.deepEqual({ ...info, detail: "" }, { name: "torch", tfBackend: "torch", threads: 2, detail: "" });
  assert.equal(lines.length, 1);
  assert.equal(lines[0][0], `compute backend torch (forced by RLHF_BACKEND): ${info.detail}${portable ? "" : `; ${(lines[0][1]?.kernels as { reason: string }).reason}`}`);
  if (portable) assert.equal(lines[0][1]?.openblasCore, "Haswell");
  assert.equal(lines[0][1]?.threads, 2);
  assert.equal(lines[0][1]?.device, "cpu");
  assert.equal(lines[0][1]?.openblasThreads, true);

  const before = nativeTensorCount();
  const m = tf.tidy(() => tf.sum(tf.matMul(tf.ones([64, 32]), tf.ones([32, 16]))).dataSync()[0]);
  assert.equal(m, 64 * 16 * 32);
  // TopK has no native kernel: it runs on the host with tfjs' own cpu kernel, and says so.
  const x = tf.tensor1d([3, 1, 4, 1, 5]);
  const { values, indices } = tf.topk(x, 2);
  assert.deepEqual(Array.from(values.dataSync()), [5, 4]);
  assert.deepEqual(Array.from(indices.dataSync()), [4, 2]);
  tf.dispose([x, values, indices]);
  assert.equal(fallbackKernelCalls().get("TopK"), 1);
  assert.equal(nativeTensorCount(), before);
});
