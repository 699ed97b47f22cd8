#!/usr/bin/env node
// The installed `rlhf` command (package.json "bin"): the built CLI, cli/dist/main.js, which
// `pnpm build` writes. This file is committed so that `pnpm install` in a fresh clone can link
// the bin before anything is built.
require("../dist/main.js");
