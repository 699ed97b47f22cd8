/**
 * Token batches travel packed (all sequences' ids concatenated, plus a length each, as in
 * common.TokenBatch); this cuts them back into rows.
 */

/**
 * The rows of a packed batch: row i is `flat[o_i .. o_i + lengths[i])`. A typed array gives views
 * (no copy); a plain array gives copies. `lengths` must add up to at most `flat.length`.
 */
export function splitRows<A extends Int32Array | Float32Array | number[]>(flat: A, lengths: readonly number[]): A[] {
  const out: A[] = [];
  let o = 0;
  for (const L of lengths) {
    out.push((Array.isArray(flat) ? flat.slice(o, o + L) : flat.subarray(o, o + L)) as A);
    o += L;
  }
  return out;
}
