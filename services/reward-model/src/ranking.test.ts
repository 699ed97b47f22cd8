// The ranking loss on its own (no gRPC): against pair-at-a-time losses and hand-worked values,
// and the one-forward-per-group property.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import { GPT2, ScalarHeadModel, type GPT2Config } from "@rlhf/model";
import { groupedScores, pairLoss, pairStats, rankingLoss, rankingPairs, scoreSequences, type RankedGroup, type Scorer } from "./ranking";

const TINY: GPT2Config = { vocabSize: 40, nPositions: 16, nEmbd: 8, nLayer: 2, nHead: 2, layerNormEpsilon: 1e-5 };
let model: ScalarHeadModel;

before(async () => {
  await initBackend();
  const lm = GPT2.random(TINY, 3);
  model = ScalarHeadModel.fromLanguageModel(lm, 11); // random (non-zero) head
  lm.dispose();
});

/** Counts forward calls and rows while delegating to the real model. */
function spy(inner: Scorer): Scorer & { calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    scoresAt: (tokens, positions) => {
      calls.push(tokens.shape[0]);
      return inner.scoresAt(tokens, positions);
    },
  };
}

const G4: RankedGroup = { prompt: [1, 2, 3], responses: [[4, 5], [6], [7, 8, 9, 10], [11, 12, 13]], ranks: [2, 0, 3, 1] };

test("rankingPairs: winner first, ties skipped, only order matters", () => {
  assert.deepEqual(rankingPairs([2, 0, 3, 1]), [[1, 0], [0, 2], [3, 0], [1, 2], [1, 3], [3, 2]]);
  assert.deepEqual(rankingPairs([5, 5, 9]), [[0, 2], [1, 2]]);
  assert.deepEqual(rankingPairs([1, 1]), []);
  assert.deepEqual(rankingPairs([10, 20, 30]), rankingPairs([0, 1, 2]));
});

test("K = 4: the one-forward group loss equals the mean of the six pairwise losses computed one pair at a time", () => {
  const s = spy(model);
  const scores = groupedScores(s, [G4]);
  const loss = rankingLoss(scores, [G4]);
  const got = loss.dataSync()[0];
  tf.dispose([scores, loss]);
  assert.deepEqual(s.calls, [4], "one forward of K = 4 rows");
  // Independently: each pair as its own K = 2 group [winner, loser] with its own forward.
  const pairs = rankingPairs(G4.ranks);
  assert.equal(pairs.length, 6);
  let sum = 0;
  for (const [w, l] of pairs) {
    const g: RankedGroup = { prompt: G4.prompt, responses: [G4.responses[w], G4.responses[l]], ranks: [0, 1] };
    const sc = groupedScores(model, [g]);
    const pl = rankingLoss(sc, [g]);
    const [rw, rl] = sc.dataSync();
    sum += pl.dataSync()[0];
    assert.ok(Math.abs(pl.dataSync()[0] - pairLoss(rw - rl)) < 1e-5, "a pair's loss is -log sigmoid(r_w - r_l)");
    tf.dispose([sc, pl]);
  }
  assert.ok(Math.abs(got - sum / 6) < 1e-5, `${got} vs ${sum / 6}`);
  assert.ok(got > 0.1, "the loss is not trivially 0");
});

test("hand-worked values: ties skipped, batch loss is the mean over groups, all-tied groups left out", () => {
  // A scorer whose score is the id of the token it reads: tests the loss and the read position.
  const byId: Scorer = {
    scoresAt: (tokens, positions) => tf.tidy(() => tf.cast(tf.gather(tf.reshape(tokens, [-1]), tf.tensor1d(positions.map((p, b) => b * tokens.shape[1] + p), "int32")), "float32") as tf.Tensor1D),
  };
  const a: RankedGroup = { prompt: [9], responses: [[3], [1], [2]], ranks: [0, 1, 2] }; // scores 3, 1, 2
  const b: RankedGroup = { prompt: [9], responses: [[5, 1], [4]], ranks: [1, 0] }; // scores 1, 4: winner 4
  const tied: RankedGroup = { prompt: [9], responses: [[7], [8]], ranks: [3, 3] };
  const sp = (x: number) => Math.log1p(Math.exp(x)); // -log sigmoid(d) = softplus(-d)
  const la = (sp(-2) + sp(-1) + sp(1)) / 3; // pairs (0,1): d = 3 - 1; (0,2): d = 3 - 2; (1,2): d = 1 - 2
  const lb = sp(-3); // r_w - r_l = 4 - 1
  const scores = groupedScores(byId, [a, b, tied]);
  assert.deepEqual(Array.from(scores.dataSync()), [3, 1, 2, 1, 4, 7, 8], "read at each sequence's last real token, never a pad");
  const loss = rankingLoss(scores, [a, b, tied]);
  assert.ok(Math.abs(loss.dataSync()[0] - (la + lb) / 2) < 1e-6, `${loss.dataSync()[0]} vs ${(la + lb) / 2}`);
  const st = pairStats(scores.dataSync(), [a, b, tied]);
  assert.deepEqual({ groups: st.groups, pairs: st.pairs, correct: st.correct }, { groups: 2, pairs: 4, correct: 3 });
  assert.ok(Math.abs(st.loss - (la + lb) / 2) < 1e-9);
  tf.dispose([scores, loss]);
});

test("a batch of groups is one forward of sum(K) rows, with gradients, and leaks no tensors", () => {
  const groups: RankedGroup[] = [G4, { prompt: [2], responses: [[3], [4, 4], [5]], ranks: [0, 1, 1] }, { prompt: [7, 7], responses: [[1], [2]], ranks: [0, 1] }];
  const s = spy(model);
  const before = tf.memory().numTensors;
  const vars = [...model.parameters().values()];
  const { value, grads } = tf.variableGrads(() => rankingLoss(groupedScores(s, groups), groups), vars);
  assert.deepEqual(s.calls, [9], "4 + 3 + 2 rows in one call, not 2 * (6 + 2 + 1)");
  const gnorm = tf.tidy(() => tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))).dataSync()[0]);
  assert.ok(gnorm > 0, "the loss has a gradient");
  tf.dispose([value, ...Object.values(grads)]);
  assert.equal(tf.memory().numTensors, before);
});

test("scoreSequences: right padding does not change a sequence's score", () => {
  const short = [4, 5, 6];
  const long = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  const alone = scoreSequences(model, [short]);
  const padded = scoreSequences(model, [short, long]);
  assert.ok(Math.abs(alone.dataSync()[0] - padded.dataSync()[0]) < 1e-5);
  // and the value is the per-token value at the last real position
  const vals = tf.tidy(() => model.values(tf.tensor2d([short], [1, 3], "int32")));
  assert.ok(Math.abs(vals.dataSync()[2] - alone.dataSync()[0]) < 1e-5);
  assert.ok(Math.abs(vals.dataSync()[1] - alone.dataSync()[0]) > 1e-6, "position matters");
  tf.dispose([alone, padded, vals]);
});
