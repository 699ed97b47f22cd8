// Micro-batching changes memory, not results: scores and a training step with a tiny
// MICRO_BATCH_TOKENS equal those of one big forward pass.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { initBackend } from "@rlhf/compute";
import { createLogger } from "@rlhf/grpc-kit";
import type { GPT2Config } from "@rlhf/model";
import type { TrainingSettings } from "@rlhf/model";
import { RewardModel } from "./reward";
import type { RankedGroup } from "./ranking";

const log = createLogger({ service: "reward-test", level: "silent" });
const CFG: GPT2Config = { vocabSize: 30, nPositions: 16, nEmbd: 8, nLayer: 1, nHead: 2, layerNormEpsilon: 1e-5 };

before(async () => {
  await initBackend();
});

const groups: RankedGroup[] = Array.from({ length: 6 }, (_, i) => ({
  prompt: [1 + i, 2],
  responses: [[3, 4 + i, 5], [6, 7], [8 + i], [9, 10, 11, 12 - i]],
  ranks: [0, 1, 2, i % 2 === 0 ? 3 : 2],
}));

function model(budget: number): RewardModel {
  const rm = new RewardModel(log, { microBatchTokens: budget });
  rm.loadRandom(CFG, 5);
  return rm;
}

test("scores, held-out statistics and one training step are the same in micro-batches", async () => {
  const small = model(12); // about one group per forward
  const big = model(100_000); // everything in one forward
  const seqs = groups.flatMap((g) => g.responses.map((r) => [...g.prompt, ...r]));
  const a = small.score(seqs);
  const b = big.score(seqs);
  assert.ok(a.every((x, i) => Math.abs(x - b[i]) < 1e-6));
  // epsilon 1e-4: Adam turns a gradient that is zero up to float rounding (the head bias: every pair
  // adds +g and -g, summed in a backend-dependent order) into a step of +-lr; this keeps such noise
  // below the tolerance while real gradients (~1e-2) still move the weights.
  const settings: TrainingSettings = { epochs: 1, batchSize: 6, optimizer: { weightDecay: 0, epsilon: 1e-4 }, maxGradNorm: 0, schedule: { kind: "constant", lr: 0.05 }, seed: 1, progressEverySteps: 1 };
  const losses: number[] = [];
  await small.train(groups, [], settings, async (r) => void losses.push(r.loss));
  await big.train(groups, [], settings, async (r) => void losses.push(r.loss));
  assert.ok(Math.abs(losses[0] - losses[1]) < 1e-6, `loss ${losses[0]} vs ${losses[1]}`);
  const after = [small.score(seqs), big.score(seqs)];
  assert.ok(after[0].some((x, i) => Math.abs(x - a[i]) > 1e-4), "the step changed the scores");
  const diff = Math.max(...after[0].map((x, i) => Math.abs(x - after[1][i])));
  assert.ok(diff < 1e-5, `scores after the step differ by ${diff}`);
  const ea = small.evaluate(groups);
  const eb = big.evaluate(groups);
  assert.equal(ea.correct, eb.correct);
  assert.ok(Math.abs(ea.loss - eb.loss) < 1e-6);
  small.dispose();
  big.dispose();
});
