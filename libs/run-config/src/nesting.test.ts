import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_CONFIG_DEPTH, nestedDeeperThan } from "./nesting";

const nested = (levels: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = i % 2 === 0 ? [v] : { k: v };
  return v;
};

test("nestedDeeperThan counts levels of objects and lists, without recursion", () => {
  assert.equal(nestedDeeperThan(7, 0), false, "a scalar is 0 levels");
  assert.equal(nestedDeeperThan({}, 1), false);
  assert.equal(nestedDeeperThan({}, 0), true);
  assert.equal(nestedDeeperThan(nested(MAX_CONFIG_DEPTH), MAX_CONFIG_DEPTH), false);
  assert.equal(nestedDeeperThan(nested(MAX_CONFIG_DEPTH + 1), MAX_CONFIG_DEPTH), true);
  assert.equal(nestedDeeperThan({ a: 1, b: { c: [1, 2, nested(2)] } }, 5), false);
  assert.equal(nestedDeeperThan({ a: 1, b: { c: [1, 2, nested(3)] } }, 5), true, "the deepest branch counts, wherever it is");
  assert.equal(nestedDeeperThan(nested(200_000), MAX_CONFIG_DEPTH), true, "200,000 levels: no stack overflow");
});
