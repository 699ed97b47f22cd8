/**
 * IEEE 754 binary16 ("half") <-> binary32 conversion on typed arrays, by bit manipulation.
 *
 * float32 -> float16 rounds to nearest, ties to even, like a hardware conversion: results below
 * the smallest subnormal (2^-24) round to (signed) zero, subnormals are exact where representable,
 * finite values from 65520 up overflow to infinity, infinities stay infinities and NaNs stay NaNs
 * (quiet, sign and top payload bits kept). float16 -> float32 is exact.
 */

// Scratch views for the scalar functions; the array functions view their arguments directly.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Half bits of the float32 whose bit pattern is `x` (a uint32). */
function halfFromFloatBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    // Inf, or NaN with its top 10 payload bits; a NaN whose kept payload would be 0 becomes quiet.
    if (mant === 0) return sign | 0x7c00;
    return sign | 0x7c00 | (mant >>> 13 || 0x200);
  }
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // Half subnormal (or zero): value = m * 2^-24 with m = (1.mant) * 2^(e-14) before rounding.
    if (e < -10) return sign; // below half the smallest subnormal (or float32 zero/subnormal)
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let hm = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (hm & 1) !== 0)) hm++; // may carry into the smallest normal
    return sign | hm;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent; from the largest finite it gives infinity.
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++;
  return h;
}

/** float32 bit pattern (uint32) of the half with bits `h`. */
function floatBitsFromHalf(h: number): number {
  const sign = (h & 0x8000) << 16;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return (sign | 0x7f800000 | (m << 13)) >>> 0;
  if (e !== 0) return (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
  if (m === 0) return sign >>> 0;
  // Subnormal half: normalise the mantissa into a float32 normal.
  let exp = 113; // 1 - 15 + 127
  let mm = m;
  while ((mm & 0x400) === 0) {
    mm <<= 1;
    exp--;
  }
  return (sign | (exp << 23) | ((mm & 0x3ff) << 13)) >>> 0;
}

/** Half bits (0..65535) nearest to `v` (ties to even). */
export function toFloat16Bits(v: number): number {
  f32[0] = v;
  return halfFromFloatBits(u32[0]);
}

/** The number a half with bits `h` (0..65535) stands for. */
export function fromFloat16Bits(h: number): number {
  u32[0] = floatBitsFromHalf(h & 0xffff);
  return f32[0];
}

/**
 * Converts float32 values to half bits.
 *
 * @param src values to convert.
 * @param dst where to write (length >= src.length); default: a new Uint16Array.
 * @returns `dst`.
 */
export function float32ToFloat16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (dst.length < src.length) throw new RangeError(`float32ToFloat16: dst has ${dst.length} elements, src ${src.length}`);
  // A Float32Array's byteOffset is a multiple of 4, so a Uint32Array view of it always exists.
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i];
    const a = x & 0x7fffffff;
    if (a >= 0x38800000 && a < 0x477ff000) {
      // Result is a normal half (2^-14 <= |v| < 65520): rebias, then round to nearest even
      // without branches by adding 0xfff plus the lowest kept bit before truncating.
      dst[i] = ((x >>> 16) & 0x8000) | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
    } else {
      dst[i] = halfFromFloatBits(x);
    }
  }
  return dst;
}

/**
 * Converts half bits to float32 values (exactly).
 *
 * @param src half bit patterns.
 * @param dst where to write (length >= src.length); default: a new Float32Array.
 * @returns `dst`.
 */
export function float16ToFloat32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  if (dst.length < src.length) throw new RangeError(`float16ToFloat32: dst has ${dst.length} elements, src ${src.length}`);
  const table = halfTable();
  const out = new Uint32Array(dst.buffer, dst.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const e = h & 0x7c00;
    // Normal halves: shift into place and rebias (15 -> 127); zero, subnormals, inf and NaN: table.
    out[i] = e !== 0 && e !== 0x7c00 ? ((h & 0x8000) << 16) | (((h & 0x7fff) << 13) + 0x38000000) : table[h];
  }
  return dst;
}

let table: Uint32Array | undefined;

/** float32 bits of every half (256 KiB, built on first use) for the rare non-normal ones. */
function halfTable(): Uint32Array {
  if (table === undefined) {
    table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = floatBitsFromHalf(h);
  }
  return table;
}

/** Index of the first half in `src` that is NaN or infinite (exponent all ones), or -1. */
export function firstNonFiniteHalf(src: Uint16Array): number {
  for (let i = 0; i < src.length; i++) if ((src[i] & 0x7c00) === 0x7c00) return i;
  return -1;
}
