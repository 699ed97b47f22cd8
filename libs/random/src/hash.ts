/**
 * 32-bit hashes of numbers and strings, the building blocks of every generator's seeding. Only
 * integer operations (Math.imul, shifts): the same on every engine and platform.
 */

/** splitmix32 finaliser: a well-mixed 32-bit hash of a 32-bit value. */
export function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** FNV-1a over the UTF-16 code units of a string, then mixed: a 32-bit string hash. */
export function hashString(s: string): number {
  return mix32(fnv1a32(s));
}

/** FNV-1a over the UTF-16 code units of a string, unmixed (the stream names of {@link Xoshiro128ss}). */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** murmur3's 32-bit finaliser (without splitmix32's added constant: see {@link mix32}). */
export function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
