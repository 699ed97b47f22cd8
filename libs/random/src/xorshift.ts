/** xorshift32 (Marsaglia): the order of the training examples of an SFT or reward-model epoch. */

/**
 * A seeded Fisher-Yates permutation of 0..n-1 from (seed, epoch): the order of an epoch's
 * examples. xorshift32 on the host, so it is the same on every backend.
 */
export function epochPermutation(n: number, seed: number, epoch: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  let x = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b) ^ Math.floor(seed / 2 ** 32)) >>> 0 || 1;
  for (let i = n - 1; i > 0; i--) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const j = x % (i + 1);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx;
}
