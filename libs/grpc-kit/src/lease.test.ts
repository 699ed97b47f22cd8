// The run lease: the rules on a fake clock, then the interceptor on a real server and socket.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { referenceModel } from "@rlhf/proto";
import { RunLease, checkHealth, createClient, createLogger, forRun, leaseInterceptor, resultOrStatus, runIdOf, startServer, unary, withRunId, RUN_ID_METADATA } from "./index";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "lease-test", level: "silent" });

test("a run takes a free lease with its first call, renews it with each call; other runs and unnamed changes are refused until it is given back or lapses", () => {
  let now = 1_000;
  const lease = new RunLease("policy", 60_000, undefined, () => now);
  assert.equal(lease.admit("GetInfo", undefined, false), undefined, "a read without a run id: served");
  assert.equal(lease.admit("Sft", undefined, true), undefined, "a change without a run id while free: served");
  assert.equal(lease.admit("Generate", "first", false), undefined, "first takes it");
  assert.deepEqual(lease.state(), { holder: "first", heldMs: 0, idleMs: 0, ttlMs: 60_000 });
  now += 50_000;
  assert.equal(lease.admit("Sft", "first", true), undefined, "renewed");
  now += 50_000; // 100 s held, 50 s idle: still within the TTL thanks to the renewal
  assert.equal(lease.admit("Sft", "second", true), "policy is leased to run first (held 100 s, last call 50 s ago; it lapses after RUN_LEASE_TTL_MS = 60000 ms without one, or when that run ends): Sft of run second refused");
  assert.match(lease.admit("LoadCheckpoint", undefined, true) ?? "", /^policy is leased to run first .*: LoadCheckpoint changes the model and is refused without metadata x-rlhf-run-id naming that run$/);
  assert.equal(lease.admit("GetInfo", undefined, false), undefined, "reads without a run id are always served");
  assert.equal(lease.release("second"), false, "only the holder gives it back");
  assert.equal(lease.release("first"), true);
  assert.equal(lease.admit("Sft", "second", true), undefined, "free again: second takes it");
  now += 60_001;
  assert.deepEqual(lease.state(), { holder: "", heldMs: 0, idleMs: 0, ttlMs: 60_000 }, "lapsed after the TTL without a call");
  assert.equal(lease.admit("Sft", "third", true), undefined);
});

test("the run id comes from metadata x-rlhf-run-id; a malformed one is INVALID_ARGUMENT naming it", () => {
  assert.equal(runIdOf(new grpc.Metadata()), undefined);
  assert.equal(runIdOf(withRunId(undefined, "run-1")), "run-1");
  const md = new grpc.Metadata();
  md.set(RUN_ID_METADATA, "Bad Id");
  assert.throws(() => runIdOf(md), /^InvalidArgumentError: metadata x-rlhf-run-id: must be one value of 1\.\.64 of \[a-z0-9-\], got "Bad Id"$/);
});

test("on a real server: a refused call never reaches its handler; the holder's calls and everyone's reads do", async () => {
  const lease = new RunLease("reference-model", 600_000, log);
  const calls = { loadWeights: 0, getInfo: 0 };
  const implementation: Partial<referenceModel.ReferenceModelServiceServer> = {
    loadWeights: unary(log, async () => (calls.loadWeights++, referenceModel.LoadWeightsResponse.fromPartial({}))),
    getInfo: unary(log, async () => (calls.getInfo++, referenceModel.GetInfoResponse.fromPartial({}))),
  };
  const server = await startServer({
    log,
    auth: null,
    services: [{ definition: referenceModel.ReferenceModelServiceService, implementation: implementation as grpc.UntypedServiceImplementation }],
    interceptors: [leaseInterceptor(lease, "rlhf.reference_model.v1.ReferenceModelService", new Set(["LoadWeights", "UploadWeights"]), log)],
  });
  const plain = createClient(referenceModel.ReferenceModelServiceClient, server.address, { deadlineMs: testDeadlineMs(10_000) });
  const first = forRun(plain, "first");
  const second = forRun(plain, "second");
  try {
    await first.unary("loadWeights", referenceModel.LoadWeightsRequest.fromPartial({}));
    assert.equal(lease.state().holder, "first");
    assert.match(String(await resultOrStatus(second.unary("loadWeights", referenceModel.LoadWeightsRequest.fromPartial({})))), /^FAILED_PRECONDITION: reference-model is leased to run first \(.*\): LoadWeights of run second refused$/);
    assert.match(String(await resultOrStatus(second.unary("getInfo", {}))), /^FAILED_PRECONDITION: .*GetInfo of run second refused$/, "another run's read is refused: it would read the first run's model");
    assert.match(String(await resultOrStatus(plain.unary("loadWeights", referenceModel.LoadWeightsRequest.fromPartial({})))), /^FAILED_PRECONDITION: .*LoadWeights changes the model and is refused without metadata x-rlhf-run-id/);
    await plain.unary("getInfo", {});
    const bad = new grpc.Metadata();
    bad.set(RUN_ID_METADATA, "x".repeat(65));
    assert.match(String(await resultOrStatus(plain.unary("getInfo", {}, { metadata: bad }))), /^INVALID_ARGUMENT: metadata x-rlhf-run-id: must be one value of 1\.\.64/);
    server.setServing(true);
    assert.equal(await checkHealth(server.address), "SERVING", "health is not leased");
    assert.deepEqual(calls, { loadWeights: 1, getInfo: 1 }, "only the holder's load and the unnamed read ran");
    lease.release("first");
    await second.unary("loadWeights", referenceModel.LoadWeightsRequest.fromPartial({}));
    assert.equal(lease.state().holder, "second");
  } finally {
    plain.close();
    await server.shutdown(100);
  }
});
