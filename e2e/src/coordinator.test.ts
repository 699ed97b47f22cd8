// The coordinator against the four real model services, all in this test's process on free ports:
// the tiny recipe end to end, the run folder, WatchRun, and bad input; exact resume after a cancel,
// and after the coordinator (then its own process) is SIGKILLed and restarted.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { policy as policyPb, ppoCoordinator } from "@rlhf/proto";
import { createLogger, createClient, checkHealth, resultOrStatus as statusOf, type KitClient } from "@rlhf/grpc-kit";
import { BACKEND, MICRO, RLHF, freePort, start as startProc, exitWithin } from "./helpers";
import { differences, figures } from "./figures";
import { startPolicy, loadConfig as policyConfig, type PolicyApp } from "@rlhf/policy";
import { startRewardModel, loadConfig as rmConfig, type RewardModelApp } from "@rlhf/reward-model";
import { startReferenceModel, loadConfig as refConfig, type ReferenceModelApp } from "@rlhf/reference-model";
import { startPretrainMix, loadConfig as mixConfig, type PretrainMixApp } from "@rlhf/pretrain-mix";
import { startCoordinator, loadConfig, type CoordinatorApp } from "@rlhf/ppo-coordinator";
import { TRAINING_SIGNALS } from "@rlhf/telemetry";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "coordinator-test", level: "silent" });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let apps: { policy: PolicyApp; rm: RewardModelApp; ref: ReferenceModelApp; mix: PretrainMixApp; coord: CoordinatorApp };
let client: KitClient<ppoCoordinator.PpoCoordinatorServiceClient>;
let runsDir: string;

before(async () => {
  process.env.RLHF_BACKEND = BACKEND;
  runsDir = mkdtempSync(join(tmpdir(), "coordinator-"));
  const policy = await startPolicy(policyConfig({ GRPC_PORT: "0", TOKENIZER: "byte", CHECKPOINT_ROOT: `${tmpdir()}:/nonexistent` }), log);
  const rm = await startRewardModel(rmConfig({ GRPC_PORT: "0", POLICY_ADDR: policy.server.address, CHECKPOINT_ROOT: tmpdir() }), log);
  const ref = await startReferenceModel(refConfig({ GRPC_PORT: "0", POLICY_ADDR: policy.server.address, CHECKPOINT_ROOT: tmpdir() }), log);
  const mix = await startPretrainMix(mixConfig({ GRPC_PORT: "0", POLICY_ADDR: policy.server.address, TOKENIZER: "byte", DATA_ROOT: tmpdir() }), log);
  const coord = await startCoordinator(
    loadConfig({ GRPC_PORT: "0", POLICY_ADDR: policy.server.address, REWARD_MODEL_ADDR: rm.server.address, REFERENCE_MODEL_ADDR: ref.server.address, PRETRAIN_MIX_ADDR: mix.server.address, RUNS_DIR: runsDir, DATA_ROOT: `${runsDir}:/nonexistent` }),
    log,
  );
  apps = { policy, rm, ref, mix, coord };
  client = createClient(ppoCoordinator.PpoCoordinatorServiceClient, coord.server.address, { deadlineMs: testDeadlineMs(600_000) });
});
after(async () => {
  client.close();
  await apps.coord.stop(500);
  await Promise.all([apps.policy.stop(500), apps.rm.stop(500), apps.ref.stop(500), apps.mix.stop(500)]);
});



test("StartRun validates the config and names the key; validate_only creates nothing", async () => {
  const start = (configJson: string, over: Partial<ppoCoordinator.StartRunRequest> = {}) => statusOf(client.unary("startRun", { configJson, runId: "", displayName: "", validateOnly: false, ...over }));
  assert.match(String(await start("{nope")), /^INVALID_ARGUMENT: config_json: not valid JSON/);
  assert.match(String(await start(JSON.stringify({ ppo: { bogus: 1 } }))), /^INVALID_ARGUMENT: .*ppo\.bogus/);
  assert.match(String(await start(JSON.stringify({ preset: "huge" }))), /^INVALID_ARGUMENT: config_json\.preset: must be one of tiny, default/);
  assert.match(String(await start("{}", { runId: "Bad_Id" })), /^INVALID_ARGUMENT: run_id: must be 1\.\.64 of \[a-z0-9-\]/);
  // Data files are read at StartRun: a missing one is refused before anything starts.
  assert.match(String(await start(JSON.stringify({ rankings: { source: "file" }, data: { files: { rankings: "/nonexistent/r.jsonl" } } }))), /^INVALID_ARGUMENT: data\.files\.rankings: \/nonexistent\/r\.jsonl: file: cannot read: ENOENT$/);
  // ... and one outside DATA_ROOT (here the runs folder and /nonexistent) is never opened.
  assert.match(String(await start(JSON.stringify({ rankings: { source: "file" }, data: { files: { rankings: "/etc/passwd" } } }))), /^PERMISSION_DENIED: data\.files\.rankings: "\/etc\/passwd" is outside DATA_ROOT$/);
  const v = await client.unary("startRun", { configJson: JSON.stringify({ preset: "tiny" }), runId: "", displayName: "", validateOnly: true });
  assert.equal(v.run?.state, ppoCoordinator.RunState.RUN_STATE_UNSPECIFIED);
  assert.equal(JSON.parse(v.run?.configJson ?? "{}").ppo.iterations, 8);
  assert.equal((await client.unary("listRuns", { pageSize: 0, pageToken: "", states: [] })).runs.length, 0);
  assert.match(String(await statusOf(client.unary("getRun", { runId: "nope" }))), /^NOT_FOUND: run_id: no run "nope"/);
  // A valid config whose base model is missing: the run fails at once, saying which call failed.
  await client.unary("startRun", { configJson: JSON.stringify({ ...MICRO, model: { ...MICRO.model, base_checkpoint: "/nonexistent/gpt2" } }), runId: "no-base", displayName: "", validateOnly: false });
  for await (const _ of client.serverStream("watchRun", { runId: "no-base", afterSequence: 0 })) void _;
  const failed = (await client.unary("getRun", { runId: "no-base" })).run as ppoCoordinator.Run;
  assert.equal(failed.state, ppoCoordinator.RunState.RUN_STATE_FAILED);
  assert.match(failed.errorMessage, /^STAGE_PRETRAIN: policy\.loadCheckpoint: 5 NOT_FOUND: .*\/nonexistent\/gpt2/);
});

test("a micro recipe runs every stage across the real services; WatchRun replays it in order", { timeout: testDeadlineMs(600_000) }, async () => {
  const started = await client.unary("startRun", { configJson: JSON.stringify(MICRO), runId: "micro", displayName: "unit test", validateOnly: false });
  assert.equal(started.run?.id, "micro");
  const events: ppoCoordinator.RunEvent[] = [];
  for await (const m of client.serverStream("watchRun", { runId: "micro", afterSequence: 0 })) events.push((m as ppoCoordinator.WatchRunResponse).event as ppoCoordinator.RunEvent);
  const run = (await client.unary("getRun", { runId: "micro" })).run as ppoCoordinator.Run;
  assert.equal(run.state, ppoCoordinator.RunState.RUN_STATE_SUCCEEDED, run.errorMessage);
  assert.deepEqual(
    events.map((e) => e.sequence),
    events.map((_, i) => i + 1),
    "numbered 1, 2, 3... with none missing",
  );
  const stages = new Set(events.flatMap((e) => (e.payload?.$case === "stageProgress" ? [e.payload.stageProgress.stage] : [])));
  for (const s of [ppoCoordinator.Stage.STAGE_PRETRAIN, ppoCoordinator.Stage.STAGE_SFT, ppoCoordinator.Stage.STAGE_RANKINGS, ppoCoordinator.Stage.STAGE_REWARD_MODEL, ppoCoordinator.Stage.STAGE_PPO, ppoCoordinator.Stage.STAGE_EVALUATION]) {
    assert.ok(stages.has(s), `stage ${ppoCoordinator.stageToJSON(s)} reported progress`);
  }
  const ppo = events.flatMap((e) => (e.payload?.$case === "metrics" && e.payload.metrics.stage === ppoCoordinator.Stage.STAGE_PPO ? [e.payload.metrics.values] : []));
  assert.equal(ppo.length, 4, "two iterations of PPO-ptx and two of plain PPO");
  assert.ok(ppo.every((v) => Number.isFinite(v["objective/reward"]) && Number.isFinite(v["objective/kl"]) && Number.isFinite(v["loss/policy"])));
  assert.ok(ppo.slice(0, 2).every((v) => Number.isFinite(v["ptx/loss"])) && ppo.slice(2).every((v) => v["ptx/loss"] === undefined), "ptx loss only in PPO-ptx");
  // Every training signal the recipe emits before evaluation is a registered instrument, so it reaches Prometheus.
  const registered = new Set<string | undefined>([...TRAINING_SIGNALS.map((x) => x.signal), "run/variant_ptx"]);
  const emitted = new Set(events.flatMap((e) => (e.payload?.$case === "metrics" && e.payload.metrics.stage !== ppoCoordinator.Stage.STAGE_EVALUATION ? Object.keys(e.payload.metrics.values) : [])));
  assert.deepEqual([...emitted].filter((k) => !registered.has(k)), [], "signals missing from libs/telemetry/src/instruments.ts");
  for (const f of ["config.json", "run.json", "events.jsonl", "recipe-state.json", "report.json", "report.html"]) assert.ok(existsSync(join(run.runDir, f)), f);
  const lines = readFileSync(join(run.runDir, "events.jsonl"), "utf8").trim().split("\n");
  assert.equal(lines.length, events.length);
  const report = JSON.parse(readFileSync(join(run.runDir, "report.json"), "utf8"));
  for (const m of ["base", "sft", "ppo", "ppo_ptx"]) assert.ok(report.models[m], m);
  assert.equal(report.models.sft.win_rate_vs_sft, null, "SFT is the baseline");
  assert.ok(report.models.ppo_ptx.win_rate_vs_sft.comparisons === 8);
  assert.equal(report.acceptance.checks.length, 11, "acceptance checks are in the report");
  assert.match(report.acceptance.summary, /checks (that apply )?passed/);
  assert.deepEqual(Object.keys(report.run.elapsed_ms), ["pretrain", "sft", "rankings", "reward_model", "ppo", "evaluation"], "every stage's time, evaluation's too");
  // The labelers were calibrated on the sampled pairs they ranked; the report shows their measured agreement.
  const state = JSON.parse(readFileSync(join(run.runDir, "recipe-state.json"), "utf8"));
  assert.ok(state.labelers.noiseStd > 0 && state.labelers.pairs > 0 && state.labelers.calibratedOn.startsWith("ranked_samples"), JSON.stringify(state.labelers));
  assert.equal(report.reward_model.labeler_agreement, state.labelers.agreement);
  const ranked = events.flatMap((e) => (e.payload?.$case === "metrics" && e.payload.metrics.stage === ppoCoordinator.Stage.STAGE_RANKINGS ? [e.payload.metrics.values] : []));
  assert.deepEqual(ranked, [{ "labelers/noise_std": state.labelers.noiseStd, "labelers/agreement": state.labelers.agreement, "labelers/pairs": state.labelers.pairs, "labelers/gold_tie_share": state.labelers.goldTieShare }]);
  const last = events.filter((e) => e.payload?.$case === "metrics").at(-1);
  assert.ok(last?.payload?.$case === "metrics" && Object.keys(last.payload.metrics.values).some((k) => k.startsWith("acceptance/")), "the last metrics carry the acceptance checks");
  // Replay from the middle sends only what came after.
  const tail: ppoCoordinator.RunEvent[] = [];
  for await (const m of client.serverStream("watchRun", { runId: "micro", afterSequence: events.length - 3 })) tail.push((m as ppoCoordinator.WatchRunResponse).event as ppoCoordinator.RunEvent);
  assert.deepEqual(tail.map((e) => e.sequence), [events.length - 2, events.length - 1, events.length]);
  // A retry with the same id and config returns the run; another config is ALREADY_EXISTS.
  assert.equal((await client.unary("startRun", { configJson: JSON.stringify(MICRO), runId: "micro", displayName: "", validateOnly: false })).run?.id, "micro");
  assert.match(String(await statusOf(client.unary("startRun", { configJson: "{}", runId: "micro", displayName: "", validateOnly: false }))), /^ALREADY_EXISTS/);
  assert.match(String(await statusOf(client.unary("cancelRun", { runId: "micro" }))), /^FAILED_PRECONDITION: run micro is RUN_STATE_SUCCEEDED/);
});

test("a second coordinator on the same model services cannot start a run while the first's run holds them; the first run's figures are those of the same run alone", { timeout: testDeadlineMs(600_000) }, async () => {
  const other = await startCoordinator(
    loadConfig({ GRPC_PORT: "0", POLICY_ADDR: apps.policy.server.address, REWARD_MODEL_ADDR: apps.rm.server.address, REFERENCE_MODEL_ADDR: apps.ref.server.address, PRETRAIN_MIX_ADDR: apps.mix.server.address, RUNS_DIR: mkdtempSync(join(tmpdir(), "coordinator-other-")) }),
    log,
  );
  const otherClient = createClient(ppoCoordinator.PpoCoordinatorServiceClient, other.server.address, { deadlineMs: testDeadlineMs(60_000) });
  const policy = createClient(policyPb.PolicyServiceClient, apps.policy.server.address, { deadlineMs: testDeadlineMs(60_000) });
  try {
    await client.unary("startRun", { configJson: JSON.stringify(MICRO), runId: "leased-first", displayName: "", validateOnly: false });
    // While it runs (its lease taken at StartRun): the other coordinator is refused, naming the holder.
    const refused = String(await statusOf(otherClient.unary("startRun", { configJson: JSON.stringify(MICRO), runId: "leased-second", displayName: "", validateOnly: false })));
    assert.match(refused, /^FAILED_PRECONDITION: policy is leased to run leased-first \(held .* RUN_LEASE_TTL_MS = 600000 ms .*\): RunLease of run leased-second refused$/);
    // A call that would change the policy without naming the run is refused too; a read is served.
    const load = String(await statusOf(policy.unary("loadCheckpoint", { source: { $case: "randomInit", randomInit: { config: { vocabSize: 256, nPositions: 64, nEmbd: 32, nLayer: 1, nHead: 2, layerNormEpsilon: 1e-5 }, seed: 1 } } })));
    assert.match(load, /^FAILED_PRECONDITION: policy is leased to run leased-first .*LoadCheckpoint changes the model and is refused without metadata x-rlhf-run-id naming that run$/);
    assert.ok((await policy.unary("getInfo", {})).policyWeights, "GetInfo without a run id is served");
    for await (const _ of client.serverStream("watchRun", { runId: "leased-first", afterSequence: 0 })) void _;
    const first = (await client.unary("getRun", { runId: "leased-first" })).run as ppoCoordinator.Run;
    assert.equal(first.state, ppoCoordinator.RunState.RUN_STATE_SUCCEEDED, first.errorMessage);
    const micro = (await client.unary("getRun", { runId: "micro" })).run as ppoCoordinator.Run;
    assert.deepEqual(differences(figures(first.runDir), figures(micro.runDir)), [], "the same figures as the micro run, alone before it");
    // Given back when the run ended: the other coordinator's run starts now.
    assert.equal((await policy.unary("runLease", { release: false })).lease?.holder, "", "the policy is free");
    assert.equal((await otherClient.unary("startRun", { configJson: JSON.stringify(MICRO), runId: "leased-second", displayName: "", validateOnly: false })).run?.id, "leased-second");
    await otherClient.unary("cancelRun", { runId: "leased-second" });
    for await (const _ of otherClient.serverStream("watchRun", { runId: "leased-second", afterSequence: 0 })) void _;
    assert.equal((await policy.unary("runLease", { release: false })).lease?.holder, "", "given back after the cancel too");
  } finally {
    otherClient.close();
    policy.close();
    await other.stop(500);
  }
});

test("CancelRun during pretraining reaches the policy: its training stops between optimizer steps, long before the stage's end", { timeout: testDeadlineMs(600_000) }, async () => {
  const steps = 4000;
  const config = { ...MICRO, pretrain: { ...MICRO.pretrain, steps, cache: false, warmup_steps: 1 } };
  await client.unary("startRun", { configJson: JSON.stringify(config), runId: "cancel-pretrain", displayName: "", validateOnly: false });
  const training = (e: ppoCoordinator.RunEvent) => e.payload?.$case === "stageProgress" && e.payload.stageProgress.stage === ppoCoordinator.Stage.STAGE_PRETRAIN && e.payload.stageProgress.step >= 2;
  const before = await follow("cancel-pretrain", 0, training);
  assert.ok(training(before.at(-1) as ppoCoordinator.RunEvent), "pretraining is under way");
  const policy = createClient(policyPb.PolicyServiceClient, apps.policy.server.address, { deadlineMs: testDeadlineMs(60_000) });
  try {
    const version = async () => (await policy.unary("getInfo", {})).policyWeights?.version ?? 0;
    // Every optimizer step is a version; the run loaded a random policy (version 0) before pretraining.
    const atCancel = await version();
    await client.unary("cancelRun", { runId: "cancel-pretrain" });
    const rest = await follow("cancel-pretrain", before.at(-1)?.sequence ?? 0);
    const end = rest.at(-1)?.payload;
    assert.ok(end?.$case === "stateChanged" && end.stateChanged.toState === ppoCoordinator.RunState.RUN_STATE_CANCELLED, JSON.stringify(end));
    // Once the version stops moving the policy has stopped training (no time limit: on a loaded
    // machine the cancellation may take a while to arrive; it must arrive).
    let last = await version();
    for (;;) {
      await sleep(500);
      const v = await version();
      if (v === last) break;
      last = v;
    }
    assert.ok(last < steps, `the policy stopped at version ${last} (${atCancel} when cancelled) of the ${steps} pretraining steps`);
    assert.equal((await policy.unary("getInfo", {})).training, false, "the policy's queue is free");
  } finally {
    policy.close();
  }
});

/** Follows a run to its end (or until `until` says stop) on coordinator `c`; returns the events seen. */
async function follow(runId: string, after = 0, until?: (e: ppoCoordinator.RunEvent) => boolean, c = client): Promise<ppoCoordinator.RunEvent[]> {
  const out: ppoCoordinator.RunEvent[] = [];
  const stream = c.serverStream("watchRun", { runId, afterSequence: after });
  for await (const m of stream) {
    const e = (m as ppoCoordinator.WatchRunResponse).event as ppoCoordinator.RunEvent;
    out.push(e);
    if (until?.(e)) {
      stream.cancel();
      break;
    }
  }
  return out;
}

/** The config of the resume test: three PPO iterations per variant, a checkpoint after each. */
const RESUME_CONFIG = JSON.stringify({ ...MICRO, pretrain: { enabled: false }, ppo: { ...MICRO.ppo, iterations: 3 }, evaluation: { ...MICRO.evaluation, prompts: 4 } });
/** Final checkpoint files (policy, critic, optimiser) that must equal the uninterrupted run's byte for byte. */
const FINAL_FILES = ["ppo_ptx-000003/policy/model.safetensors", "ppo_ptx-000003/critic/model.safetensors", "ppo_ptx-000003/policy/optimizer.safetensors", "ppo-000003/policy/model.safetensors"];

// One interrupted run covers both ways a run stops (a second one would double the CI time): it is
// cancelled during PPO-ptx and resumed, then its coordinator process is SIGKILLed during plain
// PPO, started again on the same RUNS_DIR and the run resumed; it must end exactly as the
// uninterrupted run ("straight", same seed) does, on the default backend (torch where built).
test("a run cancelled during PPO-ptx and resumed, then SIGKILLed (its coordinator) during plain PPO, restarted and resumed, ends with the same weights as an uninterrupted one", { timeout: testDeadlineMs(900_000) }, async () => {
  await client.unary("startRun", { configJson: RESUME_CONFIG, runId: "straight", displayName: "", validateOnly: false });
  await follow("straight");
  assert.equal((await client.unary("getRun", { runId: "straight" })).run?.state, ppoCoordinator.RunState.RUN_STATE_SUCCEEDED);

  // The coordinator of the interrupted run is its own process (`rlhf serve ppo-coordinator`) on the in-process model services.
  const killDir = mkdtempSync(join(tmpdir(), "coordinator-kill-"));
  const env = {
    POLICY_ADDR: apps.policy.server.address,
    REWARD_MODEL_ADDR: apps.rm.server.address,
    REFERENCE_MODEL_ADDR: apps.ref.server.address,
    PRETRAIN_MIX_ADDR: apps.mix.server.address,
    RUNS_DIR: killDir,
    METRICS_PORT: "0",
    NATS_URL: undefined,
  };
  const startProcess = async () => {
    const port = await freePort();
    const p = startProc([RLHF, "serve", "ppo-coordinator", "--port", String(port)], env);
    const address = `127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      if (p.child.exitCode !== null || i > 600) assert.fail(`the coordinator did not start: ${p.out()}`);
      if ((await checkHealth(address, "", 1000).catch(() => "")) === "SERVING") break;
      await sleep(200);
    }
    return { p, c: createClient(ppoCoordinator.PpoCoordinatorServiceClient, address, { deadlineMs: testDeadlineMs(600_000) }) };
  };
  const checkpointOf = (dir: RegExp) => (e: ppoCoordinator.RunEvent) => e.payload?.$case === "checkpointWritten" && dir.test(e.payload.checkpointWritten.dir);
  const first = await startProcess();
  let second: typeof first | undefined;
  try {
    // 1. Cancel right after PPO-ptx's first checkpoint (iteration 1 of 3), then resume.
    await first.c.unary("startRun", { configJson: RESUME_CONFIG, runId: "interrupted", displayName: "", validateOnly: false });
    const before = await follow("interrupted", 0, checkpointOf(/ppo_ptx-000001$/), first.c);
    assert.equal((await first.c.unary("cancelRun", { runId: "interrupted" })).run?.cancelRequested, true);
    const rest = await follow("interrupted", before.at(-1)?.sequence ?? 0, undefined, first.c);
    const end = rest.at(-1)?.payload;
    assert.ok(end?.$case === "stateChanged" && end.stateChanged.toState === ppoCoordinator.RunState.RUN_STATE_CANCELLED, "the run reports CANCELLED");
    assert.equal((await first.c.unary("resumeRun", { runId: "interrupted" })).run?.resumeCount, 1);

    // 2. SIGKILL the coordinator once plain PPO's first checkpoint is written and recorded in recipe-state.json (what a resume reads).
    await follow("interrupted", rest.at(-1)?.sequence ?? 0, checkpointOf(/\/ppo-000001$/), first.c);
    const statePath = join(killDir, "interrupted", "recipe-state.json");
    type Variant = { checkpoint?: { iterations: number }; done: boolean };
    const recorded = (): { ppo: { ppo?: Variant; ppo_ptx?: Variant } } | undefined => {
      try {
        return JSON.parse(readFileSync(statePath, "utf8"));
      } catch {
        return undefined; // being replaced
      }
    };
    for (let i = 0; i < 6000 && !(recorded()?.ppo.ppo?.checkpoint?.iterations ?? 0); i++) await sleep(10);
    first.p.child.kill("SIGKILL");
    await first.p.exited;
    first.c.close();
    const atKill = recorded()?.ppo;
    assert.ok(atKill?.ppo_ptx?.done && atKill.ppo?.checkpoint && !atKill.ppo.done, `killed during plain PPO, after a checkpoint: ${JSON.stringify(atKill)}`);
    console.log(`coordinator killed after plain PPO's checkpoint ${atKill.ppo.checkpoint.iterations} of 3`);
    // Nothing recorded the run's end, but `rlhf watch` of the folder sees that its coordinator is gone and ends.
    const watched = spawnSync(process.execPath, [RLHF, "watch", join(killDir, "interrupted")], { encoding: "utf8", timeout: testDeadlineMs(120_000) });
    assert.equal(watched.status, 1, watched.stdout + watched.stderr);
    assert.match(watched.stdout, new RegExp(`run interrupted did not end: the coordinator running it \\(process ${first.p.child.pid} on this machine\\) has stopped without recording its end; it is resumable`));

    // 3. A new coordinator on the same RUNS_DIR: the run is FAILED (resumable); resume it to the end.
    second = await startProcess();
    const interrupted = (await second.c.unary("getRun", { runId: "interrupted" })).run as ppoCoordinator.Run;
    assert.equal(interrupted.state, ppoCoordinator.RunState.RUN_STATE_FAILED, "a restarted coordinator marks the run FAILED");
    assert.match(interrupted.errorMessage, /coordinator stopped while the run was in progress; ResumeRun continues it/);
    assert.equal((await second.c.unary("resumeRun", { runId: "interrupted" })).run?.resumeCount, 2);
    const after = await follow("interrupted", interrupted.lastEventSequence, undefined, second.c);
    const r = (await second.c.unary("getRun", { runId: "interrupted" })).run as ppoCoordinator.Run;
    assert.equal(r.state, ppoCoordinator.RunState.RUN_STATE_SUCCEEDED, r.errorMessage);
    // Plain PPO went on from its checkpoint: the first iteration after the resume is the one after it.
    const firstPpo = after.find((e) => e.payload?.$case === "metrics" && e.payload.metrics.stage === ppoCoordinator.Stage.STAGE_PPO);
    assert.ok(firstPpo?.payload?.$case === "metrics");
    assert.equal(firstPpo.payload.metrics.step, 3 + atKill.ppo.checkpoint.iterations + 1, "continued from the checkpoint, not from the start");
    for (const f of FINAL_FILES) {
      const a = readFileSync(join(runsDir, "straight", "checkpoints", f));
      const b = readFileSync(join(killDir, "interrupted", "checkpoints", f));
      assert.ok(a.equals(b), `${f} is byte-identical after cancel + resume + SIGKILL + restart + resume`);
    }
    const kl = (dir: string) => JSON.parse(readFileSync(join(dir, "report.json"), "utf8")).iterations.ppo_ptx.map((i: { values: Record<string, number> }) => i.values["objective/kl"]);
    assert.deepEqual(kl(join(killDir, "interrupted")), kl(join(runsDir, "straight")));
    // The evaluation after the resumes judged with the panel the rankings stage calibrated (recipe-state.json).
    const judged = (dir: string) => {
      const r = JSON.parse(readFileSync(join(dir, "report.json"), "utf8"));
      return { rm: r.reward_model, win: Object.fromEntries(Object.entries(r.models).map(([k, m]) => [k, (m as { win_rate_vs_sft: unknown }).win_rate_vs_sft])) };
    };
    assert.deepEqual(judged(join(killDir, "interrupted")), judged(join(runsDir, "straight")));
  } finally {
    for (const proc of [first, second]) {
      if (!proc) continue;
      proc.c.close();
      proc.p.child.kill("SIGTERM");
      await exitWithin(proc.p, testDeadlineMs(30_000));
    }
  }
});
