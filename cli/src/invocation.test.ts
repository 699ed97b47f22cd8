import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { cliEntryPoint } from "./run/session";
import { cliCommand } from "./invocation";

test("package.json's bin puts `rlhf` on PATH: a node script that loads the built main.js", () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, "..", "package.json"), "utf8")) as { bin?: Record<string, string> };
  // A committed file (pnpm links bins at install, before the build) that loads the built main.js.
  const bin = resolve(__dirname, "..", pkg.bin?.rlhf ?? "");
  const text = readFileSync(bin, "utf8");
  assert.equal(text.split("\n")[0], "#!/usr/bin/env node");
  assert.equal(resolve(dirname(bin), /require\("([^"]+)"\)/.exec(text)?.[1] ?? ""), cliEntryPoint());
  assert.equal(readFileSync(cliEntryPoint(), "utf8").split("\n")[0], "#!/usr/bin/env node");
});

test("the command to print: `rlhf` when started through the bin, `pnpm rlhf` otherwise", () => {
  const main = "/home/me/rlhf-platform/cli/dist/main.js";
  // pnpm rlhf ... (the root package.json's script)
  assert.equal(cliCommand({ npm_lifecycle_event: "rlhf", _: "/usr/bin/pnpm" }, main), "pnpm rlhf");
  // npm link: a symlink named rlhf
  assert.equal(cliCommand({}, "/usr/local/bin/rlhf"), "rlhf");
  // pnpm link --global: a shell shim runs node on the linked package's main.js
  assert.equal(cliCommand({ _: "/home/me/.local/share/pnpm/rlhf" }, main), "rlhf");
  assert.equal(cliCommand({ NODE_PATH: "/home/me/.local/share/pnpm/global/5/.pnpm/node_modules", _: "/usr/bin/node" }, main), "rlhf");
  // node cli/dist/main.js: not linked, so the repository's script
  assert.equal(cliCommand({ _: "/usr/bin/node" }, main), "pnpm rlhf");
});
