import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parseTimeoutScale, testDeadlineMs, TEST_TIMEOUT_SCALE, waitUntil } from "./deadline";

test("RLHF_TEST_TIMEOUT_SCALE: unset or empty is 1, a positive number is taken, anything else is one clear error", () => {
  assert.equal(parseTimeoutScale(undefined), 1);
  assert.equal(parseTimeoutScale(" "), 1);
  assert.equal(parseTimeoutScale("2.5"), 2.5);
  for (const bad of ["0", "-1", "abc", "Infinity", "2x"]) {
    assert.throws(() => parseTimeoutScale(bad), new RegExp(`^Error: RLHF_TEST_TIMEOUT_SCALE must be a positive number, got "${bad}"$`), bad);
  }
});

test("testDeadlineMs multiplies by this process's scale, to a whole millisecond", () => {
  assert.equal(testDeadlineMs(1000), Math.round(1000 * TEST_TIMEOUT_SCALE));
  assert.ok(Number.isInteger(testDeadlineMs(333)));
});

test("waitUntil resolves once the condition holds (sync or async), and names what it waited for on a hang", async () => {
  let n = 0;
  await waitUntil(() => ++n >= 3, "three checks", 60_000, 1);
  assert.equal(n, 3);
  await waitUntil(async () => true, "at once");
  await assert.rejects(waitUntil(() => false, "a condition that never holds", 0.01, 1), /^Error: gave up waiting after \d+ ms: a condition that never holds$/);
});

/**
 * The rule above, checked over the repository: in test files and test helpers, a deadline written
 * as a number (`timeout: 60_000`, `deadlineMs: 5000`, `Date.now() + 120_000`, `exitWithin(p,
 * 30_000)`) is a deadline RLHF_TEST_TIMEOUT_SCALE cannot stretch. A deadline that is itself what a
 * test checks (a call that must run out of time) says so with `// deadline under test`.
 */
test("every deadline written in a test or a test helper goes through testDeadlineMs", () => {
  const root = resolve(__dirname, "..", "..", "..", "..");
  const literal = /\b(?:timeout|timeoutMs|deadlineMs)\s*:\s*\d|Date\.now\(\)\s*\+\s*\d|\w*[wW]ithin\([^,()]+,\s*\d/;
  const isTestCode = (path: string) => /\.test\.ts$/.test(path) || /\/src\/(?:testing|fixtures)\//.test(path) || path.endsWith("/e2e/src/helpers.ts");
  const files: string[] = [];
  (function walk(dir: string) {
    for (const name of readdirSync(dir)) {
      if (name === "node_modules" || name === "dist" || name === "gen" || name.startsWith(".")) continue;
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".ts") && isTestCode(p)) files.push(p);
    }
  })(root);
  assert.ok(files.length > 100, `only ${files.length} test files found under ${root}`);
  const found = files.flatMap((f) =>
    readFileSync(f, "utf8")
      .split("\n")
      .flatMap((line, i) => (literal.test(line) && !/^\s*(\*|\/\/)/.test(line) && !line.includes("// deadline under test") ? [`${relative(root, f)}:${i + 1}: ${line.trim().slice(0, 120)}`] : [])),
  );
  assert.deepEqual(found, [], `deadlines that RLHF_TEST_TIMEOUT_SCALE cannot stretch:\n${found.join("\n")}`);
});
