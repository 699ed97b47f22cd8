#!/usr/bin/env node
// Runs the current package's tests (every *.test.ts below ./src) with node's test runner through tsx.
//
//   node run-tests.mjs          every test file: the package's `test` script (`pnpm test`)
//   node run-tests.mjs --unit   the fast files only: its `test:unit` script (`pnpm test:unit`)
//   node run-tests.mjs --slow   the slow files only
//
// A file is slow when it is named *.slow.test.ts (its tests start node processes, or train for more
// than a few seconds), or when its package passes --all-slow (e2e: every test there starts real
// processes).
//
// Fast files share one process, since starting node with tsx costs more than most files' tests
// (Node 20's runner has no --experimental-test-isolation=none; that is Node 22's). A generated
// entry file requires each of them inside a describe() named after it, so a file's before/after/
// beforeEach hooks stay its own and a file that fails to load is one failed test; each file sees
// process.env as it would alone (the changes its top-level code made, none of the other files'),
// and what its tests change there is undone after it. The entry runs as a plain script, not under
// `--test`: its exit code and report are the test process's own, not relayed through the runner's
// child-process protocol. What cannot be undone stays in a process of its own: a file with a line
// `// run-tests: own process` (the compute backend, chosen once per process; OpenTelemetry's global
// providers), and every slow file; those go to `node --test`, which gives each file a process.
// A package whose files are split this way prints two summaries (.ci/run adds them all up).
//
// Node 20's `--test` does not expand globs nor look for .ts files by itself, hence this finder.
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { spawnSync } from "node:child_process";

const flags = new Set(process.argv.slice(2).filter((a) => a.startsWith("--")));
for (const f of flags) {
  if (!["--unit", "--slow", "--all-slow"].includes(f)) {
    console.error(`run-tests: unknown option ${f}; allowed: --unit, --slow, --all-slow`);
    process.exit(2);
  }
}
const root = process.argv.slice(2).find((a) => !a.startsWith("--")) ?? "src";
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
const isSlow = (f) => flags.has("--all-slow") || f.endsWith(".slow.test.ts");
const fast = flags.has("--slow") ? [] : files.filter((f) => !isSlow(f));
const slow = flags.has("--unit") ? [] : files.filter(isSlow);
if (fast.length + slow.length === 0) {
  console.log(`run-tests: no ${flags.has("--unit") ? "fast" : "slow"} test files under ${root}`);
  process.exit(0);
}

// The same variable as the tests' own deadlines (@rlhf/errors/dist/testing/deadline).
const scaleText = process.env.RLHF_TEST_TIMEOUT_SCALE?.trim() ?? "";
const scale = scaleText === "" ? 1 : Number(scaleText);
if (!Number.isFinite(scale) || scale <= 0) {
  console.error(`run-tests: RLHF_TEST_TIMEOUT_SCALE must be a positive number, got ${JSON.stringify(process.env.RLHF_TEST_TIMEOUT_SCALE)}`);
  process.exit(2);
}
// Only a hang reaches this limit (the slowest test takes a few minutes): a test (under `--test`) or
// a shared file (its describe) that sets no deadline of its own fails after 20 minutes instead.
const hangMs = Math.round(1_200_000 * scale);

const ownProcess = (f) => /^\/\/ run-tests: own process\b/m.test(readFileSync(f, "utf8"));
const shared = fast.filter((f) => !ownProcess(f));
const separate = [...(shared.length === 1 ? shared : []), ...fast.filter(ownProcess), ...slow];
const extra = process.env.RLHF_TEST_ARGS ? process.env.RLHF_TEST_ARGS.split(" ") : [];
// --test-force-exit: a process whose tests have all ended exits even if a handle it leaked (a child's
// pipe, a socket) would keep it alive; without it one leak hangs the whole suite until CI's limit.
const node = (args) => spawnSync(process.execPath, ["--import", "tsx", "--test-force-exit", ...extra, ...args], { stdio: "inherit" }).status ?? 1;

const codes = [];
if (shared.length > 1) {
  const dir = join("node_modules", ".cache", "run-tests");
  mkdirSync(dir, { recursive: true });
  const entry = join(dir, "fast-tests.cjs");
  writeFileSync(entry, sharedEntry(shared.map((f) => [f, resolve(f)])));
  codes.push(node([entry]));
}
if (separate.length > 0) codes.push(node(["--test", "--test-concurrency=1", `--test-timeout=${hangMs}`, ...separate]));
process.exit(codes.every((c) => c === 0) ? 0 : 1);

/** The entry file that runs `files` ([name, absolute path]) in one process, each in its own describe(). */
function sharedEntry(files) {
  return `// Generated by scripts/run-tests.mjs: the package's fast test files in one process.
const { after, before, describe, test } = require("node:test");
const base = { ...process.env };
function setEnv(env) {
  for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k];
  Object.assign(process.env, env);
}
for (const [name, path] of ${JSON.stringify(files, null, 1)}) {
  describe(name, { timeout: ${hangMs} }, () => {
    let own = base;
    before(() => setEnv(own)); // before the file's own hooks: they are registered after this one
    setEnv(base);
    try {
      require(path);
    } catch (e) {
      test("loads", () => {
        throw e;
      });
    }
    own = { ...process.env };
    setEnv(base);
    after(() => setEnv(base)); // after the file's own hooks
  });
}
`;
}
