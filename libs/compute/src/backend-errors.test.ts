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
    assert.equal(err.message, 'RLHF_BACKEND="cuda" is not a compute backend; allowed: tensorflow-gpu, tensorflow, wasm, cpu');
    return true;
  });
  await assert.rejects(initBackend({ backend: "gpu" as never }), /options\.backend="gpu" is not a compute backend; allowed: tensorflow-gpu, tensorflow, wasm, cpu/);
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
  assert.deepEqual(info, { name: "wasm", tfBackend: "wasm" });
  assert.equal(tf.tidy(() => tf.sum(tf.tensor1d([1, 2, 3])).dataSync()[0]), 6);
});

function bindingBuilt(pkg: string): boolean {
  const dir = dirname(realpathSync(createRequire(__filename).resolve(`${pkg}/package.json`)));
  const lib = join(dir, "lib");
  return existsSync(lib) && readdirSync(lib).some((d) => existsSync(join(lib, d, "tfjs_binding.node")));
}
