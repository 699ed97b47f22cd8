import { test } from "node:test";
import assert from "node:assert/strict";
import { firstNonFiniteHalf, float16ToFloat32, float32ToFloat16, fromFloat16Bits, toFloat16Bits } from "./fp16";

/** Independent reference: the half value of bits `h` from the IEEE formula, in float64. */
function halfValue(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

test("known values encode to the expected half bits", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff], // largest finite
    [65519.99, 0x7bff], // just below the rounding midpoint
    [65520, 0x7c00], // midpoint between 65504 and 65536: ties to even -> infinity
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal, 6.103515625e-5
    [6.1e-5, 0x03ff], // largest subnormal, 6.097555160522461e-5
    [2 ** -24, 0x0001], // smallest subnormal
    [-(2 ** -24), 0x8001],
    [2 ** -25, 0x0000], // half the smallest subnormal: tie -> even (0)
    [2 ** -25 * 1.0001, 0x0001],
    [3 * 2 ** -25, 0x0002], // 1.5 subnormal steps: tie -> even (2)
    [1e-10, 0x0000],
    [-1e-10, 0x8000],
    [0.1, 0x2e66],
    [0.333333343267, 0x3555],
  ];
  for (const [v, bits] of cases) {
    assert.equal(toFloat16Bits(v).toString(16), bits.toString(16), `toFloat16Bits(${v})`);
  }
  assert.equal(fromFloat16Bits(0x2e66), 0.0999755859375);
  assert.equal(fromFloat16Bits(0x0001), 2 ** -24);
  assert.equal(fromFloat16Bits(0x03ff), 6.097555160522461e-5);
  assert.equal(fromFloat16Bits(0x7bff), 65504);
  assert.ok(Object.is(fromFloat16Bits(0x8000), -0));
  assert.equal(fromFloat16Bits(0xfc00), -Infinity);
});

test("NaN stays NaN (quiet, sign kept) both ways", () => {
  const h = toFloat16Bits(NaN);
  assert.equal(h & 0x7c00, 0x7c00);
  assert.notEqual(h & 0x3ff, 0);
  assert.ok(Number.isNaN(fromFloat16Bits(h)));
  // A float32 NaN whose payload lives only in the low 13 bits must not turn into infinity.
  const f = new Float32Array(new Uint32Array([0xff800001]).buffer);
  const out = float32ToFloat16(f)[0];
  assert.equal(out, 0xfe00);
  assert.ok(Number.isNaN(float16ToFloat32(new Uint16Array([0x7c01]))[0]));
});

test("all 65536 half bit patterns: decode matches the IEEE formula and re-encodes to the same bits", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const floats = float16ToFloat32(all);
  const back = float32ToFloat16(floats);
  for (let h = 0; h < 65536; h++) {
    const want = halfValue(h);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(floats[h]), `0x${h.toString(16)}`);
    else assert.ok(Object.is(floats[h], want), `0x${h.toString(16)}: ${floats[h]} vs ${want}`);
    assert.equal(back[h], h, `0x${h.toString(16)} round trip`);
    assert.equal(fromFloat16Bits(h), floats[h], `scalar 0x${h.toString(16)}`) ;
  }
});

test("round to nearest, ties to even, between every pair of adjacent finite halves", () => {
  // For each positive finite half h (and its successor), the float32 midpoint rounds to the even
  // one of the two, and values a hair either side round to the nearer one.
  const mids = new Float32Array(1);
  for (let h = 0; h < 0x7bff; h++) {
    const lo = halfValue(h);
    const hi = halfValue(h + 1);
    const mid = (lo + hi) / 2; // exact in float32: halves have 11 significant bits
    mids[0] = mid;
    assert.equal(mids[0], mid);
    const even = h % 2 === 0 ? h : h + 1;
    assert.equal(toFloat16Bits(mid), even, `midpoint of 0x${h.toString(16)}`);
    assert.equal(toFloat16Bits(-mid), even | 0x8000, `negative midpoint of 0x${h.toString(16)}`);
    const step = (hi - lo) / 8;
    assert.equal(toFloat16Bits(mid - step), h, `below midpoint of 0x${h.toString(16)}`);
    assert.equal(toFloat16Bits(mid + step), h + 1, `above midpoint of 0x${h.toString(16)}`);
  }
});

test("array conversion agrees with the scalar one on random float32 bit patterns, and writes into dst", () => {
  const n = 200_000;
  const bits = new Uint32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    bits[i] = s;
  }
  const floats = new Float32Array(bits.buffer);
  const dst = new Uint16Array(n + 3);
  assert.equal(float32ToFloat16(floats, dst), dst);
  for (let i = 0; i < n; i++) {
    // Reading a NaN into a JS number may quieten it, so the scalar path only promises NaN.
    if (Number.isNaN(floats[i])) assert.ok((dst[i] & 0x7c00) === 0x7c00 && (dst[i] & 0x3ff) !== 0);
    else assert.equal(dst[i], toFloat16Bits(floats[i]), `0x${bits[i].toString(16)}`);
  }
  // The array path keeps a NaN's sign and top payload bits exactly.
  assert.equal(float32ToFloat16(new Float32Array(new Uint32Array([0xffaa6000]).buffer))[0], 0xfd53);
  // Views with an offset into a larger buffer.
  const big = new Float32Array(10).fill(1.5);
  const view = big.subarray(3, 7);
  assert.deepEqual(Array.from(float32ToFloat16(view)), [0x3e00, 0x3e00, 0x3e00, 0x3e00]);
  assert.throws(() => float32ToFloat16(new Float32Array(4), new Uint16Array(3)), RangeError);
  assert.throws(() => float16ToFloat32(new Uint16Array(4), new Float32Array(3)), RangeError);
});

test("firstNonFiniteHalf finds infinities and NaNs only", () => {
  assert.equal(firstNonFiniteHalf(new Uint16Array([0x3c00, 0x7bff, 0xfbff, 0x0001])), -1);
  assert.equal(firstNonFiniteHalf(new Uint16Array([0x3c00, 0xfc00, 0x7e00])), 1);
  assert.equal(firstNonFiniteHalf(new Uint16Array([0x7e00])), 0);
});

// Speed is measured by `pnpm bench:fp16` (e2e/src/bench/fp16-throughput.ts), which prints ns per
// element and the ratio to a plain copy; a test asserts no duration.
test("a 4M-element array converts both ways, each element as the scalar conversion does", () => {
  const n = 4_000_000;
  const src = new Float32Array(n);
  for (let i = 0; i < n; i++) src[i] = (i % 1000) * 0.37 - 150;
  const h = float32ToFloat16(src);
  const back = float16ToFloat32(h);
  assert.equal(h.length, n);
  assert.equal(back.length, n);
  for (const i of [0, 1, 999, 1000, 123_457, n - 1]) {
    assert.equal(h[i], toFloat16Bits(src[i]), `encode [${i}]`);
    assert.equal(back[i], fromFloat16Bits(h[i]), `decode [${i}]`);
  }
});
