// The replica-set client's routing rules against small in-process gRPC servers on 127.0.0.1:0 that
// speak the RewardModelService contract with a toy model (score = factor x sum of tokens, the
// factor set by the loaded folder's name). The real services, as processes, are in
// e2e/src/replicas.test.ts; these tests pin the rules: broadcast and replay, primary-only after a
// mutation, retries on a gone or restarted replica, parts that disagree, no replica at all.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { rewardModel, type common } from "@rlhf/proto";
import { createLogger, startServer, freePort, resultOrStatus, type RunningServer } from "./index";
import { ReplicaSet, dnsResolver, parseAddressList, splitTokenBatch } from "./replicas";
import { REWARD_MODEL_ROUTES, REWARD_MODEL_IDEMPOTENT } from "./replica-routes";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "replicas-test", level: "silent" });

/** A toy reward model: its "weights" are the loaded folder name; Train adds one to the factor. */
class Toy {
  weights?: common.WeightsRef;
  factor = 0;
  calls: Record<string, number> = {};
  server!: RunningServer;

  private count(m: string) {
    this.calls[m] = (this.calls[m] ?? 0) + 1;
  }

  async start(port = 0): Promise<this> {
    const fail = (cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.FAILED_PRECONDITION, details: "no model loaded" } as grpc.ServiceError, null);
    const impl: Partial<Record<keyof typeof rewardModel.RewardModelServiceService, grpc.UntypedHandleCall>> = {
      loadCheckpoint: ((call: grpc.ServerUnaryCall<rewardModel.LoadCheckpointRequest, unknown>, cb: grpc.sendUnaryData<rewardModel.LoadCheckpointResponse>) => {
        this.count("loadCheckpoint");
        const src = call.request.source;
        if (src?.$case !== "checkpointDir") return cb({ code: grpc.status.INVALID_ARGUMENT, details: "source: checkpointDir only" } as grpc.ServiceError, null);
        if (src.checkpointDir.startsWith("/missing")) return cb({ code: grpc.status.NOT_FOUND, details: `${src.checkpointDir} does not exist` } as grpc.ServiceError, null);
        this.weights = { modelId: "reward-model", version: 0, source: src.checkpointDir };
        this.factor = src.checkpointDir.length;
        cb(null, { weights: this.weights, config: undefined });
      }) as never,
      score: ((call: grpc.ServerUnaryCall<rewardModel.ScoreRequest, unknown>, cb: grpc.sendUnaryData<rewardModel.ScoreResponse>) => {
        this.count("score");
        if (!this.weights) return fail(cb as grpc.sendUnaryData<unknown>);
        const b = call.request.sequences as common.TokenBatch;
        let o = 0;
        const scores = b.lengths.map((L) => b.tokens.slice(o, (o += L)).reduce((a, t) => a + t, 0) * this.factor);
        cb(null, { scores, weights: this.weights });
      }) as never,
      train: ((call: grpc.ServerDuplexStream<rewardModel.TrainRequest, rewardModel.TrainResponse>) => {
        this.count("train");
        call.on("data", () => undefined);
        call.on("end", () => {
          this.factor += 1;
          if (this.weights) this.weights = { ...this.weights, version: this.weights.version + 1 };
          call.write({ part: { $case: "done", done: rewardModel.TrainDone.fromPartial({ finalLoss: 0.5, pairs: 1, weights: this.weights }) } });
          call.end();
        });
      }) as never,
    };
    this.server = await startServer({ services: [{ definition: rewardModel.RewardModelServiceService, implementation: impl as grpc.UntypedServiceImplementation }], log, port });
    return this;
  }

  score(b: common.TokenBatch): number[] {
    let o = 0;
    return b.lengths.map((L) => b.tokens.slice(o, (o += L)).reduce((a, t) => a + t, 0) * this.factor);
  }
}

/** n sequences of varied lengths (1..9 tokens). */
function batch(n: number): common.TokenBatch {
  const lengths = Array.from({ length: n }, (_, i) => 1 + ((i * 7) % 9));
  const tokens = lengths.flatMap((L, i) => Array.from({ length: L }, (_, t) => (i * 31 + t * 7) % 50));
  return { tokens, lengths, promptLengths: lengths.map(() => 1) };
}

function set(addresses: () => string[], over: Partial<ConstructorParameters<typeof ReplicaSet>[2]> = {}) {
  return new ReplicaSet(rewardModel.RewardModelServiceClient, "dns:///reward-model.test:1", {
    name: "reward-model",
    routes: REWARD_MODEL_ROUTES,
    idempotent: REWARD_MODEL_IDEMPOTENT,
    client: { deadlineMs: testDeadlineMs(5000) },
    resolveEveryMs: 0,
    waitForReplicasMs: 300,
    resolve: async () => addresses(),
    log,
    ...over,
  });
}

const load = (dir: string) => ({ source: { $case: "checkpointDir" as const, checkpointDir: dir } });

test("address lists: host:port and dns:/// entries, one clear error for a bad one", () => {
  assert.deepEqual(
    parseAddressList("127.0.0.1:50052, dns:///reward-model:50052,[::1]:7").map((e) => [e.dns, e.host, e.port]),
    [
      [false, "127.0.0.1", 50052],
      [true, "reward-model", 50052],
      [false, "[::1]", 7],
    ],
  );
  assert.throws(() => parseAddressList("a:1,,b:2", "REWARD_MODEL_ADDR"), /REWARD_MODEL_ADDR must be a comma-separated list/);
  assert.throws(() => parseAddressList("http://a:1", "REWARD_MODEL_ADDR"), /REWARD_MODEL_ADDR: "http:\/\/a:1" must look like host:port or dns:\/\/\/host:port/);
  assert.throws(() => parseAddressList("a:0"), /port 1\.\.65535/);
});

test("dns:/// names resolve to every address (IPv6 in brackets); plain entries stay as written; unknown names give none", async () => {
  const lookup = async (host: string) => {
    if (host === "reward-model") return [{ address: "10.0.0.2", family: 4 }, { address: "10.0.0.1", family: 4 }, { address: "fd00::1", family: 6 }];
    throw Object.assign(new Error("ENOTFOUND"), { code: "ENOTFOUND" });
  };
  const r = dnsResolver(lookup);
  assert.deepEqual(await r(parseAddressList("dns:///reward-model:50052,policy:50051,dns:///gone:1,dns:///10.1.1.1:5")), [
    "10.0.0.1:50052",
    "10.0.0.2:50052",
    "10.1.1.1:5",
    "[fd00::1]:50052",
    "policy:50051",
  ]);
});

test("splitTokenBatch: contiguous runs of whole sequences, balanced by tokens, order kept", () => {
  const b = batch(11);
  for (const k of [1, 2, 3, 5, 11, 20]) {
    const parts = splitTokenBatch(b, k);
    assert.equal(parts.length, Math.min(k, 11));
    assert.ok(parts.every((p) => p.lengths.length >= 1));
    assert.deepEqual(parts.flatMap((p) => p.tokens), b.tokens);
    assert.deepEqual(parts.flatMap((p) => p.lengths), b.lengths);
    assert.deepEqual(parts.flatMap((p) => p.promptLengths), b.promptLengths);
    for (const p of parts) assert.equal(p.tokens.length, p.lengths.reduce((a, x) => a + x, 0));
  }
  const two = splitTokenBatch(b, 2).map((p) => p.tokens.length);
  const total = b.tokens.length;
  console.log(`# 11 sequences, ${total} tokens, in two parts of ${two.join(" + ")} tokens`);
  assert.ok(Math.abs(two[0] - two[1]) <= 9, "within one sequence of an even cut");
});

test("a broadcast reaches every replica; Score is sharded across them and merged in order", async () => {
  const toys = await Promise.all([new Toy().start(), new Toy().start()]);
  const rs = set(() => toys.map((t) => t.server.address));
  try {
    const loaded = await rs.unary("loadCheckpoint", load("/ck/rm"));
    assert.equal(loaded.weights?.source, "/ck/rm");
    assert.deepEqual(toys.map((t) => t.calls.loadCheckpoint), [1, 1]);
    const b = batch(9);
    const res = await rs.unary("score", { sequences: b });
    assert.deepEqual(res.scores, toys[0].score(b));
    assert.deepEqual(toys.map((t) => t.calls.score), [1, 1], "each replica scored one part");
    assert.equal(res.weights?.source, "/ck/rm");
    // One sequence cannot be split: one replica answers.
    assert.deepEqual((await rs.unary("score", { sequences: batch(1) })).scores, toys[0].score(batch(1)));
    // A load that fails on the replicas fails the call with their status.
    assert.match(String(await resultOrStatus(rs.unary("loadCheckpoint", load("/missing/x")))), /^NOT_FOUND: \/missing\/x does not exist/);
  } finally {
    rs.close();
    await Promise.all(toys.map((t) => t.server.shutdown(50)));
  }
});

test("a replica that joins later gets the last load replayed before any work; one that leaves is dropped", async () => {
  const toys = await Promise.all([new Toy().start(), new Toy().start(), new Toy().start()]);
  let live = toys.slice(0, 2).map((t) => t.server.address);
  const rs = set(() => live);
  try {
    await rs.unary("loadCheckpoint", load("/ck/rm"));
    live = toys.map((t) => t.server.address);
    const b = batch(12);
    assert.deepEqual((await rs.unary("score", { sequences: b })).scores, toys[0].score(b));
    assert.deepEqual(toys.map((t) => t.calls.loadCheckpoint), [1, 1, 1], "replayed to the newcomer");
    assert.deepEqual(toys.map((t) => t.calls.score), [1, 1, 1]);
    live = [toys[2].server.address];
    assert.deepEqual((await rs.unary("score", { sequences: b })).scores, toys[2].score(b));
    assert.deepEqual(rs.addresses, [toys[2].server.address]);
  } finally {
    rs.close();
    await Promise.all(toys.map((t) => t.server.shutdown(50)));
  }
});

test("after Train (a mutation) every call goes to the primary until the next broadcast", async () => {
  const toys = await Promise.all([new Toy().start(), new Toy().start()]);
  const rs = set(() => toys.map((t) => t.server.address));
  try {
    await rs.unary("loadCheckpoint", load("/ck/sft"));
    const s = rs.bidi("train");
    s.write({ part: { $case: "config", config: rewardModel.TrainConfig.fromPartial({ epochs: 1 }) } });
    s.end();
    const parts: rewardModel.TrainResponse[] = [];
    for await (const m of s as AsyncIterable<rewardModel.TrainResponse>) parts.push(m);
    assert.equal(parts.at(-1)?.part?.$case, "done");
    const trained = toys.find((t) => t.calls.train === 1) as Toy;
    assert.ok(trained, "one replica trained");
    const before = toys.map((t) => t.calls.score ?? 0);
    const b = batch(8);
    assert.deepEqual((await rs.unary("score", { sequences: b })).scores, trained.score(b), "the trained weights answer");
    assert.deepEqual(
      toys.map((t, i) => (t.calls.score ?? 0) - before[i]),
      toys.map((t) => (t === trained ? 1 : 0)),
      "only the primary was asked",
    );
    await rs.unary("loadCheckpoint", load("/ck/rm-after"));
    await rs.unary("score", { sequences: b });
    assert.deepEqual(toys.map((t) => t.calls.score ?? 0), toys.map((t) => (t === trained ? 2 : 1)), "spread again");
  } finally {
    rs.close();
    await Promise.all(toys.map((t) => t.server.shutdown(50)));
  }
});

test("a replica that is gone (UNAVAILABLE) or restarted without its model (FAILED_PRECONDITION) does not fail the call", async () => {
  const toys = await Promise.all([new Toy().start(), new Toy().start()]);
  const addresses = toys.map((t) => t.server.address);
  const rs = set(() => addresses);
  try {
    await rs.unary("loadCheckpoint", load("/ck/rm"));
    const b = batch(10);
    // Restarted: same address, no model.
    const port = toys[1].server.port;
    await toys[1].server.shutdown(50);
    toys[1] = await new Toy().start(port);
    assert.deepEqual((await rs.unary("score", { sequences: b })).scores, toys[0].score(b));
    assert.equal(toys[1].calls.loadCheckpoint, 1, "the restarted replica was loaded again");
    // Gone for good while DNS still lists it.
    await toys[1].server.shutdown(50);
    assert.deepEqual((await rs.unary("score", { sequences: b })).scores, toys[0].score(b));
  } finally {
    rs.close();
    await Promise.all(toys.map((t) => t.server.shutdown(50)));
  }
});

test("parts computed with different weights fail the call; no replica at all is UNAVAILABLE naming the address", async () => {
  const toys = await Promise.all([new Toy().start(), new Toy().start()]);
  const rs = set(() => toys.map((t) => t.server.address));
  try {
    await rs.unary("loadCheckpoint", load("/ck/rm"));
    // Someone else loads other weights into one replica behind the set's back.
    const direct = new rewardModel.RewardModelServiceClient(toys[1].server.address, grpc.credentials.createInsecure());
    await new Promise((res, rej) => direct.loadCheckpoint(load("/ck/other"), (e) => (e ? rej(e) : res(undefined))));
    direct.close();
    assert.match(String(await resultOrStatus(rs.unary("score", { sequences: batch(6) }))), /^FAILED_PRECONDITION: reward-model replicas answered with different weights \(reward-model v0 \/ck\/other \/ reward-model v0 \/ck\/rm\)/);
  } finally {
    rs.close();
    await Promise.all(toys.map((t) => t.server.shutdown(50)));
  }
  const none = set(() => [], { waitForReplicasMs: 200 });
  assert.match(String(await resultOrStatus(none.unary("score", { sequences: batch(2) }))), /^UNAVAILABLE: reward-model: no replica: dns:\/\/\/reward-model\.test:1 resolved to no address within 200 ms/);
  none.close();
  // A plain address of a stopped server: the call fails as a KitClient's would.
  const plain = new ReplicaSet(rewardModel.RewardModelServiceClient, `127.0.0.1:${await freePort()}`, { name: "reward-model", routes: REWARD_MODEL_ROUTES, client: { deadlineMs: testDeadlineMs(2000) } });
  assert.match(String(await resultOrStatus(plain.unary("getInfo", {}))), /^UNAVAILABLE: /);
  plain.close();
});
