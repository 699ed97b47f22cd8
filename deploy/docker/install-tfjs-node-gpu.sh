#!/bin/sh
# Runs the install script of @tensorflow/tfjs-node-gpu inside a deployed service folder ($1), which
# pnpm does not run (pnpm-workspace.yaml lists the native TensorFlow packages as ignored builds):
# it downloads libtensorflow 2.9.1 for Linux GPU (CUDA 11.2 / cuDNN 8.1 build; see deploy/README.md)
# and the prebuilt N-API binding. Needs internet access at image build time; fails loudly if the
# binding is not there afterwards.
set -eu
app="$1"
pkg=$(cd "$app" && node -e '
  const { dirname } = require("node:path");
  const { realpathSync } = require("node:fs");
  const compute = require.resolve("@rlhf/compute/package.json", { paths: [process.cwd()] });
  console.log(realpathSync(dirname(require.resolve("@tensorflow/tfjs-node-gpu/package.json", { paths: [compute] }))));
')
# node-pre-gyp is a dependency of the package, not on PATH outside an npm lifecycle.
bin=$(mktemp -d)
ln -s "$(realpath "$pkg/../../@mapbox/node-pre-gyp/bin/node-pre-gyp")" "$bin/node-pre-gyp"
cd "$pkg"
PATH="$bin:$PATH" node scripts/install.js gpu download
ls lib/napi-v*/tfjs_binding.node >/dev/null
ls deps/lib/libtensorflow.so* >/dev/null 2>&1 || ls lib/napi-v*/libtensorflow.so* >/dev/null
rm -rf "$bin"
echo "tfjs-node-gpu installed in $pkg"
