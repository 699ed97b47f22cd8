// setOutgoingCalls: the hook a thread without OpenTelemetry (a model service's compute worker) uses
// to trace the calls it makes. Real server, real socket: each kind of call carries the hook's
// headers (a call's own metadata wins), the hook hears the method's path and the client's address
// as the call starts and its final status once it ends, and unset, it adds nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { referenceModel, rewardModel } from "@rlhf/proto";
import { InvalidArgumentError } from "@rlhf/errors";
import { bidiStream, clientStream, createClient, createLogger, setOutgoingCalls, startServer, unary } from "./index";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "outgoing-test", level: "silent" });

test("setOutgoingCalls: every kind of call carries the hook's headers and reports its end; unset, nothing is added", async () => {
  const seen: { path: string; header: string | undefined }[] = [];
  const record = (path: string, md: grpc.Metadata) => seen.push({ path, header: md.get("x-outgoing")[0]?.toString() });
  const srv = await startServer({
    log,
    services: [
      {
        definition: referenceModel.ReferenceModelServiceService,
        implementation: {
          logProbs: unary(log, async (req: referenceModel.LogProbsRequest, ctx) => {
            record(ctx.method, ctx.metadata);
            if (req.temperature === 3) throw new InvalidArgumentError("temperature", "is 3");
            return { logprobs: [], lengths: [], weights: undefined };
          }),
          uploadWeights: clientStream(log, async (reqs: AsyncIterable<referenceModel.UploadWeightsRequest>, ctx) => {
            record(ctx.method, ctx.metadata);
            for await (const _ of reqs) void _;
            return { bytesReceived: 0, weights: undefined };
          }),
        },
      },
      {
        definition: rewardModel.RewardModelServiceService,
        implementation: {
          train: bidiStream(log, async (reqs: AsyncIterable<rewardModel.TrainRequest>, _send, ctx) => {
            record(ctx.method, ctx.metadata);
            for await (const _ of reqs) void _;
          }),
        },
      },
    ],
  });
  const started: string[] = [];
  const ended: { path: string; code: number; details: string }[] = [];
  const ref = createClient(referenceModel.ReferenceModelServiceClient, srv.address, { deadlineMs: testDeadlineMs(10_000) });
  const rm = createClient(rewardModel.RewardModelServiceClient, srv.address, { deadlineMs: testDeadlineMs(10_000) });
  try {
    setOutgoingCalls((path, address) => {
      started.push(`${path} ${address === srv.address}`);
      return { headers: { "x-outgoing": `from hook ${started.length}` }, ended: (st) => ended.push({ path, ...st }) };
    });
    await ref.unary("logProbs", { batch: undefined, temperature: 0.5 });
    await assert.rejects(ref.unary("logProbs", { batch: undefined, temperature: 3 }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
    const own = new grpc.Metadata();
    own.set("x-outgoing", "the call's own");
    await ref.unary("logProbs", { batch: undefined, temperature: 0.5 }, { metadata: own });
    const up = ref.clientStream("uploadWeights");
    await up.write({ chunk: undefined });
    await up.end();
    const train = rm.bidi("train");
    train.on("data", () => undefined);
    const trained = new Promise<void>((resolve, reject) => {
      train.on("status", () => resolve());
      train.on("error", reject);
    });
    train.end();
    await trained;
    // The status event of the last call may come a turn after the caller has seen its end.
    for (let i = 0; i < 100 && ended.length < 5; i++) await new Promise((r) => setTimeout(r, 10));

    const LOG_PROBS = "/rlhf.reference_model.v1.ReferenceModelService/LogProbs";
    const UPLOAD = "/rlhf.reference_model.v1.ReferenceModelService/UploadWeights";
    const TRAIN = "/rlhf.reward_model.v1.RewardModelService/Train";
    assert.deepEqual(started, [LOG_PROBS, LOG_PROBS, LOG_PROBS, UPLOAD, TRAIN].map((p) => `${p} true`), "the path and the client's address, as each call starts");
    assert.deepEqual(
      seen.map((s) => `${s.path} ${s.header}`),
      [`${LOG_PROBS} from hook 1`, `${LOG_PROBS} from hook 2`, `${LOG_PROBS} the call's own`, `${UPLOAD} from hook 4`, `${TRAIN} from hook 5`],
      "the server saw the hook's header on every kind of call, except where the call set it",
    );
    assert.deepEqual(
      ended.map((e) => `${e.path} ${e.code}`),
      [LOG_PROBS, LOG_PROBS, LOG_PROBS, UPLOAD, TRAIN].map((p, i) => `${p} ${i === 1 ? grpc.status.INVALID_ARGUMENT : grpc.status.OK}`),
      "each call's final status, once",
    );
    assert.match(ended[1].details, /temperature: is 3/);

    setOutgoingCalls(undefined);
    await ref.unary("logProbs", { batch: undefined, temperature: 0.5 });
    assert.equal(seen.at(-1)?.header, undefined, "unset: no header");
    assert.equal(started.length, 5);
  } finally {
    setOutgoingCalls(undefined);
    ref.close();
    rm.close();
    await srv.shutdown(1000);
  }
});
