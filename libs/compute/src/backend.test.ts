// run-tests: own process (the compute backend is chosen once per process)
// Default selection (no RLHF_BACKEND): the tfjs-node packages cannot load on our build machines,
// so the order tensorflow-gpu > tensorflow > torch > wasm > cpu lands on torch where its addon is
// built (pnpm build with libtorch-dev), else on wasm. Own file: backend choice is global per process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs-core";
import { loadAddon } from "@rlhf/torch-backend";
import { BACKEND_ORDER, getBackendInfo, initBackend } from "./backend";

type Line = [string, Record<string, unknown> | undefined];

const torchBuilt = loadAddon().ok;
const expected = torchBuilt ? { name: "torch", tfBackend: "torch", threads: 1 } : { name: "wasm", tfBackend: "wasm" };
/** `info` without its detail line (checked by the backend-* tests). */
const bare = ({ detail: _detail, ...rest }: { detail: string }) => rest;
const msg0 = (lines: Line[]) => lines[0]?.[0] ?? "";

test("default order: one line naming the backend chosen and why each one before it was not", async (t) => {
  if (nativeBuilt()) return t.skip("a native tfjs binding is built on this machine");
  const lines: Line[] = [];
  const listeners = process.listenerCount("uncaughtException") + process.listenerCount("unhandledRejection");
  assert.equal(getBackendInfo(), undefined);
  const info = await initBackend({ env: {}, log: (msg, fields) => lines.push([msg, fields]) });
  assert.deepEqual(bare(info), expected);
  assert.ok(msg0(lines).endsWith(`: ${info.detail}`), msg0(lines));
  assert.equal(tf.getBackend(), expected.tfBackend);
  assert.deepEqual(getBackendInfo(), info);

  assert.equal(lines.length, 1, JSON.stringify(lines));
  const [msg, fields] = lines[0];
  assert.match(msg, new RegExp(`^compute backend ${expected.name} \\(not tensorflow-gpu: native addon not built \\(.*tfjs-node-gpu.*tfjs_binding\\.node is missing.*; not tensorflow: native addon not built`));
  assert.equal(fields?.selectedBy, "auto");
  const skipped = fields?.skipped as Record<string, string>;
  assert.deepEqual(Object.keys(skipped), torchBuilt ? ["tensorflow-gpu", "tensorflow"] : ["tensorflow-gpu", "tensorflow", "torch"]);
  if (torchBuilt) {
    assert.equal(fields?.package, "@rlhf/torch-backend");
    assert.equal(fields?.threads, 1);
    assert.equal(fields?.device, "cpu");
    assert.match(String(fields?.torchVersion), /^\d+\.\d+\.\d+$/);
    assert.ok(Number(fields?.nativeKernels) > 60, String(fields?.nativeKernels));
  } else {
    assert.match(msg, /; not torch: native addon not (built|found)/);
    assert.equal(fields?.simd, true);
    assert.deepEqual(fields?.fallbackKernels, ["UnsortedSegmentSum", "GatherV2", "BatchMatMul"]);
  }
  assert.ok(!msg.includes("\n") && !/\bat .*:\d+:\d+/.test(msg), `one line, no stack: ${msg}`);

  // The failed native loads left nothing behind.
  assert.deepEqual(tf.getKernelsForBackend("tensorflow"), []);
  assert.equal(tf.findBackendFactory("tensorflow"), null);
  // Emscripten's rethrowing process listeners (when wasm loaded) were removed.
  assert.equal(process.listenerCount("uncaughtException") + process.listenerCount("unhandledRejection"), listeners);
});

test("idempotent: later and concurrent calls return the first result without logging again", async () => {
  const lines: Line[] = [];
  const log = (msg: string, fields?: Record<string, unknown>) => lines.push([msg, fields]);
  const [a, b] = await Promise.all([initBackend({ log }), initBackend({ log, env: { RLHF_BACKEND: "cpu" } })]);
  assert.deepEqual(bare(a), expected);
  assert.deepEqual(b, a);
  assert.deepEqual(await initBackend({ backend: a.name }), a);
  assert.deepEqual(lines, []);
  assert.equal(tf.getBackend(), expected.tfBackend);
});

test("a later call that forces another backend is rejected", async () => {
  await assert.rejects(initBackend({ backend: "cpu" }), new RegExp(`already initialised as ${expected.name}; cannot switch to cpu`));
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
  assert.deepEqual(BACKEND_ORDER, ["tensorflow-gpu", "tensorflow", "torch", "wasm", "cpu"]);
});

/** True when a native tfjs binding exists here (then the native backends would load). */
function nativeBuilt(): boolean {
  return ["@tensorflow/tfjs-node", "@tensorflow/tfjs-node-gpu"].some((pkg) => {
    const lib = join(dirname(realpathSync(createRequire(__filename).resolve(`${pkg}/package.json`))), "lib");
    return existsSync(lib) && readdirSync(lib).some((d) => existsSync(join(lib, d, "tfjs_binding.node")));
  });
}
