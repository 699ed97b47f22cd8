import { test } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { common, policy, referenceModel } from "@rlhf/proto";
import { DomainError } from "@rlhf/errors";
import type { NamedHostTensors } from "@rlhf/compute";
import { createLogger, startServer, serverStream, clientStream, createClient } from "@rlhf/grpc-kit";
import { encodeTensorSet, TensorSetReceiver, receiveBudget, receiveTensorSet, sendTensorSet, uploadTensorSet, type TensorSetMeta } from "./stream";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const WEIGHTS: TensorSetMeta = { kind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS, weights: { modelId: "policy", version: 3, source: "" } };

function sampleSet(): NamedHostTensors {
  const a = new Float32Array(3000).map((_, i) => Math.sin(i) * 10);
  return new Map([
    ["wte.weight", { dtype: "float32", shape: [100, 30], data: a }],
    ["ids", { dtype: "int32", shape: [5], data: Int32Array.from([1, -2, 3, 2 ** 31 - 1, -(2 ** 31)]) }],
    ["scalar", { dtype: "float32", shape: [], data: Float32Array.from([0.5]) }],
    ["empty", { dtype: "float32", shape: [0, 4], data: new Float32Array(0) }],
  ]);
}

function decode(chunks: common.TensorSetChunk[]) {
  const r = new TensorSetReceiver();
  for (const c of chunks) r.push(c);
  return r.finish();
}

function expectError(fn: () => unknown, code: string, re: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DomainError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return true;
  });
}

test("a tensor set round-trips through chunks, in float32 and in the float16 wire format", () => {
  const set = sampleSet();
  const chunks = [...encodeTensorSet(set, WEIGHTS, { chunkBytes: 1000 })];
  assert.equal(chunks[0].part?.$case, "header");
  assert.equal(chunks.at(-1)?.part?.$case, "trailer");
  assert.ok(chunks.length > 10, "split into many pieces");
  const got = decode(chunks);
  assert.equal(got.weights?.version, 3);
  assert.deepEqual([...got.tensors.keys()], [...set.keys()]);
  for (const [k, t] of set) {
    assert.deepEqual(got.tensors.get(k)?.shape, t.shape, k);
    assert.deepEqual(Array.from(got.tensors.get(k)!.data), Array.from(t.data), k);
  }
  const half = decode([...encodeTensorSet(set, WEIGHTS, { wireDtype: "float16" })]);
  assert.equal(half.bytes, 3000 * 2 + 5 * 4 + 2);
  const a = set.get("wte.weight")!.data;
  const b = half.tensors.get("wte.weight")!.data;
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= Math.abs(a[i]) * 1e-3 + 1e-7, `element ${i}`);
  assert.deepEqual(Array.from(half.tensors.get("ids")!.data), Array.from(set.get("ids")!.data), "int32 stays exact");
});

test("a digest mismatch is DATA_LOSS and returns nothing", () => {
  const chunks = [...encodeTensorSet(sampleSet(), WEIGHTS, { chunkBytes: 1000 })];
  const data = chunks[3].part as { $case: "data"; data: common.TensorSetData };
  data.data.data = Buffer.from(data.data.data);
  data.data.data[7] ^= 1;
  expectError(() => decode(chunks), "DATA_LOSS", /digest mismatch/);
});

test("a truncated stream is DATA_LOSS", () => {
  const chunks = [...encodeTensorSet(sampleSet(), WEIGHTS, { chunkBytes: 1000 })];
  expectError(() => decode(chunks.slice(0, -1)), "DATA_LOSS", /ended before its trailer \(received \d+ of 12024 bytes\)/);
  const noLastPiece = [...chunks.slice(0, -3), chunks.at(-1)!];
  expectError(() => decode(noLastPiece), "DATA_LOSS", /stream ended early/);
  expectError(() => new TensorSetReceiver().finish(), "DATA_LOSS", /before its header/);
});

test("a chunk past the declared size, out of order, or before the header is INVALID_ARGUMENT", () => {
  const set: NamedHostTensors = new Map([["x", { dtype: "float32", shape: [4], data: new Float32Array(4) }]]);
  const [header] = encodeTensorSet(set, WEIGHTS);
  const piece = (offset: number, n: number, tensorIndex = 0): common.TensorSetChunk => ({ part: { $case: "data", data: { tensorIndex, offset, data: Buffer.alloc(n) } } });
  expectError(() => decode([header, piece(0, 20)]), "INVALID_ARGUMENT", /chunk\[1\]\.data\.data: chunk past the declared size of "x": bytes 0\.\.20 of 16/);
  expectError(() => decode([header, piece(4, 4)]), "INVALID_ARGUMENT", /chunk\[1\]\.data\.offset: is 4 but 0 bytes/);
  expectError(() => decode([header, piece(0, 4, 1)]), "INVALID_ARGUMENT", /tensor_index: 1 is not a declared tensor/);
  expectError(() => decode([piece(0, 4)]), "INVALID_ARGUMENT", /data before the header/);
  expectError(() => decode([header, header]), "INVALID_ARGUMENT", /second header/);
});

test("a header whose dtype or shape disagrees with its byte length is INVALID_ARGUMENT", () => {
  const [h] = encodeTensorSet(new Map([["x", { dtype: "float32", shape: [2, 3], data: new Float32Array(6) }]]), WEIGHTS);
  const header = (h.part as { $case: "header"; header: common.TensorSetHeader }).header;
  const bad = (mutate: (hd: common.TensorSetHeader) => void) => {
    const copy = structuredClone(header);
    mutate(copy);
    return [{ part: { $case: "header" as const, header: copy } }];
  };
  expectError(() => decode(bad((x) => (x.tensors[0].shape = [2, 4]))), "INVALID_ARGUMENT", /byte_length: is 24 but shape \[2, 4\] of DTYPE_FLOAT32 needs 32/);
  expectError(() => decode(bad((x) => (x.tensors[0].dtype = common.Dtype.DTYPE_FLOAT16))), "INVALID_ARGUMENT", /needs 12/);
  expectError(() => decode(bad((x) => (x.tensors[0].dtype = common.Dtype.DTYPE_UNSPECIFIED))), "INVALID_ARGUMENT", /tensors\[0\]\.dtype/);
  expectError(() => decode(bad((x) => (x.totalBytes = 99))), "INVALID_ARGUMENT", /total_bytes: is 99 but the tensors add up to 24/);
  expectError(() => decode(bad((x) => x.tensors.push({ ...x.tensors[0] }))), "INVALID_ARGUMENT", /duplicate tensor name "x"/);
  expectError(() => decode(bad((x) => (x.kind = common.TensorSetKind.TENSOR_SET_KIND_UNSPECIFIED))), "INVALID_ARGUMENT", /kind: must be WEIGHTS or GRADIENTS/);
  const r = new TensorSetReceiver({ maxTotalBytes: 10 });
  expectError(() => r.push(h), "INVALID_ARGUMENT", /24 exceeds the limit of 10 bytes/);
  const g = new TensorSetReceiver({ expectKind: common.TensorSetKind.TENSOR_SET_KIND_GRADIENTS });
  expectError(() => g.push(h), "INVALID_ARGUMENT", /expected TENSOR_SET_KIND_GRADIENTS/);
});

test("NaN in streamed float data is rejected with the tensor named", () => {
  const set: NamedHostTensors = new Map([["bad", { dtype: "float32", shape: [3], data: Float32Array.from([1, NaN, 2]) }]]);
  assert.throws(() => decode([...encodeTensorSet(set, WEIGHTS)]), (e: DomainError) => e.code === "INVALID_ARGUMENT" && /"bad"/.test(e.message));
});

const log = createLogger({ service: "stream-test", level: "silent" });

test("server streaming over real gRPC respects back-pressure from a slow consumer", async () => {
  const MB = 1 << 20;
  const big: NamedHostTensors = new Map(
    Array.from({ length: 16 }, (_, i) => [`t${i}`, { dtype: "float32" as const, shape: [MB], data: new Float32Array(MB).fill(i) }]),
  ); // 64 MiB
  let sent = 0;
  let received = 0;
  let maxAhead = 0;
  const srv = await startServer({
    log,
    services: [
      {
        definition: policy.PolicyServiceService,
        implementation: {
          streamWeights: serverStream(log, async (_req: policy.StreamWeightsRequest, send) => {
            await sendTensorSet(
              async (m: policy.StreamWeightsResponse) => {
                await send(m);
                if (m.chunk?.part?.$case === "data") sent += m.chunk.part.data.data.length;
                maxAhead = Math.max(maxAhead, sent - received);
              },
              (chunk) => ({ chunk }),
              big,
              WEIGHTS,
              { chunkBytes: 256 * 1024 },
            );
          }),
        },
      },
    ],
  });
  const client = createClient(policy.PolicyServiceClient, srv.address, { deadlineMs: testDeadlineMs(60_000) });
  const stream = client.serverStream("streamWeights", { model: policy.ModelKind.MODEL_KIND_POLICY, dtype: common.Dtype.DTYPE_FLOAT32 });
  let n = 0;
  const slow = (async function* () {
    for await (const m of stream as AsyncIterable<policy.StreamWeightsResponse>) {
      if (m.chunk?.part?.$case === "data") received += m.chunk.part.data.data.length;
      if (n++ < 20) await new Promise((r) => setTimeout(r, 25)); // slow at first
      yield m;
    }
  })();
  const set = await receiveTensorSet(slow, (m) => m.chunk);
  assert.equal(set.bytes, 64 * MB);
  assert.equal(set.tensors.get("t7")!.data[123], 7);
  // Without back-pressure the sender would race 64 MiB ahead of the reader.
  // Measured here: ~8 MiB (16 buffered messages on each side of the call).
  assert.ok(maxAhead < 16 * MB, `sender ran ${(maxAhead / MB).toFixed(1)} MiB ahead of the reader`);
  client.close();
  await srv.shutdown(1000);
});

test("client streaming over real gRPC: a verified upload arrives whole, a corrupted one is refused with DATA_LOSS", async () => {
  let applied: NamedHostTensors | undefined;
  const srv = await startServer({
    log,
    services: [
      {
        definition: referenceModel.ReferenceModelServiceService,
        implementation: {
          uploadWeights: clientStream(log, async (reqs: AsyncIterable<referenceModel.UploadWeightsRequest>) => {
            const set = await receiveTensorSet(reqs, (m) => m.chunk, { expectKind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS });
            applied = set.tensors;
            return { bytesReceived: set.bytes, weights: set.weights };
          }),
        },
      },
    ],
  });
  const client = createClient(referenceModel.ReferenceModelServiceClient, srv.address, { deadlineMs: testDeadlineMs(30_000) });
  const res = await uploadTensorSet(client.clientStream("uploadWeights"), (chunk) => ({ chunk }), sampleSet(), WEIGHTS, { chunkBytes: 4096 });
  assert.equal(res.bytesReceived, 12024);
  assert.equal(applied?.size, 4);

  applied = undefined;
  const call = client.clientStream("uploadWeights");
  for (const chunk of encodeTensorSet(sampleSet(), WEIGHTS, { chunkBytes: 4096 })) {
    if (chunk.part?.$case === "trailer") chunk.part.trailer.digest = Buffer.alloc(32);
    await call.write({ chunk });
  }
  await assert.rejects(call.end(), (e: grpc.ServiceError) => e.code === grpc.status.DATA_LOSS && /digest mismatch/.test(e.details));
  assert.equal(applied, undefined, "nothing applied");
  client.close();
  await srv.shutdown(1000);
});

test("sets received at once share the process's budget: one past it is RESOURCE_EXHAUSTED until another finishes", async () => {
  const chunks = [...encodeTensorSet(sampleSet(), WEIGHTS, { chunkBytes: 64 })];
  const header = chunks[0];
  const total = header.part?.$case === "header" ? Number(header.part.header.totalBytes) : NaN;
  const before = receiveBudget.limit;
  // Receivers of other tests that threw mid-stream (and were not abandoned) may still hold bytes.
  const base = receiveBudget.inUse;
  receiveBudget.setLimit(base + 2 * total + 1);
  try {
    const a = new TensorSetReceiver();
    const b = new TensorSetReceiver();
    a.push(header);
    b.push(header);
    assert.equal(receiveBudget.inUse, base + 2 * total);
    const c = new TensorSetReceiver({ field: "ptx_gradients" });
    assert.throws(
      () => c.push(header),
      (e: unknown) => e instanceof DomainError && e.code === "RESOURCE_EXHAUSTED" && e.message.startsWith(`ptx_gradients[0].header.total_bytes: ${total} bytes would take the uploads in progress past their shared limit of ${base + 2 * total + 1} bytes (${base + 2 * total} held now)`),
    );
    // a completes, b is abandoned (a cancelled stream): both give their bytes back, once
    for (const ch of chunks.slice(1)) a.push(ch);
    assert.equal(a.finish().bytes, total);
    b.abandon();
    b.abandon();
    assert.equal(receiveBudget.inUse, base);
    // a failing stream gives its bytes back too
    async function* truncated() {
      yield* chunks.slice(0, -1);
    }
    await assert.rejects(receiveTensorSet(truncated(), (m) => m), /stream ended before its trailer/);
    async function* throwing() {
      yield chunks[0];
      throw new Error("client went away");
    }
    await assert.rejects(receiveTensorSet(throwing(), (m) => m), /client went away/);
    assert.equal(receiveBudget.inUse, base);
    const again = new TensorSetReceiver();
    for (const ch of chunks) again.push(ch);
    assert.equal(again.finish().bytes, total);
  } finally {
    receiveBudget.setLimit(before);
  }
});
