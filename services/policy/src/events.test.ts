// The policy's weights events on a real nats-server (JetStream): LoadCheckpoint and Sft publish
// the new weights version under the run the call named, or on rlhf.policy.weights without one.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { policy as policyPb } from "@rlhf/proto";
import { createLogger, createClient, resultOrStatus as call, type KitClient } from "@rlhf/grpc-kit";
import { modelConfigToProto } from "@rlhf/tensor-transport";
import { startNatsServer, openRunFeed, type NatsServer, type WeightsEvent } from "@rlhf/events";
import { startPolicy, type PolicyApp } from "./app";
import { loadConfig } from "./config";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "policy-events-test", level: "silent" });
const TINY = { vocabSize: 260, nPositions: 24, nEmbd: 16, nLayer: 2, nHead: 2, layerNormEpsilon: 1e-5 };
let nats: NatsServer;
let app: PolicyApp;
let client: KitClient<policyPb.PolicyServiceClient>;

before(async () => {
  process.env.RLHF_BACKEND = "cpu";
  nats = await startNatsServer();
  app = await startPolicy(loadConfig({ GRPC_PORT: "0", NATS_URL: nats.url }), log);
  client = createClient(policyPb.PolicyServiceClient, app.server.address, { deadlineMs: testDeadlineMs(60_000) });
});
after(async () => {
  client.close();
  await app.stop(500);
  await nats.stop();
});

const load = (seed: number, runId?: string): policyPb.LoadCheckpointRequest => ({ source: { $case: "randomInit", randomInit: { config: modelConfigToProto(TINY), seed } }, runId });

test("LoadCheckpoint and Sft publish the weights version, under the run they name", async () => {
  await client.unary("loadCheckpoint", load(1, "run-7"));
  await client.unary("loadCheckpoint", load(2)); // no run: rlhf.policy.weights
  await client.unary("loadCheckpoint", load(3, "run-7"));
  const s = client.bidi("sft");
  const tokens = [1, 2, 3, 4, 5, 6, 256];
  s.write({ part: { $case: "config", config: { epochs: 1, batchSize: 2, optimizer: { learningRate: 1e-3, beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0, maxGradNorm: 1 }, schedule: 0, warmupSteps: 0, minLearningRate: 0, seed: 0, dataset: undefined, validationDataset: undefined, progressEverySteps: 0, temperature: 0, runId: "run-7" } } });
  s.write({ part: { $case: "examples", examples: { tokens: [...tokens, ...tokens, ...tokens], lengths: [7, 7, 7], promptLengths: [2, 3, 4] } } });
  s.end();
  for await (const _ of s as AsyncIterable<policyPb.SftResponse>) void _;
  assert.equal(await app.events?.flush(testDeadlineMs(10_000)), true);

  const feed = await openRunFeed({ servers: [nats.url], runId: "run-7" });
  const got: WeightsEvent[] = [];
  for await (const m of feed) {
    assert.equal(m.subject, "rlhf.runs.run-7.weights");
    got.push(m.json as WeightsEvent);
    if (m.pending === 0) break;
  }
  await feed.close();
  assert.deepEqual(
    got.map((e) => [e.runId, e.weights.reason, e.weights.version, e.weights.source]),
    [
      ["run-7", "load_checkpoint", 0, "random:1"],
      ["run-7", "load_checkpoint", 0, "random:3"],
      ["run-7", "sft", 2, "random:3"], // 3 examples in batches of 2: two optimiser steps
    ],
  );
  assert.ok(got.every((e) => !Number.isNaN(Date.parse(e.time))));

  const nc = await connect({ servers: nats.url });
  const m = await (await jetstream(nc).consumers.get("RLHF_RUNS", { filter_subjects: "rlhf.policy.weights" })).next();
  await nc.close();
  const noRun = m?.json<WeightsEvent>();
  assert.equal(noRun?.runId, undefined);
  assert.deepEqual(noRun?.weights, { modelId: "policy", version: 0, source: "random:2", reason: "load_checkpoint" });
});

test("a run_id that cannot be a subject token is INVALID_ARGUMENT, before anything changes", async () => {
  assert.match(String(await call(client.unary("loadCheckpoint", load(4, "Run.7")))), /^INVALID_ARGUMENT: run_id: must be 1\.\.64 of \[a-z0-9-\], got "Run\.7"/);
  const info = await client.unary("getInfo", {});
  assert.equal(info.policyWeights?.source, "random:3");
});
