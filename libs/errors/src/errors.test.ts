import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError, DomainError, check, checkRunId, isRunId, NotFoundError, RUN_ID_RULE } from "./index";

test("domain errors carry code, field and a message naming the field", () => {
  const e = new InvalidArgumentError("batch.lengths[2]", "must be >= 1, got 0");
  assert.ok(e instanceof DomainError);
  assert.equal(e.code, "INVALID_ARGUMENT");
  assert.equal(e.field, "batch.lengths[2]");
  assert.equal(e.message, "batch.lengths[2]: must be >= 1, got 0");
  assert.equal(e.name, "InvalidArgumentError");
  assert.equal(new NotFoundError("version", "no such version 7").code, "NOT_FOUND");
});

test("check throws only when the condition fails", () => {
  assert.doesNotThrow(() => check(1 < 2, "x", "never"));
  assert.throws(() => check(false, "temperature", "must be > 0"), /temperature: must be > 0/);
});

test("run ids: one rule (1..64 of [a-z0-9-]) for folders, subjects, metadata and spans", () => {
  for (const ok of ["a", "run-1", "x".repeat(64)]) assert.equal(checkRunId(ok, "run_id"), ok);
  for (const bad of ["", "A", "a.b", "a*", "a/b", "x".repeat(65), "é"]) {
    assert.equal(isRunId(bad), false, JSON.stringify(bad));
    assert.throws(() => checkRunId(bad, "minibatch.run_id"), (e: InvalidArgumentError) => e.field === "minibatch.run_id" && e.message.startsWith(`minibatch.run_id: must be ${RUN_ID_RULE}, got "`));
  }
  // A long bad value is quoted cut at 80 characters.
  assert.throws(() => checkRunId("Z".repeat(500), "run_id"), (e: Error) => e.message.length < 140);
});
