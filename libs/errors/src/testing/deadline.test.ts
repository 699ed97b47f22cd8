import { test } from "node:test";
import assert from "node:assert/strict";
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
