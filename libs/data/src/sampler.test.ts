import { test } from "node:test";
import assert from "node:assert/strict";
import { EpochSampler } from "./sampler";

const items = Array.from({ length: 10 }, (_, i) => i);

test("each epoch is a permutation, epochs differ, and batches cross epoch boundaries", () => {
  const s = new EpochSampler(items, { seed: 3 });
  const e0 = s.next(10);
  const e1 = s.next(10);
  assert.deepEqual([...e0].sort((a, b) => a - b), items);
  assert.deepEqual([...e1].sort((a, b) => a - b), items);
  assert.notDeepEqual(e0, e1);
  assert.deepEqual(s.cursor, { epoch: 1, index: 10 });
  const t = new EpochSampler(items, { seed: 3 });
  assert.deepEqual([...t.next(7), ...t.next(7), ...t.next(6)], [...e0, ...e1]);
  assert.notDeepEqual(new EpochSampler(items, { seed: 4 }).next(10), e0);
  assert.deepEqual(new EpochSampler(items, { shuffle: false }).next(12), [...items, 0, 1]);
});

test("a sampler rebuilt from a saved cursor continues exactly", () => {
  const a = new EpochSampler(items, { seed: 9 });
  a.next(3);
  a.next(4);
  const saved = a.cursor;
  const rest = [a.next(5), a.next(8)];
  const b = new EpochSampler(items, { seed: 9, cursor: saved });
  assert.deepEqual([b.next(5), b.next(8)], rest);
  assert.throws(() => new EpochSampler(items, { cursor: { epoch: 0, index: 11 } }), /cursor.index/);
  assert.throws(() => new EpochSampler(items, { cursor: { epoch: -1, index: 0 } }), /cursor.epoch/);
  assert.throws(() => new EpochSampler([], {}), /empty/);
  assert.throws(() => a.next(0), /n/);
});
