import { test } from "node:test";
import assert from "node:assert/strict";
import { checkLengths, checkRagged, lengthsFromMask, paddedToRagged, raggedToPadded, sequenceOffsets } from "./layout";
import { assertInvalid } from "./testing/rl-asserts";

// Batch of three sequences with 3, 1 and 2 response tokens.
const lengths = [3, 1, 2];
const ragged = [1, 2, 3, 4, 5, 6];

test("sequenceOffsets are prefix sums ending with the token count", () => {
  assert.deepEqual(sequenceOffsets(lengths), [0, 3, 4, 6]);
  assert.deepEqual(sequenceOffsets([]), [0]);
  assert.equal(checkLengths(lengths), 6);
});

test("raggedToPadded left-aligns each sequence, pads with 0 and masks exactly the real tokens", () => {
  const p = raggedToPadded(ragged, lengths);
  assert.equal(p.batchSize, 3);
  assert.equal(p.maxLen, 3);
  assert.deepEqual(Array.from(p.values), [1, 2, 3, 4, 0, 0, 5, 6, 0]);
  assert.deepEqual(Array.from(p.mask), [1, 1, 1, 1, 0, 0, 1, 1, 0]);

  const wide = raggedToPadded(ragged, lengths, { maxLen: 4, padValue: -1 });
  assert.deepEqual(Array.from(wide.values), [1, 2, 3, -1, 4, -1, -1, -1, 5, 6, -1, -1]);
  assert.deepEqual(Array.from(wide.mask), [1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0]);
});

test("paddedToRagged inverts raggedToPadded, ignores whatever the padding holds, keeps empty rows", () => {
  const p = raggedToPadded(ragged, lengths, { maxLen: 5 });
  const garbage = Float32Array.from(p.values);
  for (let k = 0; k < garbage.length; k++) if (p.mask[k] === 0) garbage[k] = NaN;
  const back = paddedToRagged(garbage, p.mask, p.batchSize, p.maxLen);
  assert.deepEqual(Array.from(back.values), ragged);
  assert.deepEqual(back.lengths, lengths);

  const withEmpty = raggedToPadded([7, 8, 9], [2, 0, 1]);
  assert.deepEqual(Array.from(withEmpty.values), [7, 8, 0, 0, 9, 0]);
  const r = paddedToRagged(withEmpty.values, withEmpty.mask, 3, 2);
  assert.deepEqual(r.lengths, [2, 0, 1]);
  assert.deepEqual(Array.from(r.values), [7, 8, 9]);
});

test("lengthsFromMask reads row lengths and rejects holes and non-0/1 entries by index", () => {
  assert.deepEqual(lengthsFromMask([1, 1, 0, 1, 0, 0], 2, 3), [2, 1]);
  assertInvalid(() => lengthsFromMask([1, 0, 1, 1, 1, 1], 2, 3), "mask[2]");
  assertInvalid(() => lengthsFromMask([1, 1, 1, 1, 0.5, 0], 2, 3), "mask[4]");
  assertInvalid(() => lengthsFromMask([1, 1, 1], 2, 3), "mask");
});

test("bad layouts are rejected with the field at fault", () => {
  assertInvalid(() => sequenceOffsets([2, -1]), "lengths[1]");
  assertInvalid(() => sequenceOffsets([2, 1.5]), "lengths[1]");
  assertInvalid(() => checkLengths([0, 2], "lengths", 1), "lengths[0]");
  assertInvalid(() => raggedToPadded([1, 2], lengths), "values");
  assertInvalid(() => raggedToPadded(ragged, lengths, { maxLen: 2 }), "maxLen");
  assertInvalid(() => raggedToPadded(ragged, lengths, { padValue: NaN }), "padValue");
  assertInvalid(() => paddedToRagged([1, NaN, 0], [1, 1, 0], 1, 3), "values[1]");
  assertInvalid(() => paddedToRagged([1, 2], [1, 1, 0], 1, 3), "values");
  assertInvalid(() => checkRagged([1, 2, Infinity, 4, 5, 6], lengths, "rewards"), "rewards[2]");
  assertInvalid(() => checkRagged([1, 2, 3], lengths, "rewards"), "rewards");
});
