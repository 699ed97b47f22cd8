// run-tests: own process (the compute backend is chosen once per process)
// A machine where the torch addon could not be built (no libtorch, no compiler): the default
// selection falls back to wasm with one line that says why. RLHF_TORCH_ADDON pointing at a
// missing file stands for the missing build. Own file: backend choice is global per process.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./backend";

test("without the torch addon the default is wasm, with one log line saying why", async () => {
  process.env.RLHF_TORCH_ADDON = "/nonexistent/rlhf_torch.node";
  const lines: [string, Record<string, unknown> | undefined][] = [];
  const info = await initBackend({ env: {}, log: (msg, fields) => lines.push([msg, fields]) });
  assert.deepEqual(info, { name: "wasm", tfBackend: "wasm", detail: info.detail });
  assert.match(info.detail, /^wasm, (no )?SIMD, \d+ threads?$/);
  assert.equal(lines.length, 1, JSON.stringify(lines));
  assert.match(lines[0][0], /^compute backend wasm \(not tensorflow-gpu: .*; not tensorflow: .*; not torch: native addon not found: RLHF_TORCH_ADDON=\/nonexistent\/rlhf_torch\.node does not exist\): wasm, (no )?SIMD, \d+ threads?$/);
  assert.deepEqual(tf.getKernelsForBackend("torch"), []);
  assert.equal(tf.tidy(() => tf.sum(tf.tensor1d([1, 2, 3])).dataSync()[0]), 6);
});
