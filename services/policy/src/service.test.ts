// The policy service on a real socket (127.0.0.1:0), called through the generated client.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, existsSync, readdirSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import { common, policy as policyPb } from "@rlhf/proto";
import { createLogger, createClient, checkHealth, listServicesByReflection, type KitClient, statusText as statusOf, resultOrStatus as call } from "@rlhf/grpc-kit";
import { receiveTensorSet, modelConfigToProto, modelConfigFromProto, encodeTensorSet } from "@rlhf/tensor-transport";
import { GPT2, ScalarHeadModel, Trainer, lmLoss, makeLmBatch, type GPT2Config } from "@rlhf/model";
import type { NamedHostTensors } from "@rlhf/compute";
import { ppoPolicyLoss, ppoValueLoss } from "@rlhf/rl";
import { startPolicy, type PolicyApp } from "./app";
import { loadConfig } from "./config";
import { testDeadlineMs, waitUntil } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "policy-test", level: "silent" });
// Byte tokenizer ids (EOS 256, PAD 257) fit a vocabulary of 260.
const TINY: GPT2Config = { vocabSize: 260, nPositions: 24, nEmbd: 16, nLayer: 2, nHead: 2, layerNormEpsilon: 1e-5 };
const EOS = 256;

let app: PolicyApp;
let client: KitClient<policyPb.PolicyServiceClient>;
let dir: string;

before(async () => {
  // The service's tensors live in its compute worker (app.memory()); the test's own reference
  // computations use this thread's backend.
  await initBackend({ backend: "cpu" });
  dir = mkdtempSync(join(tmpdir(), "policy-"));
  process.env.RLHF_BACKEND = "cpu";
  const cfg = loadConfig({ GRPC_PORT: "0", MAX_BATCH_SEQUENCES: "16", MAX_BATCH_TOKENS: "400", MAX_GENERATE_SEQUENCES: "32", MAX_NEW_TOKENS: "12", GENERATE_BATCH: "3", CHECKPOINT_ROOT: dir });
  app = await startPolicy(cfg, log);
  client = createClient(policyPb.PolicyServiceClient, app.server.address, { deadlineMs: testDeadlineMs(120_000) });
});
after(async () => {
  client.close();
  await app.stop(1000);
});

const batchOf = (seqs: number[][], promptLengths: number[] = []): common.TokenBatch => ({ tokens: seqs.flat(), lengths: seqs.map((s) => s.length), promptLengths });
const randomInit = (seed: number, config = TINY): policyPb.LoadCheckpointRequest => ({ source: { $case: "randomInit", randomInit: { config: modelConfigToProto(config), seed } } });
const opt = (lr: number, over: Partial<common.OptimizerConfig> = {}): common.OptimizerConfig => ({ learningRate: lr, beta1: 0, beta2: 0, epsilon: 0, weightDecay: 0, maxGradNorm: 0, ...over });
const hyper = (over: Partial<policyPb.PpoHyperparameters> = {}): policyPb.PpoHyperparameters => ({
  clipRange: 0.2,
  valueClipRange: 0.2,
  valueLossCoef: 0.5,
  entropyCoef: 0,
  temperature: 1,
  policyOptimizer: opt(1e-2, { maxGradNorm: 1 }),
  criticOptimizer: opt(1e-2, { maxGradNorm: 1 }),
  ...over,
});

async function weightsOf(model: policyPb.ModelKind, version?: number): Promise<{ tensors: NamedHostTensors; config: GPT2Config; weights?: common.WeightsRef }> {
  const s = client.serverStream("streamWeights", { model, version, dtype: common.Dtype.DTYPE_FLOAT32 });
  const set = await receiveTensorSet(s, (m: policyPb.StreamWeightsResponse) => m.chunk);
  return { tensors: set.tensors, config: modelConfigFromProto(set.modelConfig), weights: set.weights };
}
async function generateAll(req: Partial<policyPb.GenerateRequest>): Promise<policyPb.GenerateResponse[]> {
  const out: policyPb.GenerateResponse[] = [];
  for await (const m of client.serverStream("generate", { prompts: undefined, samplesPerPrompt: 0, temperature: 0, topK: 0, topP: 0, maxNewTokens: 4, seed: 0, ignoreEos: false, ...req })) {
    out.push(m as policyPb.GenerateResponse);
  }
  return out;
}
/** Writes a PpoUpdate stream: the minibatch, then optionally a gradient set. */
async function ppoUpdate(mb: policyPb.PpoMinibatch, ptx?: { tensors: NamedHostTensors; weights: common.WeightsRef }): Promise<policyPb.PpoUpdateResponse | string> {
  const s = client.clientStream("ppoUpdate");
  try {
    await s.write({ part: { $case: "minibatch", minibatch: mb } });
    if (ptx) {
      for (const chunk of encodeTensorSet(ptx.tensors, { kind: common.TensorSetKind.TENSOR_SET_KIND_GRADIENTS, weights: ptx.weights })) {
        await s.write({ part: { $case: "ptxGradients", ptxGradients: chunk } });
      }
    }
  } catch {
    // the server refused mid-stream: its status follows from end()
  }
  return call(s.end());
}
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

// Three sequences of different prompt and response lengths.
const SEQS = [
  [5, 6, 7, 8, 9, EOS],
  [10, 11, 12, 13],
  [20, 21, 22, 23, 24, 25, 26, EOS],
];
const PROMPTS = [2, 3, 4];
const N = SEQS.reduce((a, s, i) => a + s.length - PROMPTS[i], 0); // 4 + 1 + 4 = 9

test("started without a policy: NOT_SERVING and FAILED_PRECONDITION; health and reflection are served", async () => {
  assert.equal(await checkHealth(app.server.address), "NOT_SERVING");
  assert.match(String(await call(client.unary("evaluate", { sequences: batchOf(SEQS, PROMPTS), temperature: 0, skipValues: true }))), /^FAILED_PRECONDITION: no policy is loaded/);
  const info = await client.unary("getInfo", {});
  assert.equal(info.policyWeights, undefined);
  assert.equal(info.backend, "cpu");
  assert.equal(info.backendDetail, "cpu");
  assert.ok((await listServicesByReflection(app.server.address)).includes("rlhf.policy.v1.PolicyService"));
});

test("LoadCheckpoint random_init, then Evaluate equals an in-process forward of the streamed weights", async () => {
  const r = await client.unary("loadCheckpoint", randomInit(7));
  assert.deepEqual(r.policyWeights, { modelId: "policy", version: 0, source: "random:7" });
  assert.equal(r.criticWeights, undefined);
  assert.equal(await checkHealth(app.server.address), "SERVING");
  assert.equal((await client.unary("getInfo", {})).eosTokenId, EOS, "byte tokenizer's EOS by default");
  // No critic yet: values need skip_values.
  assert.match(String(await call(client.unary("evaluate", { sequences: batchOf(SEQS, PROMPTS), temperature: 0, skipValues: false }))), /^FAILED_PRECONDITION: no critic is loaded: call InitCritic/);
  const e = await client.unary("evaluate", { sequences: batchOf(SEQS, PROMPTS), temperature: 0.7, skipValues: true });
  assert.deepEqual(e.lengths, [4, 1, 4]);
  assert.equal(e.logprobs.length, N);
  assert.deepEqual(e.values, []);
  const w = await weightsOf(policyPb.ModelKind.MODEL_KIND_POLICY);
  const lm = GPT2.fromHostTensors(w.config, w.tensors);
  const ref = lm.tokenLogProbs({ tokens: Int32Array.from(SEQS.flat()), lengths: SEQS.map((s) => s.length) }, 0.7);
  lm.dispose();
  // Response slice of the L-1 layout: entries P-1..L-2.
  const expected = ref.flatMap((lp, i) => Array.from(lp.subarray(PROMPTS[i] - 1)));
  assert.ok(maxAbsDiff(e.logprobs, expected) < 1e-5, `max diff ${maxAbsDiff(e.logprobs, expected)}`);
});

test("Evaluate / StreamWeights: bad input gets INVALID_ARGUMENT or NOT_FOUND naming the field; nothing leaks", async () => {
  const before = (await app.memory()).numTensors;
  const ev = (b: common.TokenBatch, t = 0) => call(client.unary("evaluate", { sequences: b, temperature: t, skipValues: true }));
  assert.match(String(await ev(batchOf(SEQS))), /^INVALID_ARGUMENT: sequences\.prompt_lengths: is required/);
  assert.match(String(await ev(batchOf(SEQS, [0, 1, 1]))), /^INVALID_ARGUMENT: sequences\.prompt_lengths\[0\]: must be >= 1/);
  assert.match(String(await ev(batchOf([[1, 300]], [1]))), /^INVALID_ARGUMENT: sequences\.tokens\[1\]: id 300 is outside the vocabulary \[0, 260\)/);
  assert.match(String(await ev(batchOf([Array(25).fill(1)], [1]))), /^INVALID_ARGUMENT: sequences\.lengths\[0\]: 25 tokens exceed the context length of 24/);
  assert.match(String(await ev(batchOf(Array(17).fill([1, 2]), Array(17).fill(1)))), /^INVALID_ARGUMENT: sequences\.lengths: 17 sequences exceed the limit of 16/);
  assert.match(String(await ev(batchOf(SEQS, PROMPTS), 1000)), /^INVALID_ARGUMENT: temperature: must be in \[0\.01, 100\]/);
  const sw = (r: Partial<policyPb.StreamWeightsRequest>) => call(weightsOfRaw({ model: policyPb.ModelKind.MODEL_KIND_POLICY, dtype: common.Dtype.DTYPE_FLOAT32, ...r }));
  assert.match(String(await sw({ version: 5 })), /^NOT_FOUND: version: 5 is not the policy's current version \(0\)/);
  assert.match(String(await sw({ dtype: common.Dtype.DTYPE_UNSPECIFIED })), /^INVALID_ARGUMENT: dtype: must be DTYPE_FLOAT32 or DTYPE_FLOAT16/);
  assert.match(String(await sw({ model: policyPb.ModelKind.MODEL_KIND_UNSPECIFIED })), /^INVALID_ARGUMENT: model: must be MODEL_KIND_POLICY or MODEL_KIND_CRITIC/);
  assert.match(String(await sw({ model: policyPb.ModelKind.MODEL_KIND_CRITIC })), /^FAILED_PRECONDITION: no critic is loaded/);
  assert.equal((await app.memory()).numTensors, before);
});
async function weightsOfRaw(req: policyPb.StreamWeightsRequest): Promise<number> {
  let n = 0;
  for await (const _ of client.serverStream("streamWeights", req)) n++;
  return n;
}

test("Generate: K samples per prompt with EOS kept, log-probs equal Evaluate's, seeded, and bad input named", async () => {
  const before = (await app.memory()).numTensors;
  const prompts = batchOf([[1, 2, 3], [4], [5, 6]]);
  // GENERATE_BATCH is 3: the 6 rows run in two chunks, which must draw what one batch would.
  const msgs = await generateAll({ prompts, samplesPerPrompt: 2, temperature: 1.3, maxNewTokens: 6, seed: 11, eosTokenId: 40 });
  const again = await generateAll({ prompts, samplesPerPrompt: 2, temperature: 1.3, maxNewTokens: 6, seed: 11, eosTokenId: 40 });
  assert.deepEqual(again, msgs, "same request, same samples");
  assert.deepEqual(msgs.flatMap((m) => m.promptIndices).sort(), [0, 1, 2]);
  for (const m of msgs) {
    const seqs = m.sequences as common.TokenBatch;
    assert.equal(seqs.lengths.length, m.promptIndices.length * 2);
    assert.equal(m.weights?.version, 0);
    let o = 0;
    const tokens: number[][] = [];
    seqs.lengths.forEach((L, i) => {
      const t = seqs.tokens.slice(o, o + L);
      o += L;
      tokens.push(t);
      const R = L - seqs.promptLengths[i];
      assert.ok(R >= 1 && R <= 6);
      assert.equal(m.eos[i], t[L - 1] === 40, "eos flag says whether the last token is EOS");
      if (!m.eos[i]) assert.equal(R, 6, "a sample without EOS ran to max_new_tokens");
      assert.ok(!t.slice(seqs.promptLengths[i], L - 1).includes(40), "nothing after EOS");
    });
    const e = await client.unary("evaluate", { sequences: seqs, temperature: 1.3, skipValues: true });
    assert.ok(maxAbsDiff(e.logprobs, m.logprobs) < 1e-4, `generation and evaluation agree: ${maxAbsDiff(e.logprobs, m.logprobs)}`);
  }
  const other = await generateAll({ prompts, samplesPerPrompt: 2, temperature: 1.3, maxNewTokens: 6, seed: 12, eosTokenId: 40 });
  assert.notDeepEqual(other.map((m) => m.sequences), msgs.map((m) => m.sequences), "another seed, other samples");
  const ig = await generateAll({ prompts: batchOf([[1]]), samplesPerPrompt: 3, maxNewTokens: 5, ignoreEos: true });
  assert.deepEqual(ig[0].sequences?.lengths, [6, 6, 6]);
  assert.deepEqual(ig[0].eos, [false, false, false]);
  const gen = (r: Partial<policyPb.GenerateRequest>) => call(generateAll({ prompts: batchOf([[1, 2]]), maxNewTokens: 4, ...r }));
  assert.match(String(await gen({ samplesPerPrompt: 65 })), /^INVALID_ARGUMENT: samples_per_prompt: must be in 1\.\.64/);
  assert.match(String(await gen({ maxNewTokens: 13 })), /^INVALID_ARGUMENT: max_new_tokens: must be in 1\.\.12/);
  assert.match(String(await gen({ prompts: batchOf([Array(20).fill(1)]), maxNewTokens: 5 })), /^INVALID_ARGUMENT: prompts\.lengths\[0\]: 20 prompt tokens \+ max_new_tokens 5 exceed n_positions 24/);
  assert.match(String(await gen({ samplesPerPrompt: 8, prompts: batchOf(Array(5).fill([1])) })), /^INVALID_ARGUMENT: prompts\.lengths: 5 sequences exceed the limit of 4/);
  assert.match(String(await gen({ topP: 1.5 })), /^INVALID_ARGUMENT: top_p: must be in \(0, 1\]/);
  assert.match(String(await gen({ eosTokenId: 999 })), /^INVALID_ARGUMENT: eos_token_id: must be an id in 0\.\.259/);
  assert.equal((await app.memory()).numTensors, before);
});

test("Sft: loss on completion tokens only, one version per step, validation loss; bad streams named", async () => {
  await client.unary("loadCheckpoint", randomInit(7));
  const w0 = await weightsOf(policyPb.ModelKind.MODEL_KIND_POLICY);
  const examples = [
    [1, 2, 3, 50, 51, EOS],
    [4, 5, 60, 61, 62, EOS],
    [7, 70, EOS],
    [8, 9, 10, 11, 80, EOS],
  ];
  const prompts = [3, 2, 1, 4];
  const cfgMsg = (over: Partial<policyPb.SftConfig> = {}): policyPb.SftRequest => ({
    part: {
      $case: "config",
      config: {
        epochs: 3,
        batchSize: 4,
        optimizer: opt(0.01, { beta1: 0.9, beta2: 0.99 }),
        schedule: common.LearningRateSchedule.LEARNING_RATE_SCHEDULE_CONSTANT,
        warmupSteps: 0,
        minLearningRate: 0,
        seed: 1,
        dataset: undefined,
        validationDataset: undefined,
        progressEverySteps: 1,
        temperature: 0,
        ...over,
      },
    },
  });
  const run = async (msgs: policyPb.SftRequest[]): Promise<policyPb.SftResponse[] | string> => {
    const s = client.bidi("sft");
    for (const m of msgs) s.write(m);
    s.end();
    const out: policyPb.SftResponse[] = [];
    try {
      for await (const m of s as AsyncIterable<policyPb.SftResponse>) out.push(m);
    } catch (e) {
      return statusOf(e);
    }
    return out;
  };
  const ex = (seqs: number[][], p: number[]): policyPb.SftRequest => ({ part: { $case: "examples", examples: batchOf(seqs, p) } });
  assert.match(String(await run([ex(examples, prompts)])), /^INVALID_ARGUMENT: requests\[0\]\.examples: the first message must be the config/);
  assert.match(String(await run([cfgMsg({ epochs: 0 }), ex(examples, prompts)])), /^INVALID_ARGUMENT: config\.epochs: must be in 1\.\.1000/);
  assert.match(String(await run([cfgMsg(), ex(examples, [3, 2, 3, 4])])), /^INVALID_ARGUMENT: requests\[1\]\.examples\.prompt_lengths\[2\]: 3 leaves no response token/);
  assert.match(String(await run([cfgMsg({ optimizer: opt(0) })])), /^INVALID_ARGUMENT: config\.optimizer\.learning_rate: must be in \(0, 1\]/);
  assert.match(String(await run([cfgMsg()])), /^INVALID_ARGUMENT: examples: no training examples were sent/);
  assert.match(String(await run([cfgMsg({ dataset: { name: "nope", split: "sft", count: 0 } })])), /^NOT_FOUND: config\.dataset\.name: unknown dataset "nope"/);
  assert.equal((await client.unary("getInfo", {})).policyWeights?.version, 0, "refused calls change nothing");

  // The first step's loss is the mean cross-entropy over completion tokens of the initial weights.
  const lm = GPT2.fromHostTensors(w0.config, w0.tensors);
  const b = makeLmBatch(examples.map((t, i) => ({ tokens: t, lossStart: prompts[i] })));
  const l0 = lmLoss(lm, b.tokens, b.lossMask);
  const expectedFirst = l0.dataSync()[0];
  tf.dispose([l0, b.tokens, b.lossMask]);
  lm.dispose();

  const out = await run([cfgMsg(), ex(examples, prompts), { part: { $case: "validationExamples", validationExamples: batchOf([[1, 2, 3, 50, 51, EOS]], [3]) } }]);
  assert.ok(Array.isArray(out), String(out));
  const progress = out.flatMap((m) => (m.part?.$case === "progress" ? [m.part.progress] : []));
  const done = out.at(-1)?.part;
  assert.equal(done?.$case, "done");
  assert.equal(progress.length, 3);
  assert.ok(Math.abs(progress[0].loss - expectedFirst) < 1e-4, `${progress[0].loss} vs ${expectedFirst}`);
  assert.deepEqual(progress.map((p) => p.weights?.version), [1, 2, 3]);
  assert.ok(progress.every((p) => p.validationLoss !== undefined), "one epoch per step here, each with a validation loss");
  assert.ok(progress[2].loss < progress[0].loss);
  if (done?.$case === "done") {
    assert.equal(done.done.steps, 3);
    assert.equal(done.done.completionTokens, 3 + 4 + 2 + 2);
    assert.equal(done.done.weights?.version, 3);
  }

  // Cancelled mid-training (no progress message for 100,000 steps): it stops within a step or
  // two, and health answers meanwhile.
  const v0 = (await client.unary("getInfo", {})).policyWeights?.version ?? 0;
  const ac = new AbortController();
  const long = client.bidi("sft", { signal: ac.signal });
  const ended = new Promise<string>((resolve) => {
    long.on("data", () => undefined);
    long.on("error", (e) => resolve(statusOf(e)));
    long.on("end", () => resolve("OK"));
  });
  long.write(cfgMsg({ epochs: 1000, batchSize: 1, progressEverySteps: 100_000 }));
  long.write(ex(examples, prompts));
  long.end();
  const versionNow = async () => (await client.unary("getInfo", {})).policyWeights?.version ?? 0; // answered while it trains
  let version = v0;
  while (version < v0 + 20) {
    await new Promise((r) => setTimeout(r, 5));
    version = await versionNow();
  }
  ac.abort();
  assert.match(await ended, /^CANCELLED/);
  // Once the version stops moving, training has stopped: well before its 4,000 steps. (No time
  // limit: on a loaded machine the cancellation may take a while to arrive; it must arrive.)
  let stopped = await versionNow();
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    const v = await versionNow();
    if (v === stopped) break;
    stopped = v;
  }
  assert.ok(stopped < v0 + 4000, `it stopped after ${stopped - v0} of its 4,000 steps`);
});

test("Sft on the built-in dataset tokenises with the policy's tokenizer", async () => {
  // 24 positions hold only the shortest byte-level demonstrations; a bigger context holds some.
  await client.unary("loadCheckpoint", randomInit(1, { ...TINY, nPositions: 400 }));
  const s = client.bidi("sft");
  s.write({ part: { $case: "config", config: { epochs: 1, batchSize: 2, optimizer: opt(1e-3), schedule: 0, warmupSteps: 0, minLearningRate: 0, seed: 0, dataset: { name: "brown-instructions", split: "sft", count: 4 }, validationDataset: undefined, progressEverySteps: 0, temperature: 0 } } });
  s.end();
  const out: policyPb.SftResponse[] = [];
  for await (const m of s as AsyncIterable<policyPb.SftResponse>) out.push(m);
  const done = out.at(-1)?.part;
  assert.equal(done?.$case, "done");
  if (done?.$case === "done") {
    assert.ok(done.done.examples >= 1 && done.done.examples <= 4);
    assert.ok(done.done.finalLoss > 0);
  }
});

/** A reward-model checkpoint folder (trunk of `seed`, a random head with a bias). */
async function rewardModelDir(name: string, seed: number, config = TINY): Promise<string> {
  const lm = GPT2.random(config, seed);
  const rm = ScalarHeadModel.fromLanguageModel(lm, seed);
  lm.dispose();
  const d = join(dir, name);
  await rm.save(d);
  rm.dispose();
  return d;
}

test("InitCritic from a reward-model checkpoint: values equal the reward model's per-token outputs", async () => {
  await client.unary("loadCheckpoint", randomInit(7));
  const rmDir = await rewardModelDir("rm-a", 3);
  const lmOnly = join(dir, "lm-only");
  await client.unary("saveCheckpoint", { dir: lmOnly });
  assert.match(String(await call(client.unary("initCritic", { source: { $case: "checkpointDir", checkpointDir: join(lmOnly, "policy") } }))), /^INVALID_ARGUMENT: checkpoint_dir: .* has no score\.weight \/ score\.bias: not a reward model/);
  assert.match(String(await call(client.unary("initCritic", { source: { $case: "rewardModel", rewardModel: { address: "", version: undefined } } }))), /^FAILED_PRECONDITION: reward_model\.address: empty and REWARD_MODEL_ADDR is not configured/);
  const other = await rewardModelDir("rm-wide", 3, { ...TINY, vocabSize: 300 });
  assert.match(String(await call(client.unary("initCritic", { source: { $case: "checkpointDir", checkpointDir: other } }))), /^INVALID_ARGUMENT: checkpoint_dir: the reward model's vocab_size 300 differs from the policy's 260/);
  const r = await client.unary("initCritic", { source: { $case: "checkpointDir", checkpointDir: rmDir } });
  assert.equal(r.criticWeights?.modelId, "critic");
  assert.equal(r.criticWeights?.version, 0);
  const e = await client.unary("evaluate", { sequences: batchOf(SEQS, PROMPTS), temperature: 0, skipValues: false });
  const rm = await ScalarHeadModel.load(rmDir);
  const expected: number[] = [];
  SEQS.forEach((s, i) => {
    const v = tf.tidy(() => rm.values(tf.tensor2d([s], [1, s.length], "int32")));
    const host = v.dataSync();
    v.dispose();
    for (let p = PROMPTS[i]; p < s.length; p++) expected.push(host[p - 1]);
  });
  rm.dispose();
  assert.ok(maxAbsDiff(e.values, expected) < 1e-5, `values ${maxAbsDiff(e.values, expected)}`);
  const cw = await weightsOf(policyPb.ModelKind.MODEL_KIND_CRITIC);
  assert.ok(cw.tensors.has("score.weight") && cw.tensors.has("score.bias"));
});

/** A minibatch over SEQS whose old log-probs and values are the current ones (ratio 1). */
async function freshMinibatch(version: number, over: Partial<policyPb.PpoMinibatch> = {}): Promise<policyPb.PpoMinibatch> {
  const e = await client.unary("evaluate", { sequences: batchOf(SEQS, PROMPTS), temperature: 0, skipValues: false });
  const adv = Array.from({ length: N }, (_, i) => ((i * 7) % 5) - 2);
  return {
    sequences: batchOf(SEQS, PROMPTS),
    oldLogprobs: e.logprobs,
    oldValues: e.values,
    advantages: adv,
    returns: e.values.map((v, i) => v + adv[i] * 0.5),
    hyperparameters: hyper(),
    expectedVersion: version,
    withPtxGradients: false,
    ...over,
  };
}

test("PpoUpdate: bad minibatches are named and change nothing, nor does a cancelled stream; a stale version is ABORTED", async () => {
  await client.unary("loadCheckpoint", randomInit(7));
  const mb = await (async () => {
    await client.unary("initCritic", { source: { $case: "checkpointDir", checkpointDir: await rewardModelDir("rm-b", 4) } });
    return freshMinibatch(0);
  })();
  const before = await weightsOf(policyPb.ModelKind.MODEL_KIND_POLICY);
  const bad = async (over: Partial<policyPb.PpoMinibatch>, re: RegExp) => assert.match(String(await ppoUpdate({ ...mb, ...over })), re);
  await bad({ expectedVersion: 3 }, /^ABORTED: minibatch\.expected_version: expected_version 3 is not the policy's current version 0/);
  await bad({ oldLogprobs: mb.oldLogprobs.slice(1) }, /^INVALID_ARGUMENT: minibatch\.old_logprobs: has 8 values but the sequences have 9 response tokens/);
  await bad({ advantages: mb.advantages.map((a, i) => (i === 4 ? NaN : a)) }, /^INVALID_ARGUMENT: minibatch\.advantages\[4\]: must be finite, got NaN/);
  await bad({ returns: mb.returns.map((a, i) => (i === 2 ? Infinity : a)) }, /^INVALID_ARGUMENT: minibatch\.returns\[2\]: must be finite/);
  await bad({ sequences: batchOf(SEQS, [2, 3, 8]) }, /^INVALID_ARGUMENT: minibatch\.sequences\.prompt_lengths\[2\]: 8 leaves no response token/);
  await bad({ hyperparameters: hyper({ clipRange: 0 }) }, /^INVALID_ARGUMENT: minibatch\.hyperparameters\.clip_range: must be in \(0, 1\]/);
  await bad({ hyperparameters: hyper({ policyOptimizer: undefined }) }, /^INVALID_ARGUMENT: minibatch\.hyperparameters\.policy_optimizer: is required/);
  await bad({ withPtxGradients: true }, /^INVALID_ARGUMENT: ptx_gradients: minibatch\.with_ptx_gradients is true but no gradients followed/);
  const zeros: NamedHostTensors = new Map([...before.tensors].map(([n, t]) => [n, { ...t, data: new Float32Array(t.data.length) }]));
  assert.match(String(await ppoUpdate(mb, { tensors: zeros, weights: { modelId: "policy", version: 0, source: "" } })), /^INVALID_ARGUMENT: ptx_gradients: sent but minibatch\.with_ptx_gradients is false/);
  assert.match(String(await ppoUpdate({ ...mb, withPtxGradients: true }, { tensors: zeros, weights: { modelId: "policy", version: 2, source: "" } })), /^INVALID_ARGUMENT: ptx_gradients\.header\.weights: must be policy version 0/);
  const partial = new Map([...zeros].slice(1));
  assert.match(String(await ppoUpdate({ ...mb, withPtxGradients: true }, { tensors: partial, weights: { modelId: "policy", version: 0, source: "" } })), /^INVALID_ARGUMENT: ptx_gradients: misses 1 of the policy's parameters, e\.g\. "wte\.weight"/);
  const nan = new Map(zeros);
  const first = zeros.get("wpe.weight");
  if (first) nan.set("wpe.weight", { ...first, data: first.data.map((_, j) => (j === 3 ? NaN : 0)) });
  assert.match(String(await ppoUpdate({ ...mb, withPtxGradients: true }, { tensors: nan, weights: { modelId: "policy", version: 0, source: "" } })), /^INVALID_ARGUMENT: ptx_gradients\.tensors\[1\] "wpe\.weight"\.data: element 3 is NaN/);
  // A good minibatch whose client cancels before it half-closes (a deadline, Ctrl-C, a crashed
  // coordinator) is not applied: all or nothing.
  for (const ptx of [false, true]) {
    const ac = new AbortController();
    const s = client.clientStream("ppoUpdate", { signal: ac.signal });
    await s.write({ part: { $case: "minibatch", minibatch: { ...mb, withPtxGradients: ptx } } });
    if (ptx) {
      const chunks = [...encodeTensorSet(zeros, { kind: common.TensorSetKind.TENSOR_SET_KIND_GRADIENTS, weights: { modelId: "policy", version: 0, source: "" } })];
      for (const chunk of chunks) await s.write({ part: { $case: "ptxGradients", ptxGradients: chunk } });
    }
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    assert.match(String(await call(s.end())), /^CANCELLED/);
  }
  const after = await weightsOf(policyPb.ModelKind.MODEL_KIND_POLICY);
  assert.equal(after.weights?.version, 0);
  for (const [n, t] of before.tensors) assert.deepEqual(after.tensors.get(n)?.data, t.data, `${n} unchanged`);
});

test("PpoUpdate with pretraining gradients equals an in-process step on the summed objective", async () => {
  await client.unary("loadCheckpoint", randomInit(9));
  await client.unary("initCritic", { source: { $case: "checkpointDir", checkpointDir: await rewardModelDir("rm-c", 5) } });
  const mb = await freshMinibatch(0, { withPtxGradients: true, hyperparameters: hyper({ entropyCoef: 0.01, policyOptimizer: opt(1e-2, { epsilon: 1e-6, maxGradNorm: 0.5 }), criticOptimizer: opt(1e-2, { epsilon: 1e-6 }) }) });
  const p0 = await weightsOf(policyPb.ModelKind.MODEL_KIND_POLICY);
  const c0 = await weightsOf(policyPb.ModelKind.MODEL_KIND_CRITIC);
  const gamma = 2.5;
  const pretrain = [
    [30, 31, 32, 33, 34, 35],
    [40, 41, 42, 43, 44, 45],
  ];
  // The gradient set a pretrain-mix service would send: d(gamma * mean LM loss)/dW at version 0.
  const lmA = GPT2.fromHostTensors(p0.config, p0.tensors);
  const pb = makeLmBatch(pretrain.map((t) => ({ tokens: t })));
  const vars = [...lmA.parameters()];
  const { grads, value } = tf.variableGrads(() => tf.mul(lmLoss(lmA, pb.tokens, pb.lossMask), gamma) as tf.Scalar, vars.map(([, v]) => v));
  const ptx: NamedHostTensors = new Map(vars.map(([n, v]) => [n, { dtype: "float32", shape: [...v.shape], data: grads[v.name].dataSync() as Float32Array }]));
  tf.dispose([value, ...Object.values(grads)]);
  lmA.dispose();

  const r = await ppoUpdate(mb, { tensors: ptx, weights: { modelId: "policy", version: 0, source: "" } });
  assert.ok(typeof r !== "string", String(r));
  assert.equal(r.policyWeights?.version, 1);
  assert.equal(r.criticWeights?.version, 1);
  assert.equal(r.responseTokens, N);
  assert.ok(Math.abs(r.approxKl) < 1e-6 && r.clipFraction === 0, "the rollout's own log-probs: ratio 1");
  const meanAdv = mb.advantages.reduce((a, b) => a + b, 0) / N;
  assert.ok(Math.abs(r.policyLoss + meanAdv) < 1e-5, "ratio 1: loss = -mean(A)");

  // Single process: policy loss - 0.01 entropy + gamma * LM loss in ONE objective, one step.
  const lm = GPT2.fromHostTensors(p0.config, p0.tensors);
  const critic = ScalarHeadModel.fromHostTensors(c0.config, c0.tensors);
  const pt = new Trainer(lm.parameters(), { optimizer: { beta1: 0.9, beta2: 0.95, epsilon: 1e-6, weightDecay: 0 }, schedule: { kind: "constant", lr: 1e-2 }, maxGradNorm: 0.5 });
  const ct = new Trainer(critic.parameters(), { optimizer: { beta1: 0.9, beta2: 0.95, epsilon: 1e-6, weightDecay: 0 }, schedule: { kind: "constant", lr: 1e-2 }, maxGradNorm: 0 });
  const T = Math.max(...SEQS.map((s) => s.length));
  const padded = tf.tensor2d(SEQS.flatMap((s) => [...s, ...Array(T - s.length).fill(0)]), [SEQS.length, T], "int32");
  const idx: number[] = [];
  SEQS.forEach((s, b) => {
    for (let p = PROMPTS[b]; p < s.length; p++) idx.push(b * (T - 1) + p - 1);
  });
  const vIdx = idx.map((i) => Math.floor(i / (T - 1)) * T + (i % (T - 1)));
  pt.accumulate(() => {
    const logits = lm.forward(tf.slice(padded, [0, 0], [SEQS.length, T - 1]) as tf.Tensor2D); // [B, T-1, V]
    const logp = tf.logSoftmax(tf.reshape(logits, [-1, TINY.vocabSize])); // [B*(T-1), V]
    const rows = tf.gather(logp, tf.tensor1d(idx, "int32")); // [N, V]
    const targets = SEQS.flatMap((s, b) => s.slice(PROMPTS[b]));
    const picked = tf.sum(tf.mul(rows, tf.oneHot(tf.tensor1d(targets, "int32"), TINY.vocabSize)), -1) as tf.Tensor1D; // [N]
    const entropy = tf.mean(tf.neg(tf.sum(tf.mul(tf.exp(rows), rows), -1)));
    const pl = ppoPolicyLoss(picked, tf.tensor1d(mb.oldLogprobs), tf.tensor1d(mb.advantages), 0.2).loss;
    return tf.addN([pl, tf.mul(entropy, -0.01), tf.mul(lmLoss(lm, pb.tokens, pb.lossMask), gamma)]) as tf.Scalar;
  });
  const refNorm = pt.update().gradNorm;
  ct.accumulate(() => {
    const v = tf.gather(tf.reshape(critic.values(padded), [-1]), tf.tensor1d(vIdx, "int32")) as tf.Tensor1D;
    return tf.mul(ppoValueLoss(v, tf.tensor1d(mb.oldValues), tf.tensor1d(mb.returns), 0.2).loss, 0.5) as tf.Scalar;
  });
  const refCriticNorm = ct.update().gradNorm;
  assert.ok(Math.abs(r.policyGradNorm - refNorm) < 1e-4 * refNorm, `policy grad norm ${r.policyGradNorm} vs ${refNorm}`);
  assert.ok(Math.abs(r.criticGradNorm - refCriticNorm) < 1e-4 * refCriticNorm, `critic grad norm ${r.criticGradNorm} vs ${refCriticNorm}`);
  const p1 = await weightsOf(policyPb.ModelKind.MODEL_KIND_POLICY);
  const c1 = await weightsOf(policyPb.ModelKind.MODEL_KIND_CRITIC);
  const refP = lm.toHostTensors();
  const refC = critic.toHostTensors();
  let worst = 0;
  for (const [n, t] of refP) worst = Math.max(worst, maxAbsDiff(p1.tensors.get(n)?.data ?? [], t.data));
  for (const [n, t] of refC) worst = Math.max(worst, maxAbsDiff(c1.tensors.get(n)?.data ?? [], t.data));
  // One step moves weights by about lr = 1e-2; the services and the single process agree far closer.
  assert.ok(worst < 1e-5, `largest weight difference ${worst}`);
  let moved = 0;
  for (const [n, t] of refP) moved = Math.max(moved, maxAbsDiff(p0.tensors.get(n)?.data ?? [], t.data));
  assert.ok(moved > 1e-3, `the step moved the weights (${moved})`);
  tf.dispose([padded, pb.tokens, pb.lossMask]);
  pt.dispose();
  ct.dispose();
  lm.dispose();
  critic.dispose();
  // The same minibatch again is stale now.
  assert.match(String(await ppoUpdate(mb, { tensors: ptx, weights: { modelId: "policy", version: 0, source: "" } })), /^ABORTED/);
});

test("SaveCheckpoint / LoadCheckpoint restore weights, optimiser moments and versions exactly", async () => {
  await client.unary("loadCheckpoint", randomInit(2));
  await client.unary("initCritic", { source: { $case: "checkpointDir", checkpointDir: await rewardModelDir("rm-d", 6) } });
  const step = async (v: number) => {
    const r = await ppoUpdate(await freshMinibatch(v, { hyperparameters: hyper({ policyOptimizer: opt(1e-2, { weightDecay: 0.1 }) }) }));
    assert.ok(typeof r !== "string", String(r));
  };
  await step(0);
  const ck = join(dir, "ck-1");
  const saved = await client.unary("saveCheckpoint", { dir: ck });
  assert.equal(saved.policyWeights?.version, 1);
  assert.ok(saved.bytesWritten > 0);
  assert.ok(existsSync(join(ck, "policy", "optimizer.safetensors")) && existsSync(join(ck, "critic", "model.safetensors")) && existsSync(join(ck, "state.json")));
  assert.equal((await client.unary("saveCheckpoint", { dir: ck })).bytesWritten, 0, "idempotent");
  await step(1);
  await step(2);
  const straight = await weightsOf(policyPb.ModelKind.MODEL_KIND_POLICY);
  const straightCritic = await weightsOf(policyPb.ModelKind.MODEL_KIND_CRITIC);
  assert.match(String(await call(client.unary("saveCheckpoint", { dir: ck }))), /^ALREADY_EXISTS: dir: .* holds no checkpoint of policy version 3/);
  const l = await client.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: ck } });
  assert.equal(l.policyWeights?.version, 1);
  assert.equal(l.criticWeights?.version, 1);
  await step(1);
  await step(2);
  const resumed = await weightsOf(policyPb.ModelKind.MODEL_KIND_POLICY);
  const resumedCritic = await weightsOf(policyPb.ModelKind.MODEL_KIND_CRITIC);
  assert.equal(resumed.weights?.version, 3);
  for (const [n, t] of straight.tensors) assert.deepEqual(resumed.tensors.get(n)?.data, t.data, `policy ${n} bit-identical after resume`);
  for (const [n, t] of straightCritic.tensors) assert.deepEqual(resumedCritic.tensors.get(n)?.data, t.data, `critic ${n} bit-identical after resume`);
  // The policy folder is a plain model folder: loadable as model_dir (critic unloaded, version 0).
  const m = await client.unary("loadCheckpoint", { source: { $case: "modelDir", modelDir: join(ck, "policy") } });
  assert.equal(m.policyWeights?.version, 0);
  assert.equal(m.criticWeights, undefined);
  assert.match(String(await call(client.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: join(ck, "policy") } }))), /^NOT_FOUND: .*state\.json: no such file: not a policy checkpoint/);
  assert.match(String(await call(client.unary("saveCheckpoint", { dir: "/etc/x" }))), /^PERMISSION_DENIED: dir: "\/etc\/x" is outside CHECKPOINT_ROOT$/);
});

test("every folder a request names stays inside CHECKPOINT_ROOT: `..`, absolute paths, symlinks and NUL bytes are refused", async () => {
  await client.unary("loadCheckpoint", randomInit(9));
  const outside = mkdtempSync(join(tmpdir(), "policy-outside-"));
  symlinkSync(outside, join(dir, "link-out"));
  const escapes = [join(dir, "..", basename(outside), "ck"), join(outside, "ck"), join(dir, "link-out", "ck"), "/etc"];
  for (const p of escapes) {
    assert.match(String(await call(client.unary("saveCheckpoint", { dir: p }))), /^PERMISSION_DENIED: dir: ".*" is outside CHECKPOINT_ROOT$/, p);
    assert.match(String(await call(client.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: p } }))), /^PERMISSION_DENIED: checkpoint_dir: .* is outside CHECKPOINT_ROOT$/, p);
    assert.match(String(await call(client.unary("loadCheckpoint", { source: { $case: "modelDir", modelDir: p } }))), /^PERMISSION_DENIED: model_dir: .* is outside CHECKPOINT_ROOT$/, p);
    assert.match(String(await call(client.unary("initCritic", { source: { $case: "checkpointDir", checkpointDir: p } }))), /^PERMISSION_DENIED: checkpoint_dir: .* is outside CHECKPOINT_ROOT$/, p);
  }
  assert.deepEqual(readdirSync(outside), [], "nothing was written outside the root");
  assert.equal(String(await call(client.unary("saveCheckpoint", { dir: join(dir, "a\0b") }))), "INVALID_ARGUMENT: dir: contains a NUL byte");
  assert.equal(String(await call(client.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: `${dir}/x\0` } }))), "INVALID_ARGUMENT: checkpoint_dir: contains a NUL byte");
  assert.equal(String(await call(client.unary("loadCheckpoint", { source: { $case: "modelDir", modelDir: "\0" } }))), "INVALID_ARGUMENT: model_dir: contains a NUL byte");
  assert.equal(String(await call(client.unary("initCritic", { source: { $case: "checkpointDir", checkpointDir: "a\0" } }))), "INVALID_ARGUMENT: checkpoint_dir: contains a NUL byte");
  assert.equal(String(await call(client.unary("saveCheckpoint", { dir: "" }))), "INVALID_ARGUMENT: dir: is empty");
  // a symlink inside the root that stays inside is fine
  symlinkSync(join(dir), join(dir, "link-in"));
  assert.ok((await client.unary("saveCheckpoint", { dir: join(dir, "link-in", "ck-via-link") })).bytesWritten > 0);
  assert.ok(existsSync(join(dir, "ck-via-link", "state.json")));
});

test("repeated calls leak no tensors once the optimiser state exists", async () => {
  await client.unary("loadCheckpoint", randomInit(4));
  await client.unary("initCritic", { source: { $case: "checkpointDir", checkpointDir: await rewardModelDir("rm-e", 6) } });
  const once = async (v: number) => {
    await generateAll({ prompts: batchOf([[1, 2]]), samplesPerPrompt: 2, maxNewTokens: 3 });
    const r = await ppoUpdate(await freshMinibatch(v));
    assert.ok(typeof r !== "string", String(r));
  };
  await once(0);
  const before = (await app.memory()).numTensors;
  await once(1);
  await once(2);
  assert.equal((await app.memory()).numTensors, before);
});

test("calls beyond the queue's capacity get RESOURCE_EXHAUSTED", async () => {
  const cfg = loadConfig({ GRPC_PORT: "0", QUEUE_CAPACITY: "1", INIT_PRESET: "tiny" });
  const app2 = await startPolicy(cfg, log);
  const c2 = createClient(policyPb.PolicyServiceClient, app2.server.address, { deadlineMs: testDeadlineMs(60_000) });
  try {
    // A long Sft call holds the queue; one call may wait; the next is refused.
    const s = c2.bidi("sft");
    s.write({ part: { $case: "config", config: { epochs: 200, batchSize: 1, optimizer: opt(1e-3), schedule: 0, warmupSteps: 0, minLearningRate: 0, seed: 0, dataset: undefined, validationDataset: undefined, progressEverySteps: 1, temperature: 0 } } });
    s.write({ part: { $case: "examples", examples: batchOf([[1, 2, 3, 4]], [1]) } });
    s.end();
    const it = (s as AsyncIterable<policyPb.SftResponse>)[Symbol.asyncIterator]();
    assert.equal((await it.next()).value?.part?.$case, "progress");
    assert.equal((await c2.unary("getInfo", {})).training, true);
    const waiting = c2.unary("evaluate", { sequences: batchOf([[1, 2]], [1]), temperature: 0, skipValues: true });
    await waitUntil(async () => (await c2.unary("getInfo", {})).queueDepth === 2, "the evaluate call waiting behind the training");
    assert.match(String(await call(c2.unary("evaluate", { sequences: batchOf([[1, 2]], [1]), temperature: 0, skipValues: true }))), /^RESOURCE_EXHAUSTED: policy compute queue is full/);
    s.cancel();
    await call(
      (async () => {
        for (;;) if ((await it.next()).done) return;
      })(),
    );
    const w = await waiting;
    assert.equal(w.logprobs.length, 1);
    const v = w.policyWeights?.version ?? 0;
    assert.ok(v >= 1 && v < 200, `Sft stopped early at version ${v}`);
  } finally {
    c2.close();
    await app2.stop(500);
  }
});
