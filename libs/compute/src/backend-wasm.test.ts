// run-tests: own process (the compute backend is chosen once per process)
// Forced wasm, started from an unrelated working directory: the .wasm binaries are found from the
// package's own folder, not from the cwd. Own file: backend choice is global per process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./backend";

test("forced wasm initialises from any cwd and registers its fallbacks", async () => {
  const cwd = process.cwd();
  const dir = mkdtempSync(join(tmpdir(), "rlhf-wasm-cwd-"));
  process.chdir(dir);
  const lines: [string, Record<string, unknown> | undefined][] = [];
  try {
    const info = await initBackend({ backend: "wasm", env: { RLHF_BACKEND: "cpu" }, log: (msg, fields) => lines.push([msg, fields]) });
    assert.deepEqual(info, { name: "wasm", tfBackend: "wasm", detail: info.detail });
  } finally {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(lines.length, 1);
  assert.match(lines[0][0], /^compute backend wasm \(forced by options.backend\): wasm, (no )?SIMD, \d+ threads?$/);
  assert.match(String(lines[0][1]?.wasmDir), /tfjs-backend-wasm[\\/]dist$/);
  assert.deepEqual(lines[0][1]?.fallbackKernels, ["UnsortedSegmentSum", "GatherV2", "BatchMatMul"]);
  assert.deepEqual(tf.getKernelsForBackend("tensorflow"), []);
  // A real computation on the initialised module, including the fallback.
  const g = tf.tidy(() => Array.from(tf.grad((w: tf.Tensor) => tf.sum(tf.gather(w, tf.tensor1d([1, 1], "int32"))))(tf.zeros([2, 2])).dataSync()));
  assert.deepEqual(g, [0, 0, 2, 2]);
});
