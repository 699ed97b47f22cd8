// The data generator and its helpers live in @rlhf/random (every seeded generator in one place).
export { Rng, hashString, hashedNormal, mix32, permutation, seedOf } from "@rlhf/random";
