// The reference-model service on a real socket (127.0.0.1:0), called through the generated client.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { closeSync, constants, mkdtempSync, mkdirSync, openSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { initBackend } from "@rlhf/compute";
import { common, referenceModel, policy } from "@rlhf/proto";
import { createLogger, createClient, checkHealth, forRun, listServicesByReflection, startServer, serverStream, type KitClient, resultOrStatus as call } from "@rlhf/grpc-kit";
import { encodeTensorSet, uploadTensorSet, sendTensorSet, modelConfigToProto } from "@rlhf/tensor-transport";
import { GPT2, gpt2ParameterShapes, presetConfig, toHfConfig, type GPT2Config } from "@rlhf/model";
import { referenceTokenLogProbs, randomTestWeights } from "@rlhf/model/dist/testing/reference-gpt2";
import { handWrittenSafetensors, f32Bytes } from "@rlhf/model/dist/testing/hand-safetensors";
import { startReferenceModel, type ReferenceModelApp } from "./app";
import { loadConfig } from "./config";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "reference-model-test", level: "silent" });
const TINY: GPT2Config = { vocabSize: 40, nPositions: 16, nEmbd: 8, nLayer: 2, nHead: 2, layerNormEpsilon: 1e-5 };

let app: ReferenceModelApp;
let client: KitClient<referenceModel.ReferenceModelServiceClient>;
let dir: string;

before(async () => {
  // The service's tensors live in its compute worker (app.memory()); the test's own reference
  // computations use this thread's backend.
  await initBackend({ backend: "cpu" });
  dir = mkdtempSync(join(tmpdir(), "refmodel-"));
  const cfg = loadConfig({ GRPC_PORT: "0", MAX_BATCH_SEQUENCES: "4", MAX_BATCH_TOKENS: "40", RLHF_BACKEND: "cpu", CHECKPOINT_ROOT: dir });
  process.env.RLHF_BACKEND = "cpu";
  app = await startReferenceModel(cfg, log);
  client = createClient(referenceModel.ReferenceModelServiceClient, app.server.address, { deadlineMs: testDeadlineMs(20_000) });
});
after(async () => {
  client.close();
  await app.stop(1000);
});

const batchOf = (seqs: number[][], promptLengths: number[] = []): common.TokenBatch => ({ tokens: seqs.flat(), lengths: seqs.map((s) => s.length), promptLengths });

/** Writes a checkpoint folder by hand: GPT-2 names with the hub's `transformer.` prefix, an extra attn.bias buffer. */
function handCheckpoint(name: string, weights: Map<string, { shape: number[]; data: Float32Array | Int32Array }>): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const tensors = [...weights].map(([n, t]) => ({ name: `transformer.${n}`, dtype: "F32", shape: t.shape, bytes: f32Bytes(t.data) }));
  tensors.push({ name: "transformer.h.0.attn.bias", dtype: "F32", shape: [1, 1, 16, 16], bytes: f32Bytes(new Float32Array(256).fill(1)) });
  writeFileSync(join(d, "model.safetensors"), handWrittenSafetensors(tensors));
  writeFileSync(join(d, "config.json"), JSON.stringify({ model_type: "gpt2", vocab_size: 40, n_positions: 16, n_embd: 8, n_layer: 2, n_head: 2, activation_function: "gelu_new" }));
  return d;
}

const SEQS = [
  [1, 5, 9, 2, 33, 7, 0, 39],
  [3, 3],
  [12, 1, 30, 4, 4, 4, 18, 22, 11, 5, 6],
];

test("started without a model: NOT_SERVING and FAILED_PRECONDITION; health and reflection are served", async () => {
  assert.equal(await checkHealth(app.server.address), "NOT_SERVING");
  assert.equal(await call(client.unary("logProbs", { batch: batchOf(SEQS), temperature: 1 })), "FAILED_PRECONDITION: no model is loaded: call LoadWeights first");
  const names = await listServicesByReflection(app.server.address);
  assert.ok(names.includes("rlhf.reference_model.v1.ReferenceModelService"));
});

test("a hand-written checkpoint folder loads, and log-probs match an independent plain forward pass within 1e-5", async () => {
  const weights = randomTestWeights(gpt2ParameterShapes(TINY), 7);
  const ckpt = handCheckpoint("hand", weights);
  const loaded = await client.unary("loadWeights", { source: { $case: "checkpointDir", checkpointDir: ckpt } });
  assert.equal(loaded.config?.nLayer, 2);
  assert.equal(loaded.weights?.source, ckpt);
  assert.equal(await checkHealth(app.server.address), "SERVING");
  for (const temperature of [1, 0.7]) {
    const res = await client.unary("logProbs", { batch: batchOf(SEQS), temperature });
    assert.deepEqual(res.lengths, SEQS.map((s) => s.length - 1));
    let o = 0;
    SEQS.forEach((s) => {
      const want = referenceTokenLogProbs(TINY, weights, s, temperature);
      for (let t = 0; t < want.length; t++) {
        assert.ok(Math.abs(res.logprobs[o + t] - want[t]) < 1e-5, `T=${temperature} seq ${s} token ${t + 1}: ${res.logprobs[o + t]} vs ${want[t]}`);
      }
      o += want.length;
    });
  }
});

test("bad input gets INVALID_ARGUMENT naming the field and the limit, and leaks nothing", async () => {
  const before = (await app.memory()).numTensors;
  const cases: [common.TokenBatch | undefined, number, RegExp][] = [
    [batchOf([[1, 2, 40]]), 1, /^INVALID_ARGUMENT: batch\.tokens\[2\]: id 40 is outside the vocabulary \[0, 40\)$/],
    [batchOf([[1, -1]]), 1, /batch\.tokens\[1\]: id -1 is outside the vocabulary/],
    [{ tokens: [1, 2], lengths: [2, 0], promptLengths: [] }, 1, /batch\.lengths\[1\]: empty sequence/],
    [batchOf([Array(17).fill(1)]), 1, /batch\.lengths\[0\]: 17 tokens exceed the context length of 16/],
    [{ tokens: [1, 2, 3], lengths: [2], promptLengths: [] }, 1, /batch\.lengths: add up to 2 but batch\.tokens holds 3 ids/],
    [batchOf([[1], [1], [1], [1], [1]]), 1, /batch\.lengths: 5 sequences exceed the limit of 4 per request/],
    [batchOf([Array(16).fill(1), Array(16).fill(2), Array(16).fill(3)]), 1, /batch\.tokens: 48 tokens exceed the limit of 40 per request/],
    [batchOf([[1, 2]], [3]), 1, /batch\.prompt_lengths\[0\]: 3 exceeds the sequence length 2/],
    [{ tokens: [], lengths: [], promptLengths: [] }, 1, /batch\.lengths: must hold at least one sequence/],
    [undefined, 1, /batch: is required/],
    [batchOf([[1, 2]]), 1000, /temperature: must be in \[0\.01, 100\]/],
    [batchOf([[1, 2]]), -1, /temperature: must be in/],
  ];
  for (const [batch, temperature, re] of cases) {
    const got = await call(client.unary("logProbs", { batch, temperature }));
    assert.equal(typeof got, "string", `accepted: ${JSON.stringify(batch)}`);
    assert.match(got as string, /^INVALID_ARGUMENT: /);
    assert.match(got as string, re);
  }
  // still up, and a good call still works; no tensors left behind by any of it
  const ok = await client.unary("logProbs", { batch: batchOf([[1, 2, 3]]), temperature: 1 });
  assert.equal(ok.logprobs.length, 2);
  assert.equal((await app.memory()).numTensors, before);
});

test("repeated calls leak no tensors", async () => {
  await client.unary("logProbs", { batch: batchOf(SEQS), temperature: 1 });
  const before = (await app.memory()).numTensors;
  for (let i = 0; i < 5; i++) await client.unary("logProbs", { batch: batchOf(SEQS), temperature: 0.9 });
  assert.equal((await app.memory()).numTensors, before);
});

test("LoadWeights: random init, unknown folders, folders outside CHECKPOINT_ROOT, bad configs", async () => {
  const r = await client.unary("loadWeights", { source: { $case: "randomInit", randomInit: { config: modelConfigToProto(TINY), seed: 3 } } });
  assert.equal(r.weights?.source, "random:3");
  assert.match(String(await call(client.unary("loadWeights", { source: { $case: "checkpointDir", checkpointDir: join(dir, "nope") } }))), /^NOT_FOUND: .*nope/);
  assert.match(String(await call(client.unary("loadWeights", { source: { $case: "checkpointDir", checkpointDir: "/etc" } }))), /^PERMISSION_DENIED: checkpoint_dir: "\/etc" is outside CHECKPOINT_ROOT$/);
  // `..`, another absolute path, a symlink out of the root, NUL bytes
  const outside = mkdtempSync(join(tmpdir(), "refmodel-outside-"));
  symlinkSync(outside, join(dir, "link-out"));
  for (const p of [join(dir, "..", basename(outside)), outside, join(dir, "link-out")]) {
    assert.match(String(await call(client.unary("loadWeights", { source: { $case: "checkpointDir", checkpointDir: p } }))), /^PERMISSION_DENIED: checkpoint_dir: ".*" is outside CHECKPOINT_ROOT$/, p);
  }
  assert.equal(String(await call(client.unary("loadWeights", { source: { $case: "checkpointDir", checkpointDir: `${dir}/a\0b` } }))), "INVALID_ARGUMENT: checkpoint_dir: contains a NUL byte");
  assert.equal(String(await call(client.unary("loadWeights", { source: { $case: "checkpointDir", checkpointDir: "" } }))), "INVALID_ARGUMENT: checkpoint_dir: is empty");
  assert.match(
    String(await call(client.unary("loadWeights", { source: { $case: "randomInit", randomInit: { config: { ...modelConfigToProto(TINY), nHead: 3 }, seed: 1 } } }))),
    /^INVALID_ARGUMENT: random_init\.config\.n_embd: must be a multiple of n?Head/,
  );
  // every field within its limit, the whole far past any memory: refused before allocating
  assert.match(
    String(await call(client.unary("loadWeights", { source: { $case: "randomInit", randomInit: { config: { ...modelConfigToProto(TINY), nEmbd: 16384, nHead: 16, nLayer: 256 }, seed: 1 } } }))),
    /^INVALID_ARGUMENT: random_init\.config\.n_layer: this shape .* has 8\.\d+e\+11 parameters .* more than the limit of 2\^31 \(8 GiB\)/,
  );
  assert.match(String(await call(client.unary("loadWeights", { source: undefined }))), /^INVALID_ARGUMENT: source: set one of/);
  assert.match(String(await call(client.unary("loadWeights", { source: { $case: "policyWeights", policyWeights: { modelId: "policy", version: 1, source: "" } } }))), /^FAILED_PRECONDITION: policy_weights: POLICY_ADDR is not configured/);
  // the failed loads changed nothing
  const info = await client.unary("getInfo", {});
  assert.equal(info.weights?.source, "random:3");
  assert.equal(info.backend, "cpu");
  assert.equal(info.maxBatchSequences, 4);
});

test("UploadWeights applies a verified set; a corrupted, mismatched or cancelled one changes nothing", async () => {
  await client.unary("loadWeights", { source: { $case: "randomInit", randomInit: { config: modelConfigToProto(TINY), seed: 1 } } });
  const baseline = await client.unary("logProbs", { batch: batchOf(SEQS), temperature: 1 });
  const weights = randomTestWeights(gpt2ParameterShapes(TINY), 99);
  const meta = { kind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS, weights: { modelId: "policy", version: 12, source: "" }, modelConfig: modelConfigToProto(TINY) };

  // corrupted digest -> DATA_LOSS
  const c1 = client.clientStream("uploadWeights");
  for (const chunk of encodeTensorSet(weights, meta, { chunkBytes: 256 })) {
    if (chunk.part?.$case === "trailer") chunk.part.trailer.digest = Buffer.alloc(32, 1);
    await c1.write({ chunk });
  }
  assert.match(String(await call(c1.end())), /^DATA_LOSS: chunk: digest mismatch/);
  // a tensor with the wrong shape for the declared architecture -> INVALID_ARGUMENT
  const wrong = new Map(weights);
  wrong.set("wpe.weight", { dtype: "float32", shape: [15, 8], data: new Float32Array(120) });
  assert.match(String(await call(uploadTensorSet(client.clientStream("uploadWeights"), (chunk) => ({ chunk }), wrong, meta))), /^INVALID_ARGUMENT: .*wpe\.weight/);
  // truncated (no trailer) -> DATA_LOSS
  const c3 = client.clientStream("uploadWeights");
  for (const chunk of encodeTensorSet(weights, meta)) if (chunk.part?.$case !== "trailer") await c3.write({ chunk });
  assert.match(String(await call(c3.end())), /^DATA_LOSS: chunk: stream ended before its trailer/);
  // complete and valid, but the client cancels before it half-closes -> CANCELLED, not applied
  const ac = new AbortController();
  const c4 = client.clientStream("uploadWeights", { signal: ac.signal });
  for (const chunk of encodeTensorSet(weights, meta, { chunkBytes: 256 })) await c4.write({ chunk });
  await new Promise((r) => setTimeout(r, 50));
  ac.abort();
  assert.match(String(await call(c4.end())), /^CANCELLED/);
  // complete and valid, but without its architecture -> INVALID_ARGUMENT naming the field (the
  // shapes fit a model with another head count just as well)
  const headless = { ...meta, modelConfig: undefined };
  assert.match(String(await call(uploadTensorSet(client.clientStream("uploadWeights"), (chunk) => ({ chunk }), weights, headless))), /^INVALID_ARGUMENT: chunk\[0\]\.header\.model_config: is required/);

  const unchanged = await client.unary("logProbs", { batch: batchOf(SEQS), temperature: 1 });
  assert.deepEqual(unchanged.logprobs, baseline.logprobs, "nothing was half-applied");

  const res = await uploadTensorSet(client.clientStream("uploadWeights"), (chunk) => ({ chunk }), weights, meta, { chunkBytes: 256 });
  assert.equal(res.weights?.version, 12);
  const after = await client.unary("logProbs", { batch: batchOf(SEQS), temperature: 1 });
  const want = referenceTokenLogProbs(TINY, weights, SEQS[0]);
  want.forEach((v, t) => assert.ok(Math.abs(after.logprobs[t] - v) < 1e-5));
});

test("LoadWeights from the policy at a version pulls its weights over a stream", async () => {
  const policyWeights = GPT2.random(presetConfig("tiny"), 5, { trainable: false });
  const host = policyWeights.toHostTensors();
  const config = policyWeights.config;
  const plog = createLogger({ service: "fake-policy", level: "silent" });
  // A real PolicyService.StreamWeights endpoint (the policy service itself is a later issue).
  const policySrv = await startServer({
    log: plog,
    services: [
      {
        definition: policy.PolicyServiceService,
        implementation: {
          streamWeights: serverStream(plog, async (req: policy.StreamWeightsRequest, send) => {
            await sendTensorSet(send, (chunk): policy.StreamWeightsResponse => ({ chunk }), host, {
              kind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS,
              weights: { modelId: "policy", version: req.version ?? 4, source: "" },
              modelConfig: modelConfigToProto(config),
            });
          }),
        },
      },
    ],
  });
  const cfg = loadConfig({ GRPC_PORT: "0", POLICY_ADDR: policySrv.address });
  const app2 = await startReferenceModel(cfg, log);
  const c2 = createClient(referenceModel.ReferenceModelServiceClient, app2.server.address);
  const r = await c2.unary("loadWeights", { source: { $case: "policyWeights", policyWeights: { modelId: "policy", version: 4, source: "" } } });
  assert.equal(r.weights?.version, 4);
  assert.equal(r.weights?.modelId, "policy");
  const seq = [10, 20, 30, 40, 50];
  const res = await c2.unary("logProbs", { batch: batchOf([seq]), temperature: 1 });
  const want = policyWeights.tokenLogProbs({ tokens: Int32Array.from(seq), lengths: [5] })[0];
  assert.deepEqual(res.logprobs, Array.from(want));
  c2.close();
  await app2.stop(500);
  await policySrv.shutdown(500);
  policyWeights.dispose();
  void toHfConfig;
});

test("LoadWeights from a policy that is down answers UNAVAILABLE and keeps the current model", async () => {
  const cfg = loadConfig({ GRPC_PORT: "0", POLICY_ADDR: "127.0.0.1:1", INIT_PRESET: "tiny", INIT_SEED: "2" });
  const app3 = await startReferenceModel(cfg, log);
  const c3 = createClient(referenceModel.ReferenceModelServiceClient, app3.server.address);
  const got = await call(c3.unary("loadWeights", { source: { $case: "policyWeights", policyWeights: { modelId: "policy", version: 1, source: "" } } }));
  assert.match(String(got), /^UNAVAILABLE: /);
  const info = await c3.unary("getInfo", {});
  assert.equal(info.weights?.source, "random:2");
  assert.equal(await checkHealth(app3.server.address), "SERVING");
  c3.close();
  await app3.stop(500);
});

test("a checkpoint load that never completes: DEADLINE_EXCEEDED for its caller, NOT_SERVING until it ends, then the queue moves", async () => {
  // config.json is a FIFO with no writer: reading it blocks until the test writes to it.
  const root = mkdtempSync(join(tmpdir(), "refmodel-stuck-"));
  const stuck = join(root, "stuck");
  mkdirSync(stuck);
  execFileSync("mkfifo", [join(stuck, "config.json")]);
  const cfg = loadConfig({ GRPC_PORT: "0", RLHF_BACKEND: "cpu", CHECKPOINT_ROOT: root, FILE_DEADLINE_MS: "1000", INIT_PRESET: "tiny" });
  // Opening the FIFO for writing without blocking fails (ENXIO) when no reader waits: nothing to end.
  const unblock = () => {
    try {
      const fd = openSync(join(stuck, "config.json"), constants.O_WRONLY | constants.O_NONBLOCK);
      writeSync(fd, "{}");
      closeSync(fd);
    } catch {
      // no reader (any more)
    }
  };
  const app2 = await startReferenceModel(cfg, log);
  const c2 = createClient(referenceModel.ReferenceModelServiceClient, app2.server.address, { deadlineMs: testDeadlineMs(20_000) });
  try {
    assert.equal(await checkHealth(app2.server.address), "SERVING");
    const started = Date.now();
    const load = call(c2.unary("loadWeights", { source: { $case: "checkpointDir", checkpointDir: stuck } }));
    // A call queued behind it waits (the load may still replace the model); health answers meanwhile.
    const queued = c2.unary("logProbs", { batch: batchOf([[1, 2, 3]]), temperature: 1 });
    assert.match(String(await load), /^DEADLINE_EXCEEDED: LoadCheckpoint from .*stuck did not finish within 1000 ms; the reference-model compute queue waits for it/);
    assert.ok(Date.now() - started >= 900);
    assert.equal(await checkHealth(app2.server.address), "NOT_SERVING");
    // The file operation ends (a writer comes and goes: the read sees "{}" and fails): the queue
    // moves, the queued call runs, and health is SERVING again.
    unblock();
    const r = await queued;
    assert.equal(r.lengths[0], 2);
    assert.equal(await checkHealth(app2.server.address), "SERVING");
    assert.equal((await c2.unary("getInfo", {})).weights?.source, "random:0", "the failed load changed nothing");
  } finally {
    unblock(); // also when an assertion failed: the blocked read must end, or this process could not exit
    c2.close();
    await app2.stop(1000);
  }
});

test("RunLease: a run takes the lease, another run's load is refused and changes nothing, the holder gives it back", async () => {
  await client.unary("loadWeights", { source: { $case: "randomInit", randomInit: { config: modelConfigToProto(TINY), seed: 3 } } });
  const before = (await client.unary("getInfo", {})).weights;
  const first = forRun(client, "lease-first");
  const second = forRun(client, "lease-second");
  assert.equal((await first.unary("runLease", { release: false })).lease?.holder, "lease-first");
  assert.match(String(await call(second.unary("loadWeights", { source: { $case: "randomInit", randomInit: { config: modelConfigToProto(TINY), seed: 4 } } }))), /^FAILED_PRECONDITION: reference-model is leased to run lease-first .*: LoadWeights of run lease-second refused$/);
  assert.match(String(await call(client.unary("runLease", { release: true }))), /^INVALID_ARGUMENT: release: a release names its run in the metadata x-rlhf-run-id$/);
  assert.deepEqual((await client.unary("getInfo", {})).weights, before, "the refused load changed nothing");
  const given = (await first.unary("runLease", { release: true })).lease;
  assert.equal(given?.holder, "", "given back");
  assert.equal(given?.ttlMs, 600_000);
  assert.equal((await second.unary("runLease", { release: true })).lease?.holder, "", "a free service: taken and given back in one call");
});
