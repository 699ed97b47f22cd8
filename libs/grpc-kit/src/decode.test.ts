// Requests that cannot be decoded get INVALID_ARGUMENT naming the method (grpc-js alone answers
// INTERNAL "Error deserializing request"), on every kind of call; the handler never runs and the
// server keeps serving. Raw bytes over a real socket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { ppoCoordinator, referenceModel } from "@rlhf/proto";
import { createLogger, startServer, unary, clientStream, serverStream } from "./index";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "decode-test", destination: new Writable({ write: (_c, _e, cb) => cb() }), level: "debug" });
const raw = (b: Buffer) => b;

/** WatchRunRequest{run_id: "r", after_sequence: 2^60}: well-formed protobuf the generated decoder refuses. */
function hugeUint64(): Buffer {
  const varint: number[] = [];
  let v = 1n << 60n;
  while (v >= 0x80n) {
    varint.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  varint.push(Number(v));
  return Buffer.from([0x0a, 0x01, 0x72, 0x10, ...varint]);
}
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
    assert.match(u?.details ?? "", /^request: cannot decode the LogProbs request message: /);

    const s = c.makeServerStreamRequest("/rlhf.ppo_coordinator.v1.PpoCoordinatorService/WatchRun", raw, raw, hugeUint64(), new grpc.Metadata(), { deadline: deadline() });
    const se = await new Promise<grpc.ServiceError>((resolve) => {
      s.on("data", () => undefined);
      s.on("error", resolve);
    });
    assert.equal(se.code, grpc.status.INVALID_ARGUMENT, se.details);
    assert.equal(se.details, "request: cannot decode the WatchRun request message: Value is larger than Number.MAX_SAFE_INTEGER");

    const cs = await new Promise<grpc.ServiceError | null>((resolve) => {
      const w = c.makeClientStreamRequest("/rlhf.reference_model.v1.ReferenceModelService/UploadWeights", raw, raw, new grpc.Metadata(), { deadline: deadline() }, (e) => resolve(e));
      w.write(Buffer.alloc(0)); // an empty message decodes (all defaults)
      w.write(TRUNCATED);
      w.end();
    });
    assert.equal(cs?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(cs?.details ?? "", /^requests\[1\]: cannot decode the UploadWeights request message: /);
    assert.equal(handled, 1, "only the empty stream message reached a handler");
  } finally {
    c.close();
    await srv.shutdown(500);
  }
});
