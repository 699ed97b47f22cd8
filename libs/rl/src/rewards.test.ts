import { test } from "node:test";
import assert from "node:assert/strict";
import { computeKlPenalizedRewards, type KlPenalizedRewardsInput } from "./rewards";
import { raggedToPadded } from "./layout";
import { assertAllClose, assertClose, assertInvalid } from "./testing/rl-asserts";

// Two sequences: 3 tokens ending with EOS, and 2 tokens cut at max_new_tokens (no EOS).
//   seq 0: logp [-1, -2, -0.5], ref [-1.5, -1, -0.5] -> k1 = [0.5, -1, 0], score 2
//   seq 1: logp [-0.2, -3],     ref [-0.4, -2]       -> k1 = [0.2, -1],    score -0.5
const input: KlPenalizedRewardsInput = {
  logprobs: [-1, -2, -0.5, -0.2, -3],
  logprobsRef: [-1.5, -1, -0.5, -0.4, -2],
  scores: [2, -0.5],
  eos: [true, false],
  lengths: [3, 2],
};

test("worked example: -beta*k1 per token, score and missing-EOS penalty on the last token", () => {
  const out = computeKlPenalizedRewards(input, { beta: 0.1, missingEosPenalty: -1 });
  assertAllClose(out.kl, [0.5, -1, 0, 0.2, -1]);
  // seq 0: [-0.1*0.5, -0.1*-1, -0.1*0 + 2]                = [-0.05, 0.1, 2]
  // seq 1: [-0.1*0.2, -0.1*-1 + (-0.5) + (-1) (no EOS)]  = [-0.02, -1.4]
  assertAllClose(out.rewards, [-0.05, 0.1, 2, -0.02, -1.4]);
  // KL sums: 0.5 - 1 + 0 = -0.5 and 0.2 - 1 = -0.8 (nats per sequence)
  assertAllClose(out.klSums, [-0.5, -0.8], 1e-12);
  assertClose(out.stats.meanTokenKl, -1.3 / 5, 1e-12, "meanTokenKl");
  assertClose(out.stats.meanSequenceKl, -0.65, 1e-12, "meanSequenceKl");
  assertClose(out.stats.meanScore, 0.75, 1e-12, "meanScore (before the penalty)");
  assertClose(out.stats.meanNonScoreReward, (-0.1 * -1.3) / 2, 1e-12, "meanNonScoreReward");
  assert.equal(out.stats.missingEosFraction, 0.5);
});

test("k1 signs: a token the policy likes more than the reference is penalised, less is rewarded", () => {
  const out = computeKlPenalizedRewards(
    { logprobs: [-1, -3, -2], logprobsRef: [-2, -1, -2], scores: [0], eos: [true], lengths: [3] },
    { beta: 0.5 },
  );
  assert.deepEqual(Array.from(out.kl), [1, -2, 0]);
  assert.ok(out.rewards[0] < 0 && out.rewards[1] > 0);
  assert.deepEqual(Array.from(out.rewards), [-0.5, 1, 0]);
  assert.ok(!Object.is(out.rewards[2], -0), "no negative zero");
});

test("the score lands on the last response token only, never on padding after EOS", () => {
  const out = computeKlPenalizedRewards(input, { beta: 0 });
  assert.deepEqual(Array.from(out.rewards), [0, 0, 2, 0, -0.5]);
  const padded = raggedToPadded(out.rewards, input.lengths, { maxLen: 4 });
  // Row 0 is EOS at position 2 then a pad; row 1 ends at position 1.
  assert.deepEqual(Array.from(padded.values), [0, 0, 2, 0, 0, -0.5, 0, 0]);
  // A one-token sequence carries its score on its only token.
  const one = computeKlPenalizedRewards(
    { logprobs: [-1], logprobsRef: [-1], scores: [3], eos: [true], lengths: [1] },
    { beta: 0.2 },
  );
  assert.deepEqual(Array.from(one.rewards), [3]);
});

test("the missing-EOS penalty is added only to sequences with eos false, on their last token", () => {
  const lengths = [2, 2, 1];
  const base = {
    logprobs: [-1, -1, -2, -2, -3],
    logprobsRef: [-1.1, -0.9, -2.2, -1.5, -3.5],
    scores: [0.3, 0.7, -0.2],
    eos: [false, true, false],
    lengths,
  };
  const without = computeKlPenalizedRewards(base, { beta: 0.05 });
  const withPenalty = computeKlPenalizedRewards(base, { beta: 0.05, missingEosPenalty: -1.5 });
  const diff = Array.from(withPenalty.rewards, (r, i) => r - without.rewards[i]);
  // Last tokens of sequences 0 and 2 (indices 1 and 4) only.
  assertAllClose(diff, [0, -1.5, 0, 0, -1.5]);
  assert.deepEqual(withPenalty.klSums, without.klSums, "the penalty is not KL");
  assert.equal(withPenalty.stats.meanScore, without.stats.meanScore, "meanScore is the raw RM score");
  assertClose(withPenalty.stats.missingEosFraction, 2 / 3, 1e-15);
});

test("stats: the per-sequence KL mean weighs sequences, the per-token mean weighs tokens", () => {
  // seq 0 has 4 tokens of k1 = 1, seq 1 has 1 token of k1 = 1: sums 4 and 1.
  const out = computeKlPenalizedRewards(
    { logprobs: [0, 0, 0, 0, 0], logprobsRef: [-1, -1, -1, -1, -1], scores: [1, 2], eos: [true, true], lengths: [4, 1] },
    { beta: 0.1 },
  );
  assert.deepEqual(out.klSums, [4, 1]);
  assert.equal(out.stats.meanSequenceKl, 2.5);
  assert.equal(out.stats.meanTokenKl, 1);
});

test("bad inputs throw InvalidArgumentError naming the field (and index)", () => {
  const opts = { beta: 0.1 };
  assertInvalid(() => computeKlPenalizedRewards({ ...input, logprobs: [-1, -2, -0.5, -0.2] }, opts), "logprobs");
  assertInvalid(() => computeKlPenalizedRewards({ ...input, logprobsRef: [-1, -2, -0.5, -0.2, -1, -1] }, opts), "logprobsRef");
  assertInvalid(() => computeKlPenalizedRewards({ ...input, scores: [1] }, opts), "scores");
  assertInvalid(() => computeKlPenalizedRewards({ ...input, eos: [true] }, opts), "eos");
  assertInvalid(() => computeKlPenalizedRewards({ ...input, lengths: [3, 1] }, opts), "logprobs");
  assertInvalid(() => computeKlPenalizedRewards({ ...input, lengths: [5, 0] }, opts), "lengths[1]");
  assertInvalid(() => computeKlPenalizedRewards({ ...input, lengths: [], scores: [], eos: [], logprobs: [], logprobsRef: [] }, opts), "lengths");
  assertInvalid(() => computeKlPenalizedRewards({ ...input, logprobs: [-1, -2, -0.5, NaN, -3] }, opts), "logprobs[3]");
  assertInvalid(() => computeKlPenalizedRewards({ ...input, logprobsRef: [-Infinity, -1, -0.5, -0.4, -2] }, opts), "logprobsRef[0]");
  assertInvalid(() => computeKlPenalizedRewards({ ...input, scores: [2, Infinity] }, opts), "scores[1]");
  assertInvalid(() => computeKlPenalizedRewards({ ...input, eos: [true, 1 as unknown as boolean] }, opts), "eos[1]");
  assertInvalid(() => computeKlPenalizedRewards(input, { beta: -0.1 }), "beta");
  assertInvalid(() => computeKlPenalizedRewards(input, { beta: NaN }), "beta");
  assertInvalid(() => computeKlPenalizedRewards(input, { beta: 0.1, missingEosPenalty: 1 }), "missingEosPenalty");
});
