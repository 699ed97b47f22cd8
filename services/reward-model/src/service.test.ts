// run-tests: own process (it serves on the cpu backend; the package's other files use the default one, chosen once per process)
// The reward-model service on a real socket (127.0.0.1:0), called through the generated client.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import { common, rewardModel } from "@rlhf/proto";
import { createLogger, createClient, checkHealth, listServicesByReflection, type KitClient, statusText as statusOf, resultOrStatus as call } from "@rlhf/grpc-kit";
import { receiveTensorSet, modelConfigToProto, modelConfigFromProto } from "@rlhf/tensor-transport";
import { GPT2, ScalarHeadModel, saveCheckpoint, type GPT2Config } from "@rlhf/model";
import { startRewardModel, type RewardModelApp } from "./app";
import { loadConfig } from "./config";
import { testDeadlineMs, waitUntil } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "reward-model-test", level: "silent" });
const TINY: GPT2Config = { vocabSize: 40, nPositions: 16, nEmbd: 8, nLayer: 2, nHead: 2, layerNormEpsilon: 1e-5 };
const GOOD = 7; // chosen responses end with this token
const BAD = 9; // rejected ones with this

let app: RewardModelApp;
let client: KitClient<rewardModel.RewardModelServiceClient>;
let dir: string;

before(async () => {
  // The service's tensors live in its compute worker (app.memory()); the test's own reference
  // computations use this thread's backend.
  await initBackend({ backend: "cpu" });
  dir = mkdtempSync(join(tmpdir(), "rewardmodel-"));
  process.env.RLHF_BACKEND = "cpu";
  const cfg = loadConfig({ GRPC_PORT: "0", MAX_BATCH_SEQUENCES: "8", MAX_BATCH_TOKENS: "80", MAX_BATCH_GROUPS: "8", CHECKPOINT_ROOT: dir });
  app = await startRewardModel(cfg, log);
  client = createClient(rewardModel.RewardModelServiceClient, app.server.address, { deadlineMs: testDeadlineMs(60_000) });
});
after(async () => {
  client.close();
  await app.stop(1000);
});

const batchOf = (seqs: number[][], promptLengths: number[] = []): common.TokenBatch => ({ tokens: seqs.flat(), lengths: seqs.map((s) => s.length), promptLengths });
const randomInit = (seed: number) => ({ source: { $case: "randomInit" as const, randomInit: { config: modelConfigToProto(TINY), seed } } });

/** Runs a whole Train call; returns every response or the status string. */
async function runTrain(msgs: rewardModel.TrainRequest[], onProgress?: (p: rewardModel.TrainProgress) => void): Promise<rewardModel.TrainResponse[] | string> {
  const s = client.bidi("train");
  for (const m of msgs) s.write(m);
  s.end();
  const out: rewardModel.TrainResponse[] = [];
  try {
    for await (const m of s as AsyncIterable<rewardModel.TrainResponse>) {
      out.push(m);
      if (m.part?.$case === "progress") onProgress?.(m.part.progress);
    }
  } catch (e) {
    return statusOf(e);
  }
  return out;
}

/** A learnable task: the chosen response ends with GOOD, the rejected with BAD. */
function pairsData(n: number, offset = 0): rewardModel.ComparisonPair[] {
  return Array.from({ length: n }, (_, i) => {
    const p = [(i + offset) % 30, ((i + offset) * 7) % 30 + 1];
    const body = [((i + offset) * 3) % 20 + 10, ((i + offset) * 5) % 20 + 10];
    return { prompt: p, chosen: [...body, GOOD], rejected: [...body.slice(0, (i % 2) + 1), BAD] };
  });
}
const group = (prompt: number[], responses: number[][], ranks: number[]): rewardModel.ComparisonGroup => ({ prompt, responses: batchOf(responses), ranks });
const config = (over: Partial<rewardModel.TrainConfig> = {}): rewardModel.TrainRequest => ({
  part: {
    $case: "config",
    config: {
      epochs: 1,
      batchSize: 4,
      optimizer: { learningRate: 0.05, beta1: 0, beta2: 0, epsilon: 0, weightDecay: 0, maxGradNorm: 1 },
      schedule: common.LearningRateSchedule.LEARNING_RATE_SCHEDULE_CONSTANT,
      warmupSteps: 0,
      minLearningRate: 0,
      seed: 1,
      progressEverySteps: 1,
      ...over,
    },
  },
});
const comps = (b: Partial<rewardModel.ComparisonBatch>): rewardModel.TrainRequest => ({ part: { $case: "comparisons", comparisons: { groups: [], pairs: [], ...b } } });
const valComps = (b: Partial<rewardModel.ComparisonBatch>): rewardModel.TrainRequest => ({ part: { $case: "validationComparisons", validationComparisons: { groups: [], pairs: [], ...b } } });

test("started without a model: NOT_SERVING and FAILED_PRECONDITION; health and reflection are served", async () => {
  assert.equal(await checkHealth(app.server.address), "NOT_SERVING");
  assert.match(String(await call(client.unary("score", { sequences: batchOf([[1, 2]]) }))), /^FAILED_PRECONDITION: no model is loaded/);
  const info = await client.unary("getInfo", {});
  assert.equal(info.weights, undefined);
  assert.equal(info.backend, "cpu");
  const names = await listServicesByReflection(app.server.address);
  assert.ok(names.includes("rlhf.reward_model.v1.RewardModelService"));
});

test("LoadCheckpoint random_init: version 0, a zero head (every score 0), SERVING; bad sources change nothing", async () => {
  const r = await client.unary("loadCheckpoint", randomInit(3));
  assert.deepEqual(r.weights, { modelId: "reward-model", version: 0, source: "random:3" });
  assert.equal(r.config?.nEmbd, 8);
  assert.equal(await checkHealth(app.server.address), "SERVING");
  const s = await client.unary("score", { sequences: batchOf([[1, 2, 3], [4]]) });
  assert.deepEqual(s.scores, [0, 0]);
  assert.match(String(await call(client.unary("loadCheckpoint", { source: undefined }))), /^INVALID_ARGUMENT: source: set one of/);
  assert.match(String(await call(client.unary("loadCheckpoint", { source: { $case: "modelDir", modelDir: join(dir, "nope") } }))), /^NOT_FOUND: .*nope/);
  assert.match(String(await call(client.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: "/etc" } }))), /^PERMISSION_DENIED: checkpoint_dir: "\/etc" is outside CHECKPOINT_ROOT$/);
  assert.match(String(await call(client.unary("loadCheckpoint", { source: { $case: "randomInit", randomInit: { config: { ...modelConfigToProto(TINY), nHead: 3 }, seed: 1 } } }))), /^INVALID_ARGUMENT: random_init\.config\.n_embd/);
  assert.match(String(await call(client.unary("loadCheckpoint", { source: { $case: "policyWeights", policyWeights: { modelId: "policy", version: 1, source: "" } } }))), /^FAILED_PRECONDITION: policy_weights: POLICY_ADDR/);
  const info = await client.unary("getInfo", {});
  assert.equal(info.weights?.source, "random:3");
  assert.equal(info.maxBatchSequences, 8);
  assert.equal(info.maxBatchGroups, 8);
});

test("Score: bad input gets INVALID_ARGUMENT naming the field and the limit, and leaks nothing", async () => {
  const before = (await app.memory()).numTensors;
  const cases: [common.TokenBatch | undefined, RegExp][] = [
    [batchOf([[1, 2, 40]]), /^INVALID_ARGUMENT: sequences\.tokens\[2\]: id 40 is outside the vocabulary \[0, 40\)$/],
    [batchOf([[1, -1]]), /sequences\.tokens\[1\]: id -1 is outside/],
    [{ tokens: [1, 2], lengths: [2, 0], promptLengths: [] }, /sequences\.lengths\[1\]: empty sequence/],
    [batchOf([Array(17).fill(1)]), /sequences\.lengths\[0\]: 17 tokens exceed the context length of 16/],
    [batchOf([[1], [1], [1], [1], [1], [1], [1], [1], [1]]), /sequences\.lengths: 9 sequences exceed the limit of 8/],
    [batchOf(Array(6).fill(Array(16).fill(2))), /sequences\.tokens: 96 tokens exceed the limit of 80/],
    [batchOf([[1, 2], [3, 4, 5]], [1, 3]), /sequences\.prompt_lengths\[1\]: 3 leaves no response token/],
    [{ tokens: [], lengths: [], promptLengths: [] }, /sequences\.lengths: must hold at least one sequence/],
    [undefined, /sequences: is required/],
  ];
  for (const [sequences, re] of cases) {
    const got = await call(client.unary("score", { sequences }));
    assert.equal(typeof got, "string", `accepted: ${JSON.stringify(sequences)}`);
    assert.match(got as string, /^INVALID_ARGUMENT: /);
    assert.match(got as string, re);
  }
  assert.equal((await app.memory()).numTensors, before);
});

test("Train: bad streams get INVALID_ARGUMENT naming the field, and change nothing, nor does a cancelled one", async () => {
  const v0 = (await client.unary("getInfo", {})).weights?.version;
  const ok = comps({ pairs: pairsData(2) });
  const cases: [rewardModel.TrainRequest[], RegExp][] = [
    [[ok], /^INVALID_ARGUMENT: requests\[0\]\.comparisons: the first message must be the config/],
    [[config()], /^INVALID_ARGUMENT: comparisons: no training comparisons were sent/],
    [[config(), ok, config()], /^INVALID_ARGUMENT: requests\[2\]\.config: the config must be sent exactly once/],
    [[config({ epochs: 0 }), ok], /^INVALID_ARGUMENT: config\.epochs: must be in 1\.\.100/],
    [[config({ batchSize: 9 }), ok], /^INVALID_ARGUMENT: config\.batch_size: must be in 1\.\.8, got 9/],
    [[config({ optimizer: { learningRate: 0, beta1: 0, beta2: 0, epsilon: 0, weightDecay: 0, maxGradNorm: 0 } }), ok], /config\.optimizer\.learning_rate: must be in \(0, 1\]/],
    [[config(), comps({ groups: [group([1], [[2, 3]], [0])] })], /^INVALID_ARGUMENT: requests\[1\]\.comparisons\.groups\[0\]\.responses\.lengths: a group needs 2\.\.16 responses, got 1/],
    [[config(), comps({ groups: [group([1], [[2], [3], [4]], [0, 1])] })], /requests\[1\]\.comparisons\.groups\[0\]\.ranks: has 2 entries but there are 3 responses/],
    [[config(), comps({ groups: [group([], [[2], [3]], [0, 1])] })], /groups\[0\]\.prompt: needs at least 1 token/],
    [[config(), comps({ groups: [group([1], [[2], [40]], [0, 1])] })], /groups\[0\]\.responses\.tokens\[1\]: id 40 is outside the vocabulary/],
    [[config(), comps({ groups: [group(Array(10).fill(1), [[2], Array(7).fill(3)], [0, 1])] })], /groups\[0\]\.responses\.lengths\[1\]: prompt \+ response is 17 tokens, more than the context length of 16/],
    [[config(), comps({ pairs: [{ prompt: [1], chosen: [], rejected: [2] }] })], /requests\[1\]\.comparisons\.pairs\[0\]\.chosen: needs at least 1 token/],
    [[config(), valComps({ pairs: [{ prompt: [1], chosen: [2], rejected: [99] }] }), ok], /requests\[1\]\.validation_comparisons\.pairs\[0\]\.rejected\[0\]: id 99/],
    [[config(), comps({ groups: [group([1], [[2], [3]], [0, 99])] })], /^INVALID_ARGUMENT: requests\[1\]\.comparisons\.groups\[0\]\.ranks\[1\]: is 99, more than K = 2: a rank is 0\.\.K/],
    [[config(), comps({ groups: [group([1], [[2], [3]], [2, 2])] })], /^INVALID_ARGUMENT: comparisons: no group has an untied pair/],
  ];
  for (const [msgs, re] of cases) {
    const got = await runTrain(msgs);
    assert.equal(typeof got, "string", `accepted: ${JSON.stringify(msgs)}`);
    assert.match(got as string, re);
  }
  // A good request whose client cancels before it half-closes trains nothing.
  const ac = new AbortController();
  const s = client.bidi("train", { signal: ac.signal });
  const ended = new Promise<string>((resolve) => {
    s.on("data", () => undefined);
    s.on("error", (e) => resolve(statusOf(e)));
    s.on("status", (st: { code: number }) => st.code === 0 && resolve("OK"));
  });
  s.write(config());
  s.write(ok);
  await new Promise((r) => setTimeout(r, 50));
  ac.abort();
  assert.match(await ended, /^CANCELLED/);
  assert.equal((await client.unary("getInfo", {})).weights?.version, v0, "no step was taken");
});

test("Train on pairs and K-way groups: progress per step, the version counts the steps, held-out accuracy rises; no leaks", async () => {
  await client.unary("loadCheckpoint", randomInit(5));
  const before = (await app.memory()).numTensors;
  const held = { pairs: pairsData(4, 100) };
  const acc0 = await client.unary("accuracy", { comparisons: { groups: [], ...held } });
  assert.equal(acc0.pairs, 4);
  assert.equal(acc0.scoreTies, 4, "the zero head scores everything 0: ties, not correct");
  assert.equal(acc0.correct, 0);
  // 12 pairs + 3 groups (one with a tie, one all-tied and skipped) = 15 groups, 14 usable
  const groups = [
    group([3, 4], [[11, GOOD], [12, BAD], [13, 14, GOOD], [BAD]], [0, 2, 1, 3]),
    group([5], [[GOOD], [BAD], [15, BAD]], [0, 1, 1]),
    group([6], [[GOOD], [BAD]], [2, 2]),
  ];
  const progress: rewardModel.TrainProgress[] = [];
  const res = await runTrain([config({ epochs: 4, batchSize: 4 }), comps({ pairs: pairsData(12), groups: groups.slice(0, 2) }), comps({ groups: [groups[2]] }), valComps(held)], (p) => progress.push(p));
  assert.ok(Array.isArray(res), String(res));
  const msgs = res as rewardModel.TrainResponse[];
  const done = msgs[msgs.length - 1].part;
  assert.equal(done?.$case, "done");
  if (done?.$case !== "done") return;
  const stepsPerEpoch = Math.ceil(14 / 4);
  assert.equal(done.done.steps, 4 * stepsPerEpoch);
  assert.equal(done.done.groups, 14);
  assert.equal(done.done.pairs, 12 + 6 + 2, "12 pairs + C(4,2) + 2 untied pairs of the tied group");
  assert.equal(done.done.weights?.version, 4 * stepsPerEpoch, "one version per optimiser step");
  assert.equal(progress.length, 4 * stepsPerEpoch);
  assert.deepEqual(progress.map((p) => p.step), Array.from({ length: 16 }, (_, i) => i + 1));
  assert.ok(progress.every((p) => p.totalSteps === 16 && p.epochs === 4 && Number.isFinite(p.loss) && p.learningRate > 0));
  assert.deepEqual(progress.filter((p) => p.validationLoss !== undefined).map((p) => p.step), [4, 8, 12, 16], "validation at each epoch's end");
  assert.ok(progress[progress.length - 1].loss < progress[0].loss, `loss falls: ${progress[0].loss} -> ${progress[progress.length - 1].loss}`);
  const acc = await client.unary("accuracy", { comparisons: { groups: [], ...held } });
  assert.equal(acc.accuracy, 1, "held-out pairs are all ranked right after training");
  assert.ok(Math.abs((done.done.validationAccuracy ?? -1) - acc.accuracy) < 1e-6);
  assert.ok(Math.abs((done.done.validationLoss ?? -1) - acc.loss) < 1e-4);
  assert.equal((await app.memory()).numTensors, before, "the optimiser's moments and gradients are freed");
});

test("Score reads the last real token of each sequence, unaffected by the batch's padding, and matches StreamWeights' tensors", async () => {
  const seqs = [[1, 2, 3, GOOD], [4, BAD], [5, 6, 7, 8, 9, 10, 11, 12, 13, GOOD]];
  const batch = await client.unary("score", { sequences: batchOf(seqs) });
  for (let i = 0; i < seqs.length; i++) {
    const alone = await client.unary("score", { sequences: batchOf([seqs[i]]) });
    assert.ok(Math.abs(alone.scores[0] - batch.scores[i]) < 1e-5, `seq ${i}: ${alone.scores[0]} vs ${batch.scores[i]}`);
  }
  assert.ok(batch.scores[0] > batch.scores[1], "trained: GOOD ending beats BAD ending");
  const withPrompt = await client.unary("score", { sequences: batchOf(seqs, [2, 1, 5]) });
  assert.deepEqual(withPrompt.scores, batch.scores, "prompt_lengths do not move the read position");
  // Independently: a local model from the streamed tensors, its per-token values at length - 1.
  const stream = client.serverStream("streamWeights", { dtype: common.Dtype.DTYPE_FLOAT32 });
  const set = await receiveTensorSet(stream, (m: rewardModel.StreamWeightsResponse) => m.chunk, { expectKind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS });
  assert.equal(set.weights?.modelId, "reward-model");
  assert.equal(set.weights?.version, batch.weights?.version);
  assert.ok(set.tensors.has("score.weight") && set.tensors.has("score.bias"));
  const local = ScalarHeadModel.fromHostTensors(modelConfigFromProto(set.modelConfig), set.tensors);
  seqs.forEach((s, i) => {
    const v = tf.tidy(() => local.values(tf.tensor2d([s], [1, s.length], "int32")).dataSync());
    assert.ok(Math.abs(v[s.length - 1] - batch.scores[i]) < 1e-5);
    assert.ok(Math.abs(v[s.length - 2] - batch.scores[i]) > 1e-6, "not some other position");
  });
  local.dispose();
  assert.match(String(await call(receiveTensorSet(client.serverStream("streamWeights", { dtype: common.Dtype.DTYPE_UNSPECIFIED }), (m) => m.chunk))), /^INVALID_ARGUMENT: dtype: must be DTYPE_FLOAT32 or DTYPE_FLOAT16/);
  assert.match(String(await call(receiveTensorSet(client.serverStream("streamWeights", { dtype: common.Dtype.DTYPE_FLOAT16, version: 12345 }), (m) => m.chunk))), /^NOT_FOUND: version: 12345 is not the current version/);
});

test("Accuracy counts untied pairs only, agrees with Score, and validates its input", async () => {
  const g = group([2], [[GOOD], [BAD], [3, GOOD]], [0, 1, 1]); // pairs (0,1), (0,2); (1,2) tied
  const pair = { prompt: [4], chosen: [BAD], rejected: [GOOD] }; // labelled the wrong way round
  const acc = await client.unary("accuracy", { comparisons: { groups: [g], pairs: [pair] } });
  const s = (await client.unary("score", { sequences: batchOf([[2, GOOD], [2, BAD], [2, 3, GOOD], [4, BAD], [4, GOOD]]) })).scores;
  const want = [s[0] > s[1], s[0] > s[2], s[3] > s[4]].filter(Boolean).length;
  assert.equal(acc.pairs, 3);
  assert.equal(acc.groups, 2);
  assert.equal(acc.correct, want);
  assert.ok(Math.abs(acc.accuracy - want / 3) < 1e-6);
  const sp = (d: number) => Math.log1p(Math.exp(-d));
  const loss = ((sp(s[0] - s[1]) + sp(s[0] - s[2])) / 2 + sp(s[3] - s[4])) / 2;
  assert.ok(Math.abs(acc.loss - loss) < 1e-4, `${acc.loss} vs ${loss}`);
  assert.match(String(await call(client.unary("accuracy", { comparisons: { groups: [], pairs: [] } }))), /^INVALID_ARGUMENT: comparisons: must hold at least one group or pair/);
  assert.match(String(await call(client.unary("accuracy", { comparisons: { groups: [], pairs: pairsData(5) } }))), /^INVALID_ARGUMENT: comparisons: 10 responses exceed the limit of 8/);
  assert.match(String(await call(client.unary("accuracy", { comparisons: { groups: [group([1], [[2], [3]], [0])], pairs: [] } }))), /comparisons\.groups\[0\]\.ranks: has 1 entries but there are 2 responses/);
  assert.match(String(await call(client.unary("accuracy", { comparisons: { groups: [group([1], [[2], [3], [4]], [1, 4, 3])], pairs: [] } }))), /comparisons\.groups\[0\]\.ranks\[1\]: is 4, more than K = 3/);
});

test("Normalize: the references then average 0, a repeat changes nothing more, the version +1 each; a cancelled stream changes nothing", async () => {
  const refs = [[1, 2, GOOD], [3, BAD], [4, 5, 6, GOOD], [7, 8]];
  const info0 = await client.unary("getInfo", {});
  const n = client.clientStream("normalize");
  await n.write({ references: batchOf(refs.slice(0, 2)) });
  await n.write({ references: batchOf(refs.slice(2)) });
  const r = await n.end();
  assert.equal(r.count, 4);
  assert.ok(Math.abs(r.meanBefore) > 1e-3, "the trained model does not already average 0");
  assert.ok(Math.abs(r.biasDelta + r.meanBefore) < 1e-6);
  assert.ok(Math.abs(r.bias - (info0.bias + r.biasDelta)) < 1e-5);
  assert.equal(r.weights?.version, (info0.weights?.version ?? 0) + 1);
  const after = (await client.unary("score", { sequences: batchOf(refs) })).scores;
  assert.ok(Math.abs(after.reduce((a, b) => a + b, 0) / 4) < 1e-5, `mean ${after}`);
  assert.ok(Math.abs(r.meanAfter) < 1e-5);
  const again = client.clientStream("normalize");
  await again.write({ references: batchOf(refs) });
  const r2 = await again.end();
  assert.ok(Math.abs(r2.biasDelta) < 1e-5);
  assert.ok(Math.abs(r2.std - r.std) < 1e-5);
  assert.equal((await client.unary("getInfo", {})).bias, r2.bias);
  assert.match(String(await call(client.clientStream("normalize").end())), /^INVALID_ARGUMENT: references: send at least one reference sequence/);
  const bad = client.clientStream("normalize");
  await bad.write({ references: batchOf([[1, 2]]) });
  await call(bad.write({ references: batchOf([[1, 41]]) }));
  assert.match(String(await call(bad.end())), /^INVALID_ARGUMENT: requests\[1\]\.references\.tokens\[1\]: id 41/);
  // Cancelled before it half-closed: the bias and the version stay.
  const before = await client.unary("getInfo", {});
  const ac = new AbortController();
  const gone = client.clientStream("normalize", { signal: ac.signal });
  await gone.write({ references: batchOf([[1, 2, BAD], [3, BAD]]) });
  await new Promise((r) => setTimeout(r, 50));
  ac.abort();
  assert.match(String(await call(gone.end())), /^CANCELLED/);
  const info = await client.unary("getInfo", {});
  assert.equal(info.bias, before.bias);
  assert.equal(info.weights?.version, before.weights?.version);
});

test("SaveCheckpoint / LoadCheckpoint round trip (head, bias and version), idempotent save, ALREADY_EXISTS; model_dir gets a zero head", async () => {
  const seqs = [[1, 2, GOOD], [3, BAD]];
  const want = await client.unary("score", { sequences: batchOf(seqs) });
  const ck = join(dir, "ckpt", "rm");
  const saved = await client.unary("saveCheckpoint", { dir: ck });
  assert.equal(saved.dir, ck);
  assert.ok(saved.bytesWritten > 0);
  assert.deepEqual(readdirSync(ck).sort(), ["config.json", "model.safetensors", "state.json"]);
  assert.equal((await client.unary("saveCheckpoint", { dir: ck })).bytesWritten, 0, "same version again: nothing written");
  await client.unary("loadCheckpoint", randomInit(8));
  assert.deepEqual((await client.unary("score", { sequences: batchOf(seqs) })).scores, [0, 0]);
  assert.match(String(await call(client.unary("saveCheckpoint", { dir: ck }))), /^ALREADY_EXISTS: dir: .* holds no checkpoint of version 0/);
  assert.match(String(await call(client.unary("saveCheckpoint", { dir: "/tmp/elsewhere" }))), /^PERMISSION_DENIED: dir: .*outside CHECKPOINT_ROOT$/);
  const back = await client.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: ck } });
  assert.equal(back.weights?.version, want.weights?.version);
  assert.deepEqual((await client.unary("score", { sequences: batchOf(seqs) })).scores, want.scores);
  // A plain LM folder: trunk kept, new zero head; it is not a reward-model checkpoint.
  const lmDir = join(dir, "lm");
  const lm = GPT2.random(TINY, 4);
  await saveCheckpoint(lm, lmDir);
  lm.dispose();
  assert.match(String(await call(client.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: lmDir } }))), /^INVALID_ARGUMENT: checkpoint_dir: .*not a reward-model checkpoint/);
  const fromLm = await client.unary("loadCheckpoint", { source: { $case: "modelDir", modelDir: lmDir } });
  assert.equal(fromLm.weights?.version, 0);
  assert.deepEqual((await client.unary("score", { sequences: batchOf(seqs) })).scores, [0, 0]);
});

test("every folder a request names stays inside CHECKPOINT_ROOT: `..`, absolute paths, symlinks and NUL bytes are refused", async () => {
  await client.unary("loadCheckpoint", randomInit(9));
  const outside = mkdtempSync(join(tmpdir(), "rewardmodel-outside-"));
  symlinkSync(outside, join(dir, "link-out"));
  for (const p of [join(dir, "..", basename(outside), "ck"), join(outside, "ck"), join(dir, "link-out", "ck"), "/etc"]) {
    assert.match(String(await call(client.unary("saveCheckpoint", { dir: p }))), /^PERMISSION_DENIED: dir: ".*" is outside CHECKPOINT_ROOT$/, p);
    assert.match(String(await call(client.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: p } }))), /^PERMISSION_DENIED: checkpoint_dir: .* is outside CHECKPOINT_ROOT$/, p);
    assert.match(String(await call(client.unary("loadCheckpoint", { source: { $case: "modelDir", modelDir: p } }))), /^PERMISSION_DENIED: model_dir: .* is outside CHECKPOINT_ROOT$/, p);
  }
  assert.deepEqual(readdirSync(outside), [], "nothing was written outside the root");
  assert.equal(String(await call(client.unary("saveCheckpoint", { dir: join(dir, "a\0b") }))), "INVALID_ARGUMENT: dir: contains a NUL byte");
  assert.equal(String(await call(client.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: `${dir}/x\0` } }))), "INVALID_ARGUMENT: checkpoint_dir: contains a NUL byte");
  assert.equal(String(await call(client.unary("loadCheckpoint", { source: { $case: "modelDir", modelDir: "\0" } }))), "INVALID_ARGUMENT: model_dir: contains a NUL byte");
  assert.equal(String(await call(client.unary("saveCheckpoint", { dir: "" }))), "INVALID_ARGUMENT: dir: is empty");
});

test("a Train call holds the bounded queue: calls beyond its capacity get RESOURCE_EXHAUSTED", async () => {
  const cfg = loadConfig({ GRPC_PORT: "0", QUEUE_CAPACITY: "1", INIT_PRESET: "tiny" });
  const app2 = await startRewardModel({ ...cfg }, log);
  const c2 = createClient(rewardModel.RewardModelServiceClient, app2.server.address, { deadlineMs: testDeadlineMs(60_000) });
  try {
    await c2.unary("loadCheckpoint", randomInit(1));
    const s = c2.bidi("train");
    s.write(config({ epochs: 20, batchSize: 1 }));
    s.write(comps({ pairs: pairsData(4) }));
    s.end();
    const it = (s as AsyncIterable<rewardModel.TrainResponse>)[Symbol.asyncIterator]();
    const first = await it.next(); // training is under way and holds the queue
    assert.equal(first.value?.part?.$case, "progress");
    assert.equal((await c2.unary("getInfo", {})).training, true);
    const waiting = c2.unary("score", { sequences: batchOf([[1, 2]]) });
    await waitUntil(async () => (await c2.unary("getInfo", {})).queueDepth === 2, "the score call waiting behind the training");
    assert.match(String(await call(c2.unary("score", { sequences: batchOf([[1, 2]]) }))), /^RESOURCE_EXHAUSTED: reward-model compute queue is full/);
    s.cancel(); // stops after the current step
    await call((async () => {
      for (;;) if ((await it.next()).done) return;
    })());
    const w = await waiting;
    assert.equal(w.scores.length, 1);
    const v = w.weights?.version ?? 0;
    assert.ok(v >= 1 && v < 80, `stopped early at version ${v}`);
  } finally {
    c2.close();
    await app2.stop(500);
  }
});
