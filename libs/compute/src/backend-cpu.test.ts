// run-tests: own process (the compute backend is chosen once per process)
// RLHF_BACKEND=cpu (read from process.env, the default): only the cpu backend is tried. Own file:
// backend choice is global per process.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./backend";
import { unsortedSegmentSumKernel } from "./kernels";

test("RLHF_BACKEND=cpu forces the cpu backend without touching the native packages", async () => {
  process.env.RLHF_BACKEND = "cpu";
  const lines: [string, Record<string, unknown> | undefined][] = [];
  const warnings: unknown[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args);
  let info;
  try {
    info = await initBackend({ log: (msg, fields) => lines.push([msg, fields]) });
  } finally {
    console.warn = warn;
    delete process.env.RLHF_BACKEND;
  }
  assert.deepEqual(info, { name: "cpu", tfBackend: "cpu", detail: "cpu" });
  assert.equal(tf.getBackend(), "cpu");
  assert.equal(lines.length, 1);
  assert.equal(lines[0][0], "compute backend cpu (forced by RLHF_BACKEND): cpu");
  assert.equal(lines[0][1]?.selectedBy, "RLHF_BACKEND");
  // Nothing native was required (it would have registered ~150 "tensorflow" kernels first).
  assert.deepEqual(tf.getKernelsForBackend("tensorflow"), []);
  // tfjs' "Hi, looks like you are running TensorFlow.js in Node.js" banner is not printed.
  assert.deepEqual(warnings, []);
});

test("on cpu the stock O(segments x rows) UnsortedSegmentSum is replaced by the host kernel", () => {
  assert.equal(tf.getKernel(tf.UnsortedSegmentSum, "cpu")?.kernelFunc, unsortedSegmentSumKernel);
  const got = tf.tidy(() => Array.from(tf.unsortedSegmentSum(tf.tensor1d([1, 2, 3]), tf.tensor1d([1, 1, 0], "int32"), 3).dataSync()));
  assert.deepEqual(got, [3, 3, 0]);
  const grad = tf.tidy(() => Array.from(tf.grad((w: tf.Tensor) => tf.sum(tf.gather(w, tf.tensor1d([2, 2, 0], "int32"))))(tf.zeros([3, 1])).dataSync()));
  assert.deepEqual(grad, [1, 0, 2]);
});
