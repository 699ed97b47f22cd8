#!/usr/bin/env node
// Builds the torch backend's N-API addon (native/addon.cc) with node-gyp against libtorch.
//
// The addon is optional: where libtorch's headers, a C++ compiler or Node's headers are missing,
// this prints one line saying why, records the reason in native/build/skipped.json (read by
// src/addon.ts, so the backend selection log can repeat it) and exits 0, so that `pnpm build`
// still succeeds and the services fall back to wasm.
//
// Environment:
//   RLHF_TORCH_DIR    libtorch prefix holding include/ATen and lib/ (default /usr: Debian's
//                     `apt-get install libtorch-dev`; or an unpacked official libtorch, CPU or CUDA)
//   RLHF_TORCH_CUDA   1: also link libtorch_cuda (an official CUDA build of libtorch)
//   RLHF_TORCH_BUILD  0: do not build (the backend then reports itself as not built);
//                     require: fail instead of skipping when the build does not succeed (CI)
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(pkgDir, "native");
const buildDir = join(nativeDir, "build");
const addonPath = join(buildDir, "Release", "rlhf_torch.node");
const skippedPath = join(buildDir, "skipped.json");
const mode = process.env.RLHF_TORCH_BUILD ?? "auto";
const torchDir = process.env.RLHF_TORCH_DIR || "/usr";
const cuda = process.env.RLHF_TORCH_CUDA === "1";

function skip(reason, detail = "") {
  mkdirSync(buildDir, { recursive: true });
  rmSync(addonPath, { force: true });
  writeFileSync(skippedPath, JSON.stringify({ reason, detail: detail.slice(-4000), torchDir }, null, 2) + "\n");
  if (mode === "require") {
    console.error(`@rlhf/torch-backend: native addon not built: ${reason}`);
    if (detail) console.error(detail.slice(-4000));
    process.exit(1);
  }
  console.log(`@rlhf/torch-backend: native addon not built (${reason}); the services will use the wasm backend`);
  process.exit(0);
}

if (mode === "0") skip("RLHF_TORCH_BUILD=0");

// Up to date: the addon is newer than every input (turbo also caches this task by its inputs).
const inputs = [join(nativeDir, "addon.cc"), join(nativeDir, "binding.gyp"), fileURLToPath(import.meta.url)];
const built = existsSync(addonPath) ? statSync(addonPath).mtimeMs : 0;
const record = existsSync(join(buildDir, "built.json")) ? JSON.parse(readFileSync(join(buildDir, "built.json"), "utf8")) : {};
if (built > 0 && inputs.every((f) => statSync(f).mtimeMs < built) && record.torchDir === torchDir && record.cuda === cuda) {
  console.log(`@rlhf/torch-backend: native addon up to date (${addonPath})`);
  process.exit(0);
}

if (!existsSync(join(torchDir, "include", "ATen", "ATen.h"))) {
  skip(`libtorch not found: no ${join(torchDir, "include", "ATen", "ATen.h")} (Debian: apt-get install libtorch-dev; or set RLHF_TORCH_DIR)`);
}
const cxx = process.env.CXX || "g++";
if (spawnSync(cxx, ["--version"], { stdio: "ignore" }).status !== 0) skip(`no C++ compiler (${cxx}; Debian: apt-get install g++ make python3)`);

// node-gyp downloads Node's headers unless given a folder that has them: use the running Node's
// own (Debian's nodejs and the official tarballs both ship include/node) or npm's nodedir setting.
const prefix = resolve(dirname(process.execPath), "..");
const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, "include", "node", "node_api.h")) ? prefix : undefined);
if (nodedir === undefined) skip(`Node.js headers not found under ${prefix}/include/node (set npm_config_nodedir)`);

const require = createRequire(import.meta.url);
let gyp;
try {
  gyp = require.resolve("node-gyp/bin/node-gyp.js");
} catch {
  skip("node-gyp is not installed (pnpm install first)");
}
// A running process maps the addon it loaded: move it aside (the process keeps its file) rather
// than let the linker overwrite it in place, which would crash that process.
if (existsSync(addonPath)) renameSync(addonPath, `${addonPath}.prev-${process.pid}`);
const args = [gyp, "rebuild", "--release", `--nodedir=${nodedir}`, "-C", nativeDir, `--torch_dir=${torchDir}`, `--torch_cuda=${cuda ? 1 : 0}`];
console.log(`@rlhf/torch-backend: building the native addon against ${torchDir} (about a minute)`);
const r = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 64 << 20 });
const log = `${r.stdout ?? ""}\n${r.stderr ?? ""}`;
if (r.status !== 0 || !existsSync(addonPath)) {
  const firstError = log.split("\n").find((l) => /error/i.test(l) && !/gyp ERR!/.test(l)) ?? log.split("\n").find((l) => /gyp ERR!/.test(l)) ?? `node-gyp exited with ${r.status}`;
  skip(`compile failed: ${firstError.trim()}`, log);
}
rmSync(skippedPath, { force: true });
for (const f of readdirSync(dirname(addonPath))) if (f.startsWith("rlhf_torch.node.prev-")) rmSync(join(dirname(addonPath), f), { force: true });
writeFileSync(join(buildDir, "built.json"), JSON.stringify({ torchDir, cuda }) + "\n");
console.log(`@rlhf/torch-backend: built ${addonPath}`);
