import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { common, policy, pretrainMix, rewardModel, descriptorSetPath } from "./index";

// [method, client streaming, server streaming] per service, in declaration order. Changing a
// contract's shape must be a deliberate edit here too.
type MethodShape = [name: string, clientStreaming: boolean, serverStreaming: boolean];
const expected: Record<string, MethodShape[]> = {
  "rlhf.reference_model.v1.ReferenceModelService": [
    ["LogProbs", false, false],
    ["LoadWeights", false, false],
    ["UploadWeights", true, false],
    ["GetInfo", false, false],
    ["RunLease", false, false],
  ],
  "rlhf.policy.v1.PolicyService": [
    ["Sft", true, true],
    ["Generate", false, true],
    ["Evaluate", false, false],
    ["PpoUpdate", true, false],
    ["StreamWeights", false, true],
    ["InitCritic", false, false],
    ["LoadCheckpoint", false, false],
    ["SaveCheckpoint", false, false],
    ["GetInfo", false, false],
    ["RunLease", false, false],
  ],
  "rlhf.reward_model.v1.RewardModelService": [
    ["Train", true, true],
    ["Score", false, false],
    ["Normalize", true, false],
    ["Accuracy", false, false],
    ["StreamWeights", false, true],
    ["LoadCheckpoint", false, false],
    ["SaveCheckpoint", false, false],
    ["GetInfo", false, false],
    ["RunLease", false, false],
  ],
  "rlhf.pretrain_mix.v1.PretrainMixService": [
    ["SampleBatch", false, false],
    ["PtxGradients", false, true],
    ["GetInfo", false, false],
  ],
  "rlhf.ppo_coordinator.v1.PpoCoordinatorService": [
    ["StartRun", false, false],
    ["GetRun", false, false],
    ["ListRuns", false, false],
    ["CancelRun", false, false],
    ["ResumeRun", false, false],
    ["WatchRun", false, true],
  ],
  "rlhf.labeling.v1.LabelingService": [
    ["SubmitBatch", false, false],
    ["GetBatch", false, false],
    ["WatchBatch", false, true],
    ["ListRankings", false, false],
    ["ListBatches", false, false],
    ["GetInfo", false, false],
  ],
};

function loadServices() {
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSetPath));
  const services = new Map<string, { pkg: string; methods: { name: string; inputType: string; outputType: string; clientStreaming: boolean; serverStreaming: boolean }[] }>();
  for (const file of set.file) {
    for (const svc of file.service) {
      services.set(`${file.package}.${svc.name}`, {
        pkg: file.package,
        methods: svc.method.map((m) => ({
          name: m.name,
          inputType: m.inputType,
          outputType: m.outputType,
          clientStreaming: m.clientStreaming,
          serverStreaming: m.serverStreaming,
        })),
      });
    }
  }
  return services;
}

test("the descriptor set holds the five services with their methods and streaming shapes", () => {
  const services = loadServices();
  assert.deepEqual([...services.keys()].sort(), Object.keys(expected).sort());
  for (const [name, methods] of Object.entries(expected)) {
    const svc = services.get(name)!;
    const actual = svc.methods.map((m): MethodShape => [m.name, m.clientStreaming, m.serverStreaming]);
    assert.deepEqual(actual, methods, name);
    for (const m of svc.methods) {
      // buf STANDARD: one <Rpc>Request / <Rpc>Response per RPC, in the service's package.
      assert.equal(m.inputType, `.${svc.pkg}.${m.name}Request`, `${name}.${m.name} input`);
      assert.equal(m.outputType, `.${svc.pkg}.${m.name}Response`, `${name}.${m.name} output`);
    }
  }
});

test("generated grpc-js definitions agree with the descriptor set", () => {
  const services = loadServices();
  const generated: [string, Record<string, { path: string; requestStream: boolean; responseStream: boolean }>][] = [
    ["rlhf.policy.v1.PolicyService", policy.PolicyServiceService],
    ["rlhf.reward_model.v1.RewardModelService", rewardModel.RewardModelServiceService],
    ["rlhf.pretrain_mix.v1.PretrainMixService", pretrainMix.PretrainMixServiceService],
  ];
  for (const [name, def] of generated) {
    const fromDescriptor = services.get(name)!.methods.map((m) => [`/${name}/${m.name}`, m.clientStreaming, m.serverStreaming]);
    const fromTs = Object.values(def).map((d) => [d.path, d.requestStream, d.responseStream]);
    assert.deepEqual(fromTs, fromDescriptor, name);
  }
});

test("a TensorSetChunk stream round-trips through encode/decode and its digest still matches", () => {
  const t0 = Buffer.from(new Float32Array([1.5, -2, 0.25, 3]).buffer); // [2, 2] float32
  const t1 = Buffer.from(new Float32Array([7]).buffer); // [1] float32
  const digest = createHash("sha256").update(t0).update(t1).digest();
  // fromPartial fills every field the test leaves out (e.g. model_config, unset for gradients).
  const parts: Parameters<typeof common.TensorSetChunk.fromPartial>[0][] = [
    {
      part: {
        $case: "header",
        header: {
          kind: common.TensorSetKind.TENSOR_SET_KIND_GRADIENTS,
          weights: { modelId: "policy", version: 41, source: "random:7" },
          tensors: [
            { name: "h.0.attn.c_attn.weight", dtype: common.Dtype.DTYPE_FLOAT32, shape: [2, 2], byteLength: 16 },
            { name: "ln_f.bias", dtype: common.Dtype.DTYPE_FLOAT32, shape: [1], byteLength: 4 },
          ],
          totalBytes: 20,
          digestAlgorithm: common.DigestAlgorithm.DIGEST_ALGORITHM_SHA256,
        },
      },
    },
    { part: { $case: "data", data: { tensorIndex: 0, offset: 0, data: t0.subarray(0, 8) } } },
    { part: { $case: "data", data: { tensorIndex: 0, offset: 8, data: t0.subarray(8) } } },
    { part: { $case: "data", data: { tensorIndex: 1, offset: 0, data: t1 } } },
    { part: { $case: "trailer", trailer: { digest } } },
  ];
  const chunks = parts.map((c) => common.TensorSetChunk.fromPartial(c));

  const decoded = chunks.map((c) => common.TensorSetChunk.decode(common.TensorSetChunk.encode(c).finish()));
  assert.deepEqual(decoded, chunks);

  // The receiver's view: header first, data in order, trailer last with a matching digest.
  assert.equal(decoded[0].part?.$case, "header");
  assert.equal(decoded.at(-1)?.part?.$case, "trailer");
  const hash = createHash("sha256");
  for (const c of decoded) if (c.part?.$case === "data") hash.update(c.part.data.data);
  const last = decoded.at(-1)!.part;
  assert.ok(last?.$case === "trailer");
  assert.deepEqual(hash.digest(), last.trailer.digest);

  // Wrapped as PpoUpdate's second part, a chunk keeps its oneof case and bytes.
  const wrapped = policy.PpoUpdateRequest.decode(
    policy.PpoUpdateRequest.encode({ part: { $case: "ptxGradients", ptxGradients: chunks[1] } }).finish(),
  );
  assert.deepEqual(wrapped, { part: { $case: "ptxGradients", ptxGradients: chunks[1] } });
});

test("optional fields keep presence: EOS id 0 differs from no EOS id", () => {
  const unset = policy.GenerateRequest.decode(policy.GenerateRequest.encode(policy.GenerateRequest.fromPartial({})).finish());
  assert.equal(unset.eosTokenId, undefined);
  const zero = policy.GenerateRequest.decode(
    policy.GenerateRequest.encode(policy.GenerateRequest.fromPartial({ eosTokenId: 0 })).finish(),
  );
  assert.equal(zero.eosTokenId, 0);
});
