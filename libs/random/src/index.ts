/**
 * Every seeded random-number generator of the platform, in one place. Each algorithm keeps its
 * own name because each stream is part of what a seed means (weights, data, minibatches, epochs):
 * - {@link Rng} (splitmix32; state one integer, saved with data cursors): data, labelers, batches;
 * - {@link Xoshiro128ss} (xoshiro128**, streams named by string): initial weights, sampling;
 * - {@link Mulberry32} with {@link mixSeed}: PPO's minibatch split;
 * - {@link epochPermutation} (xorshift32): the example order of an SFT / reward-model epoch.
 * `hashString` (FNV-1a, then mixed) and `fnv1a32` (FNV-1a alone) are distinct hashes on purpose.
 * Never Math.random: the same seed gives the same numbers on every engine and backend.
 */
export * from "./hash";
export * from "./splitmix";
export * from "./xoshiro";
export * from "./mulberry";
export * from "./xorshift";
