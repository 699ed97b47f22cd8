// Default selection (no RLHF_BACKEND): the native packages cannot load on our build machines, so
// the order tensorflow-gpu > tensorflow > wasm > cpu lands on wasm. Own file: backend choice is
// global per process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs-core";
import { BACKEND_ORDER, getBackendInfo, initBackend } from "./backend";

type Line = [string, Record<string, unknown> | undefined];

test("default order skips the native backends with one line each and picks wasm", async (t) => {
  if (nativeBuilt()) return t.skip("a native tfjs binding is built on this machine");
  const lines: Line[] = [];
  const listeners = process.listenerCount("uncaughtException") + process.listenerCount("unhandledRejection");
  assert.equal(getBackendInfo(), undefined);
  const info = await initBackend({ env: {}, log: (msg, fields) => lines.push([msg, fields]) });
  assert.deepEqual(info, { name: "wasm", tfBackend: "wasm" });
  assert.equal(tf.getBackend(), "wasm");
  assert.deepEqual(getBackendInfo(), info);

  assert.equal(lines.length, 3, JSON.stringify(lines));
  const [gpu, cpuNative, chosen] = lines;
  assert.match(gpu[0], /^compute backend tensorflow-gpu skipped: native addon not built \(.*tfjs-node-gpu.*tfjs_binding\.node is missing/);
  assert.equal(gpu[1]?.backend, "tensorflow-gpu");
  assert.equal(gpu[1]?.package, "@tensorflow/tfjs-node-gpu");
  assert.match(cpuNative[0], /^compute backend tensorflow skipped: native addon not built/);
  assert.equal(cpuNative[1]?.package, "@tensorflow/tfjs-node");
  assert.equal(chosen[0], "compute backend wasm");
  assert.equal(chosen[1]?.selectedBy, "auto");
  assert.equal(chosen[1]?.simd, true);
  assert.deepEqual(chosen[1]?.fallbackKernels, ["UnsortedSegmentSum", "GatherV2", "BatchMatMul"]);
  for (const [msg, fields] of lines) {
    assert.ok(!msg.includes("\n") && !/\bat .*:\d+:\d+/.test(msg), `one line, no stack: ${msg}`);
    assert.ok(!String(fields?.reason ?? "").includes("\n"));
  }

  // The failed native loads left nothing behind.
  assert.deepEqual(tf.getKernelsForBackend("tensorflow"), []);
  assert.equal(tf.findBackendFactory("tensorflow"), null);
  // Emscripten's rethrowing process listeners were removed.
  assert.equal(process.listenerCount("uncaughtException") + process.listenerCount("unhandledRejection"), listeners);
});

test("idempotent: later and concurrent calls return the first result without logging again", async () => {
  const lines: Line[] = [];
  const log = (msg: string, fields?: Record<string, unknown>) => lines.push([msg, fields]);
  const [a, b] = await Promise.all([initBackend({ log }), initBackend({ log, env: { RLHF_BACKEND: "cpu" } })]);
  assert.deepEqual(a, { name: "wasm", tfBackend: "wasm" });
  assert.deepEqual(b, a);
  assert.deepEqual(await initBackend({ backend: "wasm" }), a);
  assert.deepEqual(lines, []);
  assert.equal(tf.getBackend(), "wasm");
});

test("a later call that forces another backend is rejected", async () => {
  await assert.rejects(initBackend({ backend: "cpu" }), /already initialised as wasm; cannot switch to cpu/);
});

test("every @tensorflow package resolves the same @tensorflow/tfjs-core file", () => {
  const here = createRequire(__filename);
  const core = (from: NodeRequire) => realpathSync(from.resolve("@tensorflow/tfjs-core/package.json"));
  const from = (pkg: string, r: NodeRequire = here) => createRequire(r.resolve(`${pkg}/package.json`));
  const ours = core(here);
  assert.equal(core(from("@tensorflow/tfjs-backend-wasm")), ours);
  assert.equal(core(from("@tensorflow/tfjs-backend-cpu")), ours);
  assert.equal(core(from("@tensorflow/tfjs")), ours);
  for (const native of ["@tensorflow/tfjs-node", "@tensorflow/tfjs-node-gpu"]) {
    assert.equal(core(from("@tensorflow/tfjs", from(native))), ours, native);
  }
  assert.equal(tf.version_core, "4.22.0");
});

test("after initBackend, gradients and chained tensor methods are registered", () => {
  const g = tf.tidy(() => Array.from(tf.grad((x: tf.Tensor) => tf.sum(tf.square(x)))(tf.tensor1d([1, 2, 3])).dataSync()));
  assert.deepEqual(g, [2, 4, 6]);
  // tfjs' own batchDims gather gradient calls x.split(), t.reshape(), ...
  const t = tf.scalar(1) as unknown as Record<string, unknown>;
  for (const m of ["reshape", "split", "slice", "sum"]) assert.equal(typeof t[m], "function", m);
  tf.dispose(t as unknown as tf.Tensor);
});

test("BACKEND_ORDER is the documented preference order", () => {
  assert.deepEqual(BACKEND_ORDER, ["tensorflow-gpu", "tensorflow", "wasm", "cpu"]);
});

/** True when a native tfjs binding exists here (then the native backends would load). */
function nativeBuilt(): boolean {
  return ["@tensorflow/tfjs-node", "@tensorflow/tfjs-node-gpu"].some((pkg) => {
    const lib = join(dirname(realpathSync(createRequire(__filename).resolve(`${pkg}/package.json`))), "lib");
    return existsSync(lib) && readdirSync(lib).some((d) => existsSync(join(lib, d, "tfjs_binding.node")));
  });
}
