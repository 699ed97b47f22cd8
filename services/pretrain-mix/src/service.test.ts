// The pretrain-mix service on a real socket (127.0.0.1:0), called through the generated client,
// pulling weights from a fake PolicyService (src/testing) over a real StreamWeights stream.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import { common, pretrainMix } from "@rlhf/proto";
import { createLogger, createClient, checkHealth, listServicesByReflection, type KitClient, statusText as statusOf, resultOrStatus as call } from "@rlhf/grpc-kit";
import { TensorSetReceiver, type ReceivedTensorSet } from "@rlhf/tensor-transport";
import { GPT2, gpt2InitTensors, lmLoss, presetConfig, type GPT2Config } from "@rlhf/model";
import { filesDigest, loadPretrainCorpus, permutation, Rng } from "@rlhf/data";
import type { NamedHostTensors } from "@rlhf/compute";
import { startPretrainMix, type PretrainMixApp } from "./app";
import { loadConfig } from "./config";
import { WINDOW_ORDER_STREAM } from "./corpus";
import { startFakePolicy, type FakePolicy, type FakePolicyWeights } from "./testing/fake-policy";
import { testDeadlineMs, waitUntil } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "pretrain-mix-test", level: "silent" });
const { TRAIN, VALIDATION } = { TRAIN: pretrainMix.Split.SPLIT_TRAIN, VALIDATION: pretrainMix.Split.SPLIT_VALIDATION };
// The byte tokenizer's 258 ids in the tiny preset's shape (64 positions).
const POLICY: GPT2Config = presetConfig("tiny", { vocabSize: 258 });
// Seeded GPT-2 initial weights, made on the host (no backend needed before the app starts one).
const weightsOf = (config: GPT2Config, seed: number): FakePolicyWeights => ({ config, tensors: gpt2InitTensors(config, seed) });
const VERSIONS = new Map<number, FakePolicyWeights>([
  [7, weightsOf(POLICY, 1)],
  [8, weightsOf(POLICY, 2)],
  [9, weightsOf(POLICY, 3)],
  [10, weightsOf(POLICY, 4)],
  [11, weightsOf(POLICY, 5)],
  [20, weightsOf({ ...POLICY, vocabSize: 200 }, 6)], // too few ids for the byte tokenizer
]);

let policy: FakePolicy;
let app: PretrainMixApp;
let client: KitClient<pretrainMix.PretrainMixServiceClient>;
/** The corpus tokenised independently: UTF-8 bytes of each document, then EOS 256. */
let stream: { train: Int32Array; validation: Int32Array };

function byteStream(docs: readonly { text: string }[]): Int32Array {
  const bytes = docs.map((d) => Buffer.from(d.text, "utf8"));
  const out = new Int32Array(bytes.reduce((a, b) => a + b.length + 1, 0));
  let at = 0;
  for (const b of bytes) {
    out.set(b, at);
    at += b.length;
    out[at++] = 256;
  }
  return out;
}

before(async () => {
  process.env.RLHF_BACKEND = "cpu";
  // The service's tensors live in its compute worker (app.memory()); localPtx uses this thread's backend.
  await initBackend({ backend: "cpu" });
  policy = await startFakePolicy(VERSIONS);
  const cfg = loadConfig({ GRPC_PORT: "0", TOKENIZER: "byte", POLICY_ADDR: policy.address, MAX_SEQUENCES: "16", MAX_SEQUENCE_LENGTH: "512", MAX_CACHED_VERSIONS: "2", QUEUE_CAPACITY: "4", DATA_ROOT: textDir });
  app = await startPretrainMix(cfg, log);
  client = createClient(pretrainMix.PretrainMixServiceClient, app.server.address, { deadlineMs: testDeadlineMs(60_000) });
  const c = loadPretrainCorpus();
  stream = { train: byteStream(c.train), validation: byteStream(c.valid) };
});
after(async () => {
  client.close();
  await app.stop(1000);
  await policy.stop();
});


// A user's text files: five documents, the last one held out at validation_fraction 0.2.
const textDir = mkdtempSync(join(tmpdir(), "pretrain-mix-text-"));
const TEXT_DOCS = ["The first document has two lines.\nThis is the second line.", "A second document.", "The third one, \u00e9 included.", "Fourth: in the other file.", "Fifth and last, held out."];
writeFileSync(join(textDir, "a.txt"), `${TEXT_DOCS[0]}\n\n${TEXT_DOCS[1]}\n\n\n${TEXT_DOCS[2]}\n`);
writeFileSync(join(textDir, "b.txt"), `${TEXT_DOCS[3]}\n\n${TEXT_DOCS[4]}\n`);
const TEXT_FILES = [join(textDir, "a.txt"), join(textDir, "b.txt")];
const textCorpus = (over: Partial<pretrainMix.TextCorpus> = {}): pretrainMix.TextCorpus => ({ files: TEXT_FILES, validationFraction: 0.2, contentDigest: "", ...over });

const sample = (over: Partial<pretrainMix.SampleBatchRequest>) =>
  client.unary("sampleBatch", { split: TRAIN, sequences: 2, sequenceLength: 16, cursor: 0, seed: 0, textCorpus: undefined, ...over });

/** Windows `ws` of a stream, concatenated. */
const windows = (s: Int32Array, L: number, ws: number[]) => ws.flatMap((w) => Array.from(s.subarray(w * L, (w + 1) * L)));

interface PtxReply {
  loss: pretrainMix.PtxLoss;
  set: ReceivedTensorSet;
}
const ptxRequest = (over: Partial<pretrainMix.PtxGradientsRequest> = {}): pretrainMix.PtxGradientsRequest => ({
  policyWeights: { modelId: "policy", version: 7, source: "" },
  gamma: 27.8,
  sequences: 2,
  sequenceLength: 16,
  cursor: 5,
  seed: 3,
  temperature: 0.7,
  dtype: common.Dtype.DTYPE_FLOAT32,
  textCorpus: undefined,
  ...over,
});

/** One PtxGradients call: exactly one loss first, then a whole verified tensor set; or the status. */
async function ptx(over: Partial<pretrainMix.PtxGradientsRequest> = {}, c = client): Promise<PtxReply | string> {
  const s = c.serverStream("ptxGradients", ptxRequest(over));
  try {
    let loss: pretrainMix.PtxLoss | undefined;
    const r = new TensorSetReceiver({ expectKind: common.TensorSetKind.TENSOR_SET_KIND_GRADIENTS });
    let chunks = 0;
    for await (const m of s as AsyncIterable<pretrainMix.PtxGradientsResponse>) {
      if (m.part?.$case === "loss") {
        assert.equal(loss, undefined, "one loss");
        assert.equal(chunks, 0, "the loss comes first");
        loss = m.part.loss;
      } else {
        r.push(m.part?.chunk);
        chunks++;
      }
    }
    assert.ok(loss, "a loss was sent");
    return { loss, set: r.finish() };
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    return statusOf(e);
  }
}
async function ptxOk(over: Partial<pretrainMix.PtxGradientsRequest> = {}, c = client): Promise<PtxReply> {
  const r = await ptx(over, c);
  assert.equal(typeof r, "object", String(r));
  return r as PtxReply;
}

/** Loss and gradients of gamma * lmLoss computed here, on the tokens SampleBatch gives for the same cursor. */
async function localPtx(req: pretrainMix.PtxGradientsRequest): Promise<{ loss: number; grads: NamedHostTensors }> {
  const b = await sample({ split: TRAIN, sequences: req.sequences, sequenceLength: req.sequenceLength, cursor: req.cursor, seed: req.seed, textCorpus: req.textCorpus });
  const w = VERSIONS.get(req.policyWeights!.version)!;
  const model = GPT2.fromHostTensors(w.config, w.tensors, { trainable: true });
  const S = req.sequences;
  const L = req.sequenceLength;
  const tokens = tf.tensor2d(b.batch!.tokens, [S, L], "int32");
  const mask = tf.ones([S, L - 1]) as tf.Tensor2D;
  const loss = lmLoss(model, tokens, mask, { temperature: req.temperature || 1 });
  const { value, grads } = tf.variableGrads(() => tf.mul(lmLoss(model, tokens, mask, { temperature: req.temperature || 1 }), req.gamma) as tf.Scalar, [...model.parameters().values()]);
  const out: NamedHostTensors = new Map();
  for (const [name, v] of model.parameters()) out.set(name, { dtype: "float32", shape: [...v.shape], data: grads[v.name].dataSync() as Float32Array });
  const l = loss.dataSync()[0];
  tf.dispose([tokens, mask, loss, value, ...Object.values(grads)]);
  model.dispose();
  return { loss: l, grads: out };
}

function assertClose(got: NamedHostTensors, want: NamedHostTensors, rel: number, abs: number): void {
  assert.deepEqual([...got.keys()], [...want.keys()], "GPT-2 names in the policy's order");
  for (const [name, w] of want) {
    const g = got.get(name)!;
    assert.deepEqual(g.shape, w.shape, name);
    let scale = 0;
    for (const v of w.data) scale = Math.max(scale, Math.abs(v));
    assert.ok(scale > 0, `${name}: a gradient that is all zeros proves nothing`);
    for (let i = 0; i < w.data.length; i++) {
      const tol = rel * Math.abs(w.data[i]) + abs * scale;
      assert.ok(Math.abs(g.data[i] - w.data[i]) <= tol, `${name}[${i}]: ${g.data[i]} vs ${w.data[i]}`);
    }
  }
}

test("serves health and reflection; GetInfo describes the corpus, its digest and the limits", async () => {
  assert.equal(await checkHealth(app.server.address), "SERVING");
  assert.ok((await listServicesByReflection(app.server.address)).includes("rlhf.pretrain_mix.v1.PretrainMixService"));
  const info = await client.unary("getInfo", {});
  assert.equal(info.corpus, "brown");
  assert.equal(info.tokenizer, "byte");
  assert.equal(info.vocabSize, 258);
  assert.equal(info.eosTokenId, 256);
  assert.deepEqual(info.splits, [
    { split: TRAIN, documents: 475, tokens: stream.train.length },
    { split: VALIDATION, documents: 25, tokens: stream.validation.length },
  ]);
  const h = createHash("sha256");
  for (const s of [stream.train, stream.validation]) {
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(s.length));
    h.update(n).update(Buffer.from(s.buffer, s.byteOffset, s.byteLength));
  }
  assert.equal(info.corpusDigest, h.digest("hex"));
  assert.deepEqual(info.cachedWeights, []);
  assert.equal(info.maxCachedVersions, 2);
  assert.equal(info.backend, "cpu");
  assert.equal(info.maxSequences, 16);
  assert.equal(info.maxSequenceLength, 512);
  assert.equal(info.queueDepth, 0);
  assert.equal(info.maxQueueDepth, 4);
});

test("SampleBatch, seed 0: consecutive windows of the corpus stream, cursor and epoch counted over epochs", async () => {
  const L = 512;
  const W = Math.floor(stream.validation.length / L);
  const b0 = await sample({ split: VALIDATION, sequences: 3, sequenceLength: L, cursor: 0 });
  assert.deepEqual(b0.batch?.tokens, windows(stream.validation, L, [0, 1, 2]));
  assert.deepEqual(b0.batch?.lengths, [L, L, L]);
  assert.deepEqual(b0.batch?.promptLengths, []);
  assert.deepEqual([b0.nextCursor, b0.epoch, b0.windowsPerEpoch], [3, 0, W]);
  // Across the end of epoch 0 (tail dropped): windows W-1, then 0 and 1 of epoch 1.
  const across = await sample({ split: VALIDATION, sequences: 3, sequenceLength: L, cursor: W - 1 });
  assert.deepEqual(across.batch?.tokens, windows(stream.validation, L, [W - 1, 0, 1]));
  assert.deepEqual([across.nextCursor, across.epoch], [W + 2, 0]);
  const later = await sample({ split: VALIDATION, sequences: 2, sequenceLength: L, cursor: 3 * W + 5 });
  assert.deepEqual(later.batch?.tokens, windows(stream.validation, L, [5, 6]));
  assert.equal(later.epoch, 3);
  const t = await sample({ split: TRAIN, sequences: 4, sequenceLength: 16, cursor: 1000 });
  assert.deepEqual(t.batch?.tokens, windows(stream.train, 16, [1000, 1001, 1002, 1003]));
  assert.equal(t.windowsPerEpoch, Math.floor(stream.train.length / 16));
  assert.deepEqual(await sample({ split: TRAIN, sequences: 4, sequenceLength: 16, cursor: 1000 }), t, "idempotent");
});

test("SampleBatch with a seed: every epoch visits each window once, in the order drawn from (seed, epoch)", async () => {
  const L = 512;
  const S = 16;
  const W = Math.floor(stream.validation.length / L);
  const epoch = async (e: number, seed: number) => {
    const rows: number[][] = [];
    for (let c = e * W; c < (e + 1) * W; c += S) {
      const b = await sample({ split: VALIDATION, sequences: Math.min(S, (e + 1) * W - c), sequenceLength: L, cursor: c, seed });
      assert.equal(b.epoch, e);
      const tk = b.batch!.tokens;
      for (let r = 0; r < tk.length / L; r++) rows.push(tk.slice(r * L, (r + 1) * L));
    }
    return rows;
  };
  const index = new Map<string, number>();
  for (let w = 0; w < W; w++) index.set(windows(stream.validation, L, [w]).join(), w);
  const e0 = (await epoch(0, 11)).map((r) => index.get(r.join()) as number);
  const e1 = (await epoch(1, 11)).map((r) => index.get(r.join()) as number);
  assert.deepEqual([...e0].sort((a, b) => a - b), [...Array(W).keys()], "each window once");
  assert.deepEqual([...e1].sort((a, b) => a - b), [...Array(W).keys()]);
  assert.notDeepEqual(e0, [...Array(W).keys()], "shuffled");
  assert.notDeepEqual(e0, e1, "a new order each epoch");
  assert.deepEqual(e0, permutation(W, new Rng(11, WINDOW_ORDER_STREAM, 0)));
  assert.deepEqual(e1, permutation(W, new Rng(11, WINDOW_ORDER_STREAM, 1)));
});

test("SampleBatch: bad requests get INVALID_ARGUMENT naming the field and the limit", async () => {
  const cases: [Partial<pretrainMix.SampleBatchRequest>, RegExp][] = [
    [{ split: pretrainMix.Split.SPLIT_UNSPECIFIED }, /^INVALID_ARGUMENT: split: must be SPLIT_TRAIN or SPLIT_VALIDATION, got SPLIT_UNSPECIFIED$/],
    [{ sequences: 0 }, /^INVALID_ARGUMENT: sequences: must be in 1\.\.16 \(MAX_SEQUENCES\), got 0$/],
    [{ sequences: 17 }, /^INVALID_ARGUMENT: sequences: must be in 1\.\.16/],
    [{ sequenceLength: 1 }, /^INVALID_ARGUMENT: sequence_length: must be in 2\.\.512 \(MAX_SEQUENCE_LENGTH\), got 1$/],
    [{ sequenceLength: 513 }, /^INVALID_ARGUMENT: sequence_length: must be in 2\.\.512/],
    [{ cursor: Number.MAX_SAFE_INTEGER }, /^INVALID_ARGUMENT: cursor: /],
  ];
  for (const [over, re] of cases) assert.match(String(await call(sample(over))), re, JSON.stringify(over));
});

test("PtxGradients: the loss, then gradients equal to gamma * dLM/dtheta computed here (float32 wire); the repeat is a cache hit", async () => {
  const req = ptxRequest();
  const want = await localPtx(req);
  const first = await ptxOk();
  const l = first.loss;
  assert.ok(Math.abs(l.loss - want.loss) <= 1e-6 * want.loss, `loss ${l.loss} vs ${want.loss}: not multiplied by gamma`);
  assert.ok(l.loss > 4 && l.loss < 7, `a random model's loss is about ln(258) = 5.55, got ${l.loss}`);
  assert.equal(l.tokens, 2 * 15);
  assert.equal(l.nextCursor, 7);
  assert.deepEqual(l.policyWeights, { modelId: "policy", version: 7, source: `policy@${policy.address}` });
  assert.equal(l.cacheHit, false);
  assert.ok(l.computeMs >= 0);
  const set = first.set;
  assert.equal(set.kind, common.TensorSetKind.TENSOR_SET_KIND_GRADIENTS);
  assert.deepEqual(set.weights, l.policyWeights);
  assert.equal(set.modelConfig, undefined);
  assert.deepEqual([...set.tensors].map(([n, t]) => [n, t.shape]), [...GPT2.parameterShapes(POLICY)]);
  assertClose(set.tensors, want.grads, 1e-5, 1e-7);
  assert.deepEqual(policy.calls, [7]);

  const again = await ptxOk();
  assert.equal(again.loss.cacheHit, true);
  assert.equal(again.loss.loss, l.loss);
  assertClose(again.set.tensors, set.tensors, 0, 0);
  assert.deepEqual(policy.calls, [7], "one pull: the second call used the cache");
  assert.deepEqual((await client.unary("getInfo", {})).cachedWeights, [l.policyWeights]);
});

test("PtxGradients over the float16 wire: the same gradients to float16 precision", async () => {
  const req = ptxRequest({ cursor: 100, seed: 0, temperature: 0, gamma: 1.5 });
  const want = await localPtx(req);
  const r = await ptxOk({ ...req, dtype: common.Dtype.DTYPE_FLOAT16 });
  assert.ok(r.set.bytes < [...want.grads.values()].reduce((a, t) => a + t.data.length * 4, 0) * 0.51, "half the bytes");
  assertClose(r.set.tensors, want.grads, 1e-3, 1e-4);
  assert.equal(r.loss.cacheHit, true);
});

test("PtxGradients: an unknown version is the policy's NOT_FOUND, passed on; nothing is cached for it", async () => {
  assert.match(String(await ptx({ policyWeights: { modelId: "policy", version: 99, source: "" } })), /^NOT_FOUND: version: 99 is not the current version \(20\)$/);
  assert.ok(!(await client.unary("getInfo", {})).cachedWeights.some((w) => w.version === 99));
});

test("PtxGradients: bad requests get INVALID_ARGUMENT naming the field, before any pull", async () => {
  const pulls = policy.calls.length;
  const cases: [Partial<pretrainMix.PtxGradientsRequest>, RegExp][] = [
    [{ policyWeights: undefined }, /^INVALID_ARGUMENT: policy_weights: is required/],
    [{ policyWeights: { modelId: "reward-model", version: 7, source: "" } }, /^INVALID_ARGUMENT: policy_weights\.model_id: must be "policy", got "reward-model"$/],
    [{ gamma: 0 }, /^INVALID_ARGUMENT: gamma: must be a finite number > 0 \(the paper: 27\.8\), got 0$/],
    [{ gamma: NaN }, /^INVALID_ARGUMENT: gamma: .*got NaN$/],
    [{ gamma: -1 }, /^INVALID_ARGUMENT: gamma: /],
    [{ gamma: Infinity }, /^INVALID_ARGUMENT: gamma: .*got Infinity$/],
    [{ sequences: 0 }, /^INVALID_ARGUMENT: sequences: must be in 1\.\.16 \(MAX_SEQUENCES\), got 0$/],
    [{ sequences: 17 }, /^INVALID_ARGUMENT: sequences: must be in 1\.\.16 \(MAX_SEQUENCES\), got 17$/],
    [{ sequenceLength: 1 }, /^INVALID_ARGUMENT: sequence_length: must be in 2\.\.512 \(MAX_SEQUENCE_LENGTH\), got 1$/],
    [{ sequenceLength: 600 }, /^INVALID_ARGUMENT: sequence_length: must be in 2\.\.512/],
    [{ temperature: 0.001 }, /^INVALID_ARGUMENT: temperature: must be in \[0\.01, 100\]/],
    [{ dtype: common.Dtype.DTYPE_UNSPECIFIED }, /^INVALID_ARGUMENT: dtype: must be DTYPE_FLOAT32 or DTYPE_FLOAT16, got DTYPE_UNSPECIFIED$/],
    [{ dtype: common.Dtype.DTYPE_INT32 }, /^INVALID_ARGUMENT: dtype: must be DTYPE_FLOAT32 or DTYPE_FLOAT16, got DTYPE_INT32$/],
  ];
  for (const [over, re] of cases) assert.match(String(await ptx(over)), re, JSON.stringify(over));
  assert.equal(policy.calls.length, pulls, "no pull for a bad request");
  // Checks against the policy's own config come after the (cached) pull.
  assert.match(String(await ptx({ sequenceLength: 65 })), /^INVALID_ARGUMENT: sequence_length: 65 exceeds the policy's n_positions 64 \(weights version 7\)$/);
  assert.match(
    String(await ptx({ policyWeights: { modelId: "policy", version: 20, source: "" } })),
    /^FAILED_PRECONDITION: the byte tokenizer \(TOKENIZER=byte\) does not fit the policy: the corpus holds ids up to 256 but the policy's vocab_size is 200/,
  );
});

test("the cache keeps the most recently used versions; concurrent calls for a new version share one pull", async () => {
  const versions = async () => (await client.unary("getInfo", {})).cachedWeights.map((w) => w.version);
  const count = (v: number) => policy.calls.filter((c) => c === v).length;
  const at = (version: number) => ({ policyWeights: { modelId: "policy", version, source: "" } });
  assert.deepEqual(await versions(), [20, 7], "from the tests before");
  await ptxOk(at(8));
  assert.deepEqual(await versions(), [8, 20]);
  await ptxOk(at(7)); // evicted by 8: pulled again
  assert.deepEqual(await versions(), [7, 8]);
  const pulls = policy.calls.length;
  await ptxOk(at(8));
  assert.deepEqual(await versions(), [8, 7], "a hit makes 8 the most recently used");
  await ptxOk(at(7));
  await ptxOk(at(9));
  assert.deepEqual(await versions(), [9, 7], "8 was least recently used");
  assert.deepEqual(policy.calls.slice(pulls), [9], "hits pull nothing");

  const release = policy.hold();
  const v10 = { policyWeights: { modelId: "policy", version: 10, source: "" } };
  const a = ptx(v10);
  const b = ptx({ ...v10, cursor: 40 });
  while (count(10) < 1) await new Promise((r) => setTimeout(r, 5));
  await waitUntil(async () => (await client.unary("getInfo", {})).queueDepth === 2, "b has arrived and joined the pull");
  release();
  const [ra, rb] = (await Promise.all([a, b])) as PtxReply[];
  assert.equal(typeof ra, "object", String(ra));
  assert.equal(typeof rb, "object", String(rb));
  assert.equal(count(10), 1, "one pull for both");
  assert.equal(ra.loss.cacheHit, false);
  assert.equal(rb.loss.cacheHit, false);
  assert.equal(rb.loss.nextCursor, 42);
  assert.notEqual(ra.loss.loss, rb.loss.loss, "different batches");
});

test("repeated calls leak no tensors (apart from the cached models)", async () => {
  await ptxOk({ policyWeights: { modelId: "policy", version: 11, source: "" } });
  const baseline = (await app.memory()).numTensors;
  for (const dtype of [common.Dtype.DTYPE_FLOAT32, common.Dtype.DTYPE_FLOAT16]) await ptxOk({ policyWeights: { modelId: "policy", version: 11, source: "" }, dtype, cursor: 9 });
  assert.match(String(await ptx({ policyWeights: { modelId: "policy", version: 11, source: "" }, sequenceLength: 100 })), /^INVALID_ARGUMENT/);
  assert.equal((await app.memory()).numTensors, baseline);
  // A pull that evicts a version (no call holds it) frees that model: same shapes, same count.
  await ptxOk({ policyWeights: { modelId: "policy", version: 8, source: "" } });
  assert.equal((await client.unary("getInfo", {})).cachedWeights.length, 2);
  assert.equal((await app.memory()).numTensors, baseline);
});

test("a full queue answers RESOURCE_EXHAUSTED at once; the admitted calls complete", async () => {
  const cfg = loadConfig({ GRPC_PORT: "0", TOKENIZER: "byte", POLICY_ADDR: policy.address, QUEUE_CAPACITY: "1", MAX_SEQUENCES: "4", MAX_SEQUENCE_LENGTH: "32" });
  const app2 = await startPretrainMix(cfg, log);
  const c2 = createClient(pretrainMix.PretrainMixServiceClient, app2.server.address, { deadlineMs: testDeadlineMs(60_000) });
  const release = policy.hold();
  try {
    const pulls = policy.calls.length;
    const a = ptx({}, c2); // admitted: pulling
    const b = ptx({ cursor: 50 }, c2); // admitted: waiting behind it
    while (policy.calls.length === pulls) await new Promise((r) => setTimeout(r, 5));
    await waitUntil(async () => (await c2.unary("getInfo", {})).queueDepth === 2, "b waiting behind a's pull");
    const info = await c2.unary("getInfo", {});
    assert.deepEqual([info.queueDepth, info.maxQueueDepth], [2, 1]);
    assert.match(String(await ptx({}, c2)), /^RESOURCE_EXHAUSTED: pretrain-mix compute queue is full \(1 waiting\); retry later$/);
    release();
    const [ra, rb] = await Promise.all([a, b]);
    assert.equal(typeof ra, "object", String(ra));
    assert.equal(typeof rb, "object", String(rb));
    assert.equal(policy.calls.length, pulls + 1);
    assert.equal((await c2.unary("getInfo", {})).queueDepth, 0);
  } finally {
    release();
    c2.close();
    await app2.stop(500);
  }
});

test("a request's text files: split and tokenised like the built-in corpus, checked against their digest, cached", async () => {
  const train = byteStream(TEXT_DOCS.slice(0, 4).map((text) => ({ text })));
  const validation = byteStream([{ text: TEXT_DOCS[4] }]);
  const b = await sample({ sequences: 3, sequenceLength: 8, cursor: 1, textCorpus: textCorpus() });
  assert.deepEqual(b.batch?.tokens, windows(train, 8, [1, 2, 3]), "windows 1..3 of the four train documents' bytes, each followed by EOS");
  assert.equal(b.windowsPerEpoch, Math.floor(train.length / 8));
  const v = await sample({ split: VALIDATION, sequences: 1, sequenceLength: 8, textCorpus: textCorpus({ contentDigest: filesDigest(TEXT_FILES) }) });
  assert.deepEqual(v.batch?.tokens, windows(validation, 8, [0]), "the fifth document is the validation split");
  assert.equal((await sample({ sequences: 1, sequenceLength: 8 })).batch?.tokens.length, 8, "without text_corpus: the built-in corpus");
  assert.deepEqual((await sample({ sequences: 1, sequenceLength: 8 })).batch?.tokens, windows(stream.train, 8, [0]));
  // PtxGradients cuts the same windows: its loss is the one computed here on SampleBatch's tokens.
  const req = ptxRequest({ sequences: 2, sequenceLength: 8, cursor: 2, seed: 0, textCorpus: textCorpus() });
  const got = await ptxOk(req);
  const want = await localPtx(req);
  assert.ok(Math.abs(got.loss.loss - want.loss) < 1e-4, `loss ${got.loss.loss} vs ${want.loss}`);

  const bad = join(textDir, "bad.txt");
  writeFileSync(bad, Buffer.concat([Buffer.from("fine\n\nstill fine\n"), Buffer.from([0xc3, 0x28]), Buffer.from("\n")]));
  const cases: [Partial<pretrainMix.TextCorpus>, RegExp][] = [
    [{ files: [] }, /^INVALID_ARGUMENT: text_corpus\.files: must name 1\.\.1024 files, got 0$/],
    [{ files: ["a.txt"] }, /^INVALID_ARGUMENT: text_corpus\.files\[0\]: must be an absolute path, got "a\.txt"$/],
    [{ files: [TEXT_FILES[0], join(textDir, "missing.txt")] }, /^NOT_FOUND: text_corpus\.files\[1\]: .*missing\.txt: no such file on this service's machine$/],
    [{ files: [textDir] }, /^INVALID_ARGUMENT: text_corpus\.files\[0\]: .* is not a file$/],
    [{ files: [bad] }, /^INVALID_ARGUMENT: .*bad\.txt:4: text: not valid UTF-8$/],
    [{ validationFraction: 0.7 }, /^INVALID_ARGUMENT: text_corpus\.validation_fraction: must be in \[0, 0\.5\], got 0\.7$/],
    [{ contentDigest: "abc" }, /^INVALID_ARGUMENT: text_corpus\.content_digest: must be empty or 64 lower-case hex digits/],
    [{ contentDigest: "0".repeat(64) }, /^FAILED_PRECONDITION: text_corpus: the files read here have SHA-256 [0-9a-f]{64}, not the content_digest 0{64}: they changed/],
  ];
  for (const [over, want] of cases) assert.match(String(await call(sample({ sequences: 1, sequenceLength: 8, textCorpus: textCorpus(over) }))), want, JSON.stringify(over));
  assert.match(String(await ptx({ textCorpus: textCorpus({ files: ["rel.txt"] }) })), /^INVALID_ARGUMENT: text_corpus\.files\[0\]: must be an absolute path/, "PtxGradients checks it too");
  assert.match(String(await call(sample({ sequences: 1, sequenceLength: 64, textCorpus: textCorpus({ validationFraction: 0.5 }), split: VALIDATION }))), /^INVALID_ARGUMENT: sequence_length: 64 is longer than the whole validation split/);
});

test("without POLICY_ADDR: batches are served, PtxGradients is FAILED_PRECONDITION; VALID_FRACTION sets the split; DATA_ROOT confines text files", async () => {
  const root = mkdtempSync(join(tmpdir(), "pretrain-mix-root-"));
  writeFileSync(join(root, "in.txt"), "inside the root, long enough for a window\n");
  const app3 = await startPretrainMix(loadConfig({ GRPC_PORT: "0", TOKENIZER: "byte", VALID_FRACTION: "0.1", DATA_ROOT: root }), log);
  const c3 = createClient(pretrainMix.PretrainMixServiceClient, app3.server.address, { deadlineMs: testDeadlineMs(60_000) });
  try {
    const info = await c3.unary("getInfo", {});
    assert.deepEqual(info.splits.map((s) => s.documents), [450, 50]);
    assert.notEqual(info.corpusDigest, (await client.unary("getInfo", {})).corpusDigest, "another split, another digest");
    const b = await c3.unary("sampleBatch", { split: VALIDATION, sequences: 1, sequenceLength: 8, cursor: 0, seed: 0, textCorpus: undefined });
    assert.equal(b.batch?.tokens.length, 8);
    const text = (files: string[]) => c3.unary("sampleBatch", { split: TRAIN, sequences: 1, sequenceLength: 8, cursor: 0, seed: 0, textCorpus: { files, validationFraction: 0, contentDigest: "" } });
    assert.equal((await text([join(root, "in.txt")])).batch?.tokens.length, 8, "a file inside DATA_ROOT is read");
    const outsideRoot = /^PERMISSION_DENIED: text_corpus\.files\[0\]: ".*" is outside DATA_ROOT$/;
    assert.match(String(await call(text([join(textDir, "a.txt")]))), outsideRoot);
    // `..`, a symlink out of the root, a system file: refused before anything is read (nothing of it echoed)
    symlinkSync(textDir, join(root, "link-out"));
    symlinkSync("/etc/passwd", join(root, "passwd"));
    for (const p of [join(root, "..", basename(textDir), "a.txt"), join(root, "link-out", "a.txt"), join(root, "passwd"), "/etc/passwd"]) {
      assert.match(String(await call(text([p]))), outsideRoot, p);
    }
    // PtxGradients checks the same (the main service's DATA_ROOT is textDir)
    symlinkSync(root, join(textDir, "link-out"));
    for (const p of [join(textDir, "..", basename(root), "in.txt"), join(textDir, "link-out", "in.txt"), "/etc/passwd"]) {
      assert.match(String(await ptx({ textCorpus: textCorpus({ files: [p] }) })), outsideRoot, `PtxGradients: ${p}`);
    }
    assert.equal(String(await call(text([join(root, "in\0.txt")]))), "INVALID_ARGUMENT: text_corpus.files[0]: contains a NUL byte");
    assert.equal(String(await call(text([""]))), "INVALID_ARGUMENT: text_corpus.files[0]: is empty");
    assert.match(String(await ptx({}, c3)), /^FAILED_PRECONDITION: policy_weights: POLICY_ADDR is not configured on this pretrain-mix$/);
    assert.equal((await c3.unary("getInfo", {})).queueDepth, 0);
  } finally {
    c3.close();
    await app3.stop(500);
  }
});
