// run-tests: own process (the compute backend is chosen once per process)
// The addon in two JavaScript environments of one process (this thread and a worker thread, as a
// model service's compute worker beside a test's own tensors): each keeps its own tensor table
// and its own output-shape buffer, whoever initialised last.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { loadAddon, nativeTensorCount, registerTorchBackend } from "./index";

const addon = loadAddon();
const skip = addon.ok ? false : `torch addon unavailable: ${addon.reason}`;

before(async () => {
  if (!addon.ok) return;
  registerTorchBackend();
  assert.ok(await tf.setBackend("torch"));
});

test("a worker thread's tensors and shapes stay its own, and this thread's its own", { skip }, async () => {
  const mine = tf.ones([2, 3]);
  const liveHere = nativeTensorCount();
  const file = join(__dirname, "testing", "thread-user.ts");
  const worker = new Worker(`require(${JSON.stringify(require.resolve("tsx/cjs"))}); require(${JSON.stringify(file)});`, { eval: true });
  const next = () => new Promise<unknown>((resolve, reject) => (worker.once("message", resolve), worker.once("error", reject)));
  try {
    assert.equal(await next(), "ready");
    for (const [m, k, n] of [
      [3, 4, 5],
      [1, 8, 2],
    ]) {
      worker.postMessage([m, k, n]);
      const theirs = (await next()) as { shape: number[]; sum: number; live: number; kept: number[] };
      // This thread computes after the worker initialised and computed: its shapes are still right.
      const here = tf.tidy(() => {
        const out = tf.matMul(tf.ones([n, m]), tf.ones([m, k]));
        return { shape: out.shape, sum: (tf.sum(out).dataSync() as Float32Array)[0] };
      });
      assert.deepEqual([theirs.shape, theirs.sum, theirs.kept], [[m, n], m * n * k, [7, 7]]);
      assert.deepEqual([here.shape, here.sum], [[n, k], n * k * m]);
      assert.equal(nativeTensorCount(), liveHere, "the worker's tensors are not counted here");
      assert.ok(theirs.live >= 2, `the worker counts its own (${theirs.live})`);
    }
    assert.deepEqual(mine.shape, [2, 3]);
  } finally {
    await worker.terminate();
    mine.dispose();
  }
});
