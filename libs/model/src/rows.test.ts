import { test } from "node:test";
import assert from "node:assert/strict";
import { splitRows } from "./rows";

test("splitRows cuts a packed batch into its rows: views of typed arrays, copies of plain arrays", () => {
  const flat = Int32Array.from([1, 2, 3, 4, 5, 6]);
  const rows = splitRows(flat, [1, 3, 2]);
  assert.deepEqual(rows.map((r) => Array.from(r)), [[1], [2, 3, 4], [5, 6]]);
  assert.equal(rows[1].buffer, flat.buffer);
  const plain = [7, 8, 9];
  const p = splitRows(plain, [2, 1]);
  assert.deepEqual(p, [[7, 8], [9]]);
  p[0][0] = 0;
  assert.equal(plain[0], 7);
  assert.deepEqual(splitRows(new Float32Array(0), []), []);
});
