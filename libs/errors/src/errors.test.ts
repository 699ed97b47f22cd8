import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError, DomainError, check, NotFoundError } from "./index";

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
