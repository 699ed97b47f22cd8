// Requests that cannot be decoded get INVALID_ARGUMENT naming the method (grpc-js alone answers
// INTERNAL "Error deserializing request"), on every kind of call; the handler never runs and the
// server keeps serving. Raw bytes over a real socket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { common, policy, ppoCoordinator, referenceModel, rewardModel } from "@rlhf/proto";
import { createLogger, startServer, unary, clientStream, serverStream } from "./index";
import { int64Value, locateFault } from "./decode";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "decode-test", destination: new Writable({ write: (_c, _e, cb) => cb() }), level: "debug" });
const raw = (b: Buffer) => b;

/** The bytes of `v` as a protobuf varint. */
function varint(v: bigint): number[] {
  const out: number[] = [];
  for (; v >= 0x80n; v >>= 7n) out.push(Number((v & 0x7fn) | 0x80n));
  out.push(Number(v));
  return out;
}

/** WatchRunRequest{run_id: "r", after_sequence: 2^60}: well-formed protobuf the generated decoder refuses. */
const hugeUint64 = () => Buffer.from([0x0a, 0x01, 0x72, 0x10, ...varint(1n << 60n)]);
// Field 1, length-delimited, declaring 100 bytes that never come.
const TRUNCATED = Buffer.from([0x0a, 0x64, 0x01]);

test("undecodable requests are INVALID_ARGUMENT naming the method, on unary, server- and client-streaming calls", async () => {
  let handled = 0;
  const srv = await startServer({
    log,
    services: [
      {
        definition: referenceModel.ReferenceModelServiceService,
        implementation: {
          logProbs: unary(log, async () => {
            handled++;
            return { logprobs: [], lengths: [], weights: undefined };
          }),
          uploadWeights: clientStream(log, async (reqs: AsyncIterable<unknown>) => {
            for await (const _r of reqs) handled++;
            return { bytesReceived: 0, weights: undefined };
          }),
        },
      },
      {
        definition: ppoCoordinator.PpoCoordinatorServiceService,
        implementation: {
          watchRun: serverStream(log, async () => {
            handled++;
          }),
        },
      },
    ],
  });
  const c = new grpc.Client(srv.address, grpc.credentials.createInsecure());
  const deadline = () => Date.now() + testDeadlineMs(5000);
  try {
    const u = await new Promise<grpc.ServiceError | null>((resolve) =>
      c.makeUnaryRequest("/rlhf.reference_model.v1.ReferenceModelService/LogProbs", raw, raw, TRUNCATED, new grpc.Metadata(), { deadline: deadline() }, (e) => resolve(e)),
    );
    assert.equal(u?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(u?.details ?? "", /^batch: cannot decode the LogProbs request message: the message breaks off inside this field/);

    const s = c.makeServerStreamRequest("/rlhf.ppo_coordinator.v1.PpoCoordinatorService/WatchRun", raw, raw, hugeUint64(), new grpc.Metadata(), { deadline: deadline() });
    const se = await new Promise<grpc.ServiceError>((resolve) => {
      s.on("data", () => undefined);
      s.on("error", resolve);
    });
    assert.equal(se.code, grpc.status.INVALID_ARGUMENT, se.details);
    assert.equal(se.details, "after_sequence: cannot decode the WatchRun request message: 1152921504606846976 is outside ±(2^53 − 1) = ±9007199254740991, the integers this service reads exactly");

    const cs = await new Promise<grpc.ServiceError | null>((resolve) => {
      const w = c.makeClientStreamRequest("/rlhf.reference_model.v1.ReferenceModelService/UploadWeights", raw, raw, new grpc.Metadata(), { deadline: deadline() }, (e) => resolve(e));
      w.write(Buffer.alloc(0)); // an empty message decodes (all defaults)
      w.write(TRUNCATED);
      w.end();
    });
    assert.equal(cs?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(cs?.details ?? "", /^requests\[1\]\.chunk: cannot decode the UploadWeights request message: the message breaks off/);
    assert.equal(handled, 1, "only the empty stream message reached a handler");
  } finally {
    c.close();
    await srv.shutdown(500);
  }
});

test("the field a request fails on is named: nested, repeated (packed or not), signed, truncated; a good message has none", () => {
  const header = (over: Partial<common.TensorSetHeader>) =>
    referenceModel.UploadWeightsRequest.encode({ chunk: { part: { $case: "header", header: common.TensorSetHeader.fromPartial({ tensors: [{ name: "a", byteLength: 4 }, { name: "b", byteLength: 4 }], totalBytes: 8, ...over }) } } }).finish();
  const upload = "/rlhf.reference_model.v1.ReferenceModelService/UploadWeights";
  assert.equal(locateFault(upload, header({})), undefined);
  assert.deepEqual(locateFault(upload, header({ totalBytes: 2 ** 60 })), { path: "chunk.header.total_bytes", problem: "1152921504606846976 is outside ±(2^53 − 1) = ±9007199254740991, the integers this service reads exactly" });
  assert.equal(locateFault(upload, header({ tensors: [{ name: "a", dtype: 0, shape: [1, 2], byteLength: 4 }, { name: "b", dtype: 0, shape: [3], byteLength: 2 ** 62 }] }))?.path, "chunk.header.tensors[1].byte_length");
  // A message cut short names the field it breaks off in.
  const whole = header({ totalBytes: 2 ** 60 });
  assert.match(locateFault(upload, whole.subarray(0, whole.length - 3))?.path ?? "", /^chunk/);
  // The bound itself is fine, one past it is not. No contract has a signed 64-bit field yet: their
  // raw bits are read as protobuf writes them (int64 two's complement, sint64 zigzag).
  assert.equal(int64Value("TYPE_INT64", (1n << 64n) - 1n), -1n);
  assert.equal(int64Value("TYPE_SFIXED64", 1n << 63n), -(1n << 63n));
  assert.equal(int64Value("TYPE_SINT64", 3n), -2n);
  assert.equal(int64Value("TYPE_SINT64", 4n), 2n);
  assert.equal(int64Value("TYPE_UINT32", 4n), undefined);
  const generate = "/rlhf.policy.v1.PolicyService/Generate";
  const gen = (seed: number) => policy.GenerateRequest.encode(policy.GenerateRequest.fromPartial({ prompts: { tokens: [1, 2, 3], lengths: [3], promptLengths: [] }, seed })).finish();
  assert.equal(locateFault(generate, gen(Number.MAX_SAFE_INTEGER)), undefined);
  assert.equal(locateFault(generate, gen(2 ** 53))?.path, "seed");
  // Packed runs are skipped whole; a nested message cut short, and a wire type that does not exist, are named.
  const packed = Buffer.from([0x0a, 0x07, 0x0a, 0x03, 0x01, 0x02, 0x03, 0x12, 0x00]); // prompts.tokens [1, 2, 3], lengths packed but empty
  assert.equal(locateFault(generate, packed), undefined);
  assert.deepEqual(locateFault(generate, Buffer.from([0x0a, 0x05, 0x0a, 0x03, 0x01, 0x02])), { path: "prompts", problem: "the message breaks off inside this field (truncated, or not this message)" });
  assert.deepEqual(locateFault(generate, Buffer.from([0x0a, 0x02, 0x12, 0x05])), { path: "prompts.lengths", problem: "the message breaks off inside this field (truncated, or not this message)" });
  assert.deepEqual(locateFault(generate, Buffer.from([0x3e, 0x01])), { path: "seed", problem: "wire type 6 does not exist" });
  assert.equal(locateFault("/rlhf.policy.v1.PolicyService/NoSuchMethod", gen(2 ** 53)), undefined);
  // A walk reads at most 20,000 fields, then leaves the decoder's reason (a huge request costs little).
  const accuracy = "/rlhf.reward_model.v1.RewardModelService/Accuracy";
  const badAfter = (n: number) => {
    const pairs = Array.from({ length: n }, () => ({ prompt: [1], chosen: [2], rejected: [3] }));
    const batch = Buffer.concat([rewardModel.ComparisonBatch.encode({ groups: [], pairs }).finish(), Buffer.from([0x2f])]); // then field 5, wire type 7
    return Buffer.concat([Buffer.from([0x0a, ...varint(BigInt(batch.length))]), batch]); // field 1 (comparisons), length-delimited
  };
  assert.deepEqual(locateFault(accuracy, badAfter(1000)), { path: "comparisons.field 5", problem: "wire type 7 does not exist" });
  assert.equal(locateFault(accuracy, badAfter(10_000)), undefined);
});
