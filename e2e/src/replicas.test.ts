// Scale-out across real processes: two reward-model and two reference-model processes
// (`rlhf serve`, started with different random weights), driven through the coordinator's
// replica-set client. A weights load reaches both replicas; Score and LogProbs batches are cut
// across both and the merged answers equal one replica's answer to the whole batch. Then the
// coordinator (in this process) runs a micro recipe over two replicas of each scaled-out service,
// started by `rlhf run --coordinator` as a user would against a cluster.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ppoCoordinator, referenceModel, rewardModel, type common } from "@rlhf/proto";
import {
  createClient,
  createLogger,
  waitForServing,
  checkHealth,
  ReplicaSet,
  REWARD_MODEL_ROUTES,
  REWARD_MODEL_IDEMPOTENT,
  REFERENCE_MODEL_ROUTES,
  REFERENCE_MODEL_IDEMPOTENT,
} from "@rlhf/grpc-kit";
import { startPolicy, loadConfig as policyConfig } from "@rlhf/policy";
import { startRewardModel, loadConfig as rmConfig } from "@rlhf/reward-model";
import { startReferenceModel, loadConfig as refConfig } from "@rlhf/reference-model";
import { startPretrainMix, loadConfig as mixConfig } from "@rlhf/pretrain-mix";
import { startCoordinator, loadConfig as coordConfig } from "@rlhf/ppo-coordinator";
import { MICRO, RLHF, freePort, start, exitWithin, type Proc } from "./helpers";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const procs: Proc[] = [];
after(async () => {
  for (const p of procs) p.child.kill("SIGTERM");
  await Promise.all(procs.map((p) => exitWithin(p, testDeadlineMs(20_000))));
});

/** `rlhf serve <service> --init tiny --seed <seed>` on a free port, SERVING. */
async function serve(service: string, seed: number): Promise<string> {
  const port = await freePort();
  const p = start([RLHF, "serve", service, "--port", String(port), "--init", "tiny", "--seed", String(seed), "--metrics-port", "0"], { CHECKPOINT_ROOT: tmpdir() });
  procs.push(p);
  const address = `127.0.0.1:${port}`;
  await waitForServing(address, testDeadlineMs(60_000)).catch((e: Error) => assert.fail(`${service} did not start: ${e.message}\n${p.out()}`));
  return address;
}

/** 24 sequences of 5..40 tokens (ids below 256), prompts of 3 tokens. */
function batch(): common.TokenBatch {
  const lengths = Array.from({ length: 24 }, (_, i) => 5 + ((i * 13) % 36));
  const tokens = lengths.flatMap((L, i) => Array.from({ length: L }, (_, t) => (i * 97 + t * 31) % 256));
  return { tokens, lengths, promptLengths: lengths.map(() => 3) };
}

const maxDiff = (a: number[], b: number[]) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

test("reward-model x2 as processes: LoadCheckpoint reaches both, Score is shared and equals one replica's", { timeout: testDeadlineMs(180_000) }, async () => {
  const [a, b] = await Promise.all([serve("reward-model", 1), serve("reward-model", 2)]);
  const direct = createClient(rewardModel.RewardModelServiceClient, a, { deadlineMs: testDeadlineMs(60_000) });
  const other = createClient(rewardModel.RewardModelServiceClient, b, { deadlineMs: testDeadlineMs(60_000) });
  const seqs = batch();
  // A few optimiser steps on the first replica, so its scalar head (zero when initialised) scores.
  const train = direct.bidi("train", { deadlineMs: testDeadlineMs(120_000) });
  train.write({
    part: {
      $case: "config",
      config: rewardModel.TrainConfig.fromPartial({ epochs: 2, batchSize: 4, optimizer: { learningRate: 0.05, beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0, maxGradNorm: 1 }, seed: 1 }),
    },
  });
  const groups = Array.from({ length: 8 }, (_, g) => ({
    prompt: [10 + g, 20, 30],
    responses: { tokens: [65 + g, 66, 256, 90, 91, 92, 256, 120 + g, 256], lengths: [3, 4, 2], promptLengths: [] },
    ranks: [0, 1, 2],
  }));
  train.write({ part: { $case: "comparisons", comparisons: { groups, pairs: [] } } });
  train.end();
  for await (const m of train as AsyncIterable<rewardModel.TrainResponse>) void m;
  // Different weights before the broadcast.
  const before = [(await direct.unary("score", { sequences: seqs })).scores, (await other.unary("score", { sequences: seqs })).scores];
  assert.ok(maxDiff(before[0], before[1]) > 1e-3, "the two replicas start with different weights");
  const dir = join(mkdtempSync(join(tmpdir(), "replicas-")), "rm");
  await direct.unary("saveCheckpoint", { dir });

  const rs = new ReplicaSet(rewardModel.RewardModelServiceClient, `${a},${b}`, { name: "reward-model", routes: REWARD_MODEL_ROUTES, idempotent: REWARD_MODEL_IDEMPOTENT, client: { deadlineMs: testDeadlineMs(60_000) } });
  const loaded = await rs.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: dir } });
  assert.equal(loaded.weights?.source, dir);
  assert.equal((await other.unary("getInfo", {})).weights?.source, dir, "the broadcast reached the second process");

  const single = (await direct.unary("score", { sequences: seqs })).scores;
  assert.ok(new Set(single.map((x) => x.toFixed(6))).size > 12, "the trained head tells the sequences apart");
  const t0 = Date.now();
  const merged = await rs.unary("score", { sequences: seqs });
  const ms = Date.now() - t0;
  assert.equal(merged.scores.length, 24);
  const diff = maxDiff(merged.scores, single);
  console.log(`# Score of 24 sequences over 2 replicas in ${ms} ms; largest difference to one replica's answer: ${diff}; calls per replica: ${JSON.stringify(Object.fromEntries(rs.stats))}`);
  assert.ok(diff <= 1e-5, `merged scores differ from one replica's by ${diff}`);
  assert.deepEqual([...rs.stats.keys()].sort(), [a, b].sort());
  assert.ok([...rs.stats.values()].every((n) => n >= 2), "each replica took the load and a part of the batch");
  rs.close();
  direct.close();
  other.close();
});

test("reference-model x2 as processes: LoadWeights reaches both, LogProbs is shared and equals one replica's", { timeout: testDeadlineMs(180_000) }, async () => {
  const [a, b] = await Promise.all([serve("reference-model", 3), serve("reference-model", 4)]);
  const ckpt = join(mkdtempSync(join(tmpdir(), "replicas-")), "sft");
  const init = start([RLHF, "init", "--size", "tiny", "--out", ckpt, "--seed", "9"]);
  assert.equal(await exitWithin(init, testDeadlineMs(60_000)), 0, init.out());

  const rs = new ReplicaSet(referenceModel.ReferenceModelServiceClient, `${a},${b}`, { name: "reference-model", routes: REFERENCE_MODEL_ROUTES, idempotent: REFERENCE_MODEL_IDEMPOTENT, client: { deadlineMs: testDeadlineMs(60_000) } });
  await rs.unary("loadWeights", { source: { $case: "checkpointDir", checkpointDir: ckpt } });
  const direct = createClient(referenceModel.ReferenceModelServiceClient, b, { deadlineMs: testDeadlineMs(60_000) });
  const seqs = batch();
  const single = await direct.unary("logProbs", { batch: seqs, temperature: 0.7 });
  const merged = await rs.unary("logProbs", { batch: seqs, temperature: 0.7 });
  assert.deepEqual(merged.lengths, single.lengths);
  assert.equal(merged.logprobs.length, seqs.tokens.length - 24);
  const diff = maxDiff(merged.logprobs, single.logprobs);
  console.log(`# LogProbs of 24 sequences over 2 replicas: largest difference to one replica's answer: ${diff}; calls per replica: ${JSON.stringify(Object.fromEntries(rs.stats))}`);
  assert.ok(diff <= 1e-5, `merged log-probs differ from one replica's by ${diff}`);
  assert.ok([a, b].every((x) => (rs.stats.get(x) ?? 0) >= 2), "each replica took the load and a part of the batch");
  // Both replicas report SERVING with the same weights now.
  for (const x of [a, b]) assert.equal(await checkHealth(x), "SERVING");
  rs.close();
  direct.close();
});


test("rlhf run --coordinator: a micro recipe on a running coordinator over two replicas of each scaled-out service", { timeout: testDeadlineMs(600_000) }, async () => {
  const log = createLogger({ service: "replicas-test", level: "silent" });
  const work = mkdtempSync(join(tmpdir(), "replicas-runs-"));
  const policy = await startPolicy(policyConfig({ GRPC_PORT: "0", TOKENIZER: "byte", METRICS_PORT: "0", CHECKPOINT_ROOT: tmpdir() }), log);
  const p = policy.server.address;
  const rms = await Promise.all([0, 1].map(() => startRewardModel(rmConfig({ GRPC_PORT: "0", POLICY_ADDR: p, METRICS_PORT: "0", CHECKPOINT_ROOT: tmpdir() }), log)));
  const refs = await Promise.all([0, 1].map(() => startReferenceModel(refConfig({ GRPC_PORT: "0", POLICY_ADDR: p, METRICS_PORT: "0", CHECKPOINT_ROOT: tmpdir() }), log)));
  const mixes = await Promise.all([0, 1].map(() => startPretrainMix(mixConfig({ GRPC_PORT: "0", POLICY_ADDR: p, TOKENIZER: "byte", METRICS_PORT: "0", DATA_ROOT: tmpdir() }), log)));
  const list = (apps: { server: { address: string } }[]) => apps.map((x) => x.server.address).join(",");
  const coord = await startCoordinator(
    coordConfig({ GRPC_PORT: "0", POLICY_ADDR: p, REWARD_MODEL_ADDR: list(rms), REFERENCE_MODEL_ADDR: list(refs), PRETRAIN_MIX_ADDR: list(mixes), RUNS_DIR: join(work, "runs"), METRICS_PORT: "0" }),
    log,
  );
  const addr = coord.server.address;
  try {
    const config = join(work, "micro.json");
    writeFileSync(config, JSON.stringify(MICRO));
    const t0 = Date.now();
    // The CLI as a user runs it against a cluster's port-forwarded coordinator: it starts nothing.
    const cli = start([RLHF, "run", config, "--coordinator", addr, "--run-id", "replicas"], { METRICS_PORT: undefined });
    const code = await exitWithin(cli, testDeadlineMs(300_000));
    assert.equal(code, 0, cli.out());
    assert.match(cli.out(), new RegExp(`using the coordinator at ${addr.replace(/\./g, "\\.")}`));
    assert.match(cli.out(), /run replicas started: .*replicas-runs-.*\/runs\/replicas \(on the coordinator's volume\)/);
    assert.doesNotMatch(cli.out(), /starting the services/, "the CLI started no service");
    const c = createClient(ppoCoordinator.PpoCoordinatorServiceClient, addr);
    const run = (await c.unary("getRun", { runId: "replicas" })).run as ppoCoordinator.Run;
    c.close();
    assert.equal(run.state, ppoCoordinator.RunState.RUN_STATE_SUCCEEDED, run.errorMessage);
    const stats = (name: keyof typeof coord.clients, apps: { server: { address: string } }[]) => apps.map((x) => (coord.clients[name] as ReplicaSet<never>).stats.get(x.server.address) ?? 0);
    const calls = { rewardModel: stats("rewardModel", rms), reference: stats("reference", refs), pretrainMix: stats("pretrainMix", mixes) };
    console.log(`# micro recipe over 2 replicas each in ${((Date.now() - t0) / 1000).toFixed(1)} s; calls per replica: ${JSON.stringify(calls)}`);
    for (const [name, n] of Object.entries(calls)) assert.ok(n.every((c) => c > 0), `${name}: every replica got work (${n.join(", ")})`);

    // Resuming a finished run is refused by the coordinator (exit 2); flags for local services are refused with --coordinator.
    const again = start([RLHF, "resume", "replicas", "--coordinator", addr]);
    assert.equal(await exitWithin(again, testDeadlineMs(60_000)), 2, again.out());
    assert.match(again.out(), /run replicas is SUCCEEDED: only a FAILED or CANCELLED run can be resumed/);
    const bad = start([RLHF, "demo", "--tiny", "--coordinator", addr, "--backend", "cpu"]);
    assert.equal(await exitWithin(bad, testDeadlineMs(30_000)), 2, bad.out());
    assert.match(bad.out(), /--backend concerns the services this command starts; with --coordinator it starts none/);
    const badAddr = start([RLHF, "demo", "--coordinator", "http://x"]);
    assert.equal(await exitWithin(badAddr, testDeadlineMs(30_000)), 2, badAddr.out());
    assert.match(badAddr.out(), /--coordinator must look like host:port \(e\.g\. 127\.0\.0\.1:50050\), got "http:\/\/x"/);
  } finally {
    await coord.stop(500);
    await Promise.all([policy, ...rms, ...refs, ...mixes].map((x) => x.stop(500)));
  }
});
