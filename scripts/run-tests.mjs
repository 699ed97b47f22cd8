#!/usr/bin/env node
// Runs every *.test.ts below ./src of the current package with node's test runner through tsx.
// Node 20's `--test` does not expand globs nor look for .ts files by itself, hence this finder.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const root = process.argv[2] ?? "src";
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === "node_modules" || name === "gen" || name === "dist") continue;
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith(".test.ts")) files.push(p);
  }
})(root);
files.sort();
if (files.length === 0) {
  console.error(`run-tests: no *.test.ts files under ${root}`);
  process.exit(1);
}
const extra = process.env.RLHF_TEST_ARGS ? process.env.RLHF_TEST_ARGS.split(" ") : [];
// --test-force-exit: a file whose tests have all ended exits even if a handle it leaked (a child's
// pipe, a socket) would keep it alive; without it one leak hangs the whole suite until CI's limit.
// --test-timeout: a test that sets no deadline of its own fails after 20 minutes instead of hanging
// (only a hang reaches it: the slowest test takes a few minutes).
const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", "--test-force-exit", "--test-timeout=1200000", ...extra, ...files], {
  stdio: "inherit",
});
process.exit(r.status ?? 1);
