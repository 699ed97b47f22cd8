import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng, hashString, hashedNormal, permutation, seedOf } from "./index";

test("same seed and stream give the same numbers; other seeds and streams differ", () => {
  const a = new Rng(42, "x");
  const b = new Rng(42, "x");
  const xs = Array.from({ length: 20 }, () => a.nextU32());
  assert.deepEqual(Array.from({ length: 20 }, () => b.nextU32()), xs);
  assert.notDeepEqual(Array.from({ length: 20 }, () => new Rng(43, "x").nextU32()), xs);
  assert.notEqual(new Rng(42, "y").nextU32(), new Rng(42, "x").nextU32());
  assert.notEqual(seedOf(1, "a", 2), seedOf(1, "a", 3));
  assert.notEqual(seedOf(2 ** 40), seedOf(0), "high bits of the seed count");
  assert.notEqual(hashString("ab"), hashString("ba"));
});

test("the state is the whole generator: saving and restoring it replays the stream", () => {
  const r = new Rng(7);
  r.nextU32();
  const saved = r.state;
  const next = [r.uniform(), r.normal(), r.int(10)];
  r.state = saved;
  assert.deepEqual([r.uniform(), r.normal(), r.int(10)], next);
});

test("int is uniform over its range and shuffle is a permutation", () => {
  const r = new Rng(1);
  const counts = new Array<number>(6).fill(0);
  for (let i = 0; i < 60000; i++) counts[r.int(6)]++;
  for (const c of counts) assert.ok(Math.abs(c - 10000) < 400, `bucket count ${c}`);
  const p = permutation(100, r);
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
  assert.notDeepEqual(p, Array.from({ length: 100 }, (_, i) => i));
  assert.throws(() => r.int(0), /n/);
});

test("normals have mean 0 and variance 1; hashed normals depend only on their key", () => {
  const r = new Rng(3);
  let s = 0;
  let s2 = 0;
  const n = 50000;
  for (let i = 0; i < n; i++) {
    const z = r.normal();
    s += z;
    s2 += z * z;
  }
  assert.ok(Math.abs(s / n) < 0.02, `mean ${s / n}`);
  assert.ok(Math.abs(s2 / n - 1) < 0.03, `variance ${s2 / n}`);
  assert.equal(hashedNormal(5, "a", 1), hashedNormal(5, "a", 1));
  assert.notEqual(hashedNormal(5, "a", 1), hashedNormal(5, "a", 2));
});
