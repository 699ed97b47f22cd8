// run-tests: own process (the compute backend is chosen once per process)
// Bad or unavailable forced backends: one clear error, and tfjs-core stays usable for a retry.
// Own file: backend choice is global per process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, realpathSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { BackendInitError, getBackendInfo, initBackend } from "./backend";

test("an unknown RLHF_BACKEND is rejected, naming the allowed values", async () => {
  await assert.rejects(initBackend({ env: { RLHF_BACKEND: "cuda" } }), (err: Error) => {
    assert.ok(err instanceof BackendInitError);
    assert.equal(err.message, 'RLHF_BACKEND="cuda" is not a compute backend; allowed: tensorflow-gpu, tensorflow, torch, wasm, cpu');
    return true;
  });
  await assert.rejects(initBackend({ backend: "gpu" as never }), /options\.backend="gpu" is not a compute backend; allowed: tensorflow-gpu, tensorflow, torch, wasm, cpu/);
  assert.equal(getBackendInfo(), undefined);
});

test("RLHF_TORCH_THREADS, RLHF_TORCH_DEVICE and RLHF_TORCH_KERNELS are checked before any backend loads", async () => {
  await assert.rejects(initBackend({ env: { RLHF_BACKEND: "torch", RLHF_TORCH_THREADS: "0" } }), /^BackendInitError: RLHF_TORCH_THREADS="0" must be an integer in 1\.\.1024$/);
  await assert.rejects(initBackend({ env: { RLHF_TORCH_THREADS: "two" } }), /RLHF_TORCH_THREADS="two" must be an integer in 1\.\.1024/);
  await assert.rejects(initBackend({ threads: 2.5 }), /options\.threads=2\.5 must be an integer in 1\.\.1024/);
  await assert.rejects(initBackend({ env: { RLHF_TORCH_DEVICE: "tpu" } }), /RLHF_TORCH_DEVICE="tpu" must be cpu, cuda or cuda:N/);
  await assert.rejects(initBackend({ env: { RLHF_TORCH_KERNELS: "fastest" } }), /^BackendInitError: RLHF_TORCH_KERNELS="fastest" must be portable or native$/);
  assert.equal(getBackendInfo(), undefined);
});

test("RLHF_BACKEND=torch without its addon fails with one clear line", async () => {
  // RLHF_TORCH_ADDON points the loader at another file; a missing one stands for a machine where
  // the addon could not be built (no libtorch, no compiler).
  process.env.RLHF_TORCH_ADDON = "/nonexistent/rlhf_torch.node";
  try {
    await assert.rejects(initBackend({ env: { RLHF_BACKEND: "torch" } }), (err: Error) => {
      assert.ok(err instanceof BackendInitError);
      assert.equal(err.message, "RLHF_BACKEND=torch: cannot use @rlhf/torch-backend: native addon not found: RLHF_TORCH_ADDON=/nonexistent/rlhf_torch.node does not exist");
      return true;
    });
  } finally {
    delete process.env.RLHF_TORCH_ADDON;
  }
  assert.equal(getBackendInfo(), undefined);
});

for (const [name, pkg] of [
  ["tensorflow", "@tensorflow/tfjs-node"],
  ["tensorflow-gpu", "@tensorflow/tfjs-node-gpu"],
] as const) {
  test(`RLHF_BACKEND=${name} fails with one clear line when ${pkg} has no native binding`, async (t) => {
    if (bindingBuilt(pkg)) return t.skip(`${pkg} is built on this machine`);
    const lines: string[] = [];
    await assert.rejects(initBackend({ env: { RLHF_BACKEND: name }, log: (msg) => lines.push(msg) }), (err: Error) => {
      assert.ok(err instanceof BackendInitError);
      assert.match(err.message, new RegExp(`^RLHF_BACKEND=${name}: cannot use ${pkg}: native addon not built \\(.*tfjs_binding\\.node is missing: the package's install script, which downloads libtensorflow, did not run or failed\\)$`));
      assert.ok(!err.message.includes("\n"));
      return true;
    });
    assert.deepEqual(lines, []); // forced: no fallback was tried
    // Nothing of the failed load is left registered.
    assert.deepEqual(tf.getKernelsForBackend("tensorflow"), []);
    assert.equal(tf.findBackendFactory("tensorflow"), null);
    assert.equal(getBackendInfo(), undefined);
  });
}

test("after a failed forced backend, a retry with another one works", async () => {
  const info = await initBackend({ env: { RLHF_BACKEND: "wasm" } });
  assert.deepEqual(info, { name: "wasm", tfBackend: "wasm", detail: info.detail });
  assert.match(info.detail, /^wasm, (no )?SIMD, \d+ threads?$/);
  assert.equal(tf.tidy(() => tf.sum(tf.tensor1d([1, 2, 3])).dataSync()[0]), 6);
});

function bindingBuilt(pkg: string): boolean {
  const dir = dirname(realpathSync(createRequire(__filename).resolve(`${pkg}/package.json`)));
  const lib = join(dir, "lib");
  return existsSync(lib) && readdirSync(lib).some((d) => existsSync(join(lib, d, "tfjs_binding.node")));
}
