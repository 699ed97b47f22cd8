// runSession end to end against stand-ins: a fake CLI entry point whose `serve <name> --port <p>`
// starts a scripted coordinator (the generated PpoCoordinatorService, events per FAKE_SCENARIO)
// or a health-only model service. The real coordinator's end-to-end test is in e2e/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { UsageError } from "../args";
import { EXIT, SERVICE_NAMES, createSessionToken, dataPathsOf, freePorts, labelingSpec, metricsPortOf, ranksThroughLabeling, runSession, serviceNamedIn, serviceSpecs, tokenizerOf, type SessionAction } from "./session";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const FAKE_MAIN = `
const path = require("node:path");
const kit = require(${JSON.stringify(require.resolve("@rlhf/grpc-kit"))});
const { ppoCoordinator: pc } = require(${JSON.stringify(require.resolve("@rlhf/proto"))});
const [, , cmd, name, flag, portText] = process.argv;
if (cmd !== "serve" || flag !== "--port") { console.error("bad argv " + process.argv.join(" ")); process.exit(9); }
const scenario = process.env.FAKE_SCENARIO;
const log = kit.createLogger({ service: name });
const keys = ["GRPC_HOST", "RLHF_BACKEND", "TOKENIZER", "POLICY_ADDR", "REWARD_MODEL_ADDR", "REFERENCE_MODEL_ADDR", "PRETRAIN_MIX_ADDR", "RUNS_DIR", "RLHF_AUTH_TOKEN_FILE", "RLHF_TOKEN"];
log.info({ env: Object.fromEntries(keys.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]])) }, "wiring");
const S = pc.Stage, R = pc.RunState;
const RESOLVED = JSON.stringify({ model: { preset: "tiny", tokenizer: "gpt2" } });
const runDir = path.join(process.env.RUNS_DIR || ".", "fake-1");
let seq = 0, state = R.RUN_STATE_UNSPECIFIED, cancelled = () => {}, isCancelled = false;
if (scenario === "resume") { seq = 3; state = R.RUN_STATE_FAILED; }
const history = [];
const ev = (payload) => { const e = pc.RunEvent.fromPartial({ runId: "fake-1", sequence: ++seq, payload }); history.push(e); return e; };
const changed = (from, to, stage, errorMessage = "") => ev({ $case: "stateChanged", stateChanged: { fromState: from, toState: to, stage, errorMessage } });
const progress = (stage, step, totalSteps, unit) => ev({ $case: "stageProgress", stageProgress: { stage, step, totalSteps, unit, etaMs: 0, elapsedMs: step * 1000 } });
const run = () => pc.Run.fromPartial({ id: "fake-1", state, runDir, configJson: RESOLVED, lastEventSequence: seq, lastMetrics: { "acceptance/from_get_run": 0.5 } });
if (scenario === "resume") {
  seq = 0;
  changed(R.RUN_STATE_PENDING, R.RUN_STATE_RUNNING, S.STAGE_UNSPECIFIED);
  progress(S.STAGE_SFT, 1, 2, "optimizer_steps");
  changed(R.RUN_STATE_RUNNING, R.RUN_STATE_FAILED, S.STAGE_SFT, "killed");
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const coordinator = {
  startRun(call, cb) {
    log.info({ request: call.request }, "StartRun");
    if (call.request.validateOnly) {
      if (scenario === "invalid") return cb({ code: 3, details: "ppo.beta: must be >= 0, got -1" });
      return cb(null, { run: pc.Run.fromPartial({ configJson: RESOLVED }) });
    }
    state = R.RUN_STATE_RUNNING;
    cb(null, { run: run() });
  },
  getRun(call, cb) { log.info({ request: call.request }, "GetRun"); cb(null, { run: run() }); },
  listRuns(_call, cb) { cb(null, { runs: [], nextPageToken: "" }); },
  cancelRun(call, cb) { log.info({ request: call.request }, "CancelRun"); isCancelled = true; cancelled(); cb(null, { run: run() }); },
  resumeRun(call, cb) { log.info({ request: call.request }, "ResumeRun"); state = R.RUN_STATE_PENDING; cb(null, { run: run() }); },
  async watchRun(call) {
    log.info({ request: call.request }, "WatchRun");
    const send = (e) => call.write({ event: e });
    for (const e of history) if (e.sequence > call.request.afterSequence) send(e);
    const end = (to, err = "") => { state = to; send(changed(R.RUN_STATE_RUNNING, to, S.STAGE_PPO, err)); call.end(); };
    if (scenario === "resume") {
      send(changed(R.RUN_STATE_FAILED, R.RUN_STATE_PENDING, S.STAGE_SFT));
      send(changed(R.RUN_STATE_PENDING, R.RUN_STATE_RUNNING, S.STAGE_SFT));
      send(progress(S.STAGE_SFT, 2, 2, "optimizer_steps"));
      return end(R.RUN_STATE_SUCCEEDED);
    }
    send(changed(R.RUN_STATE_PENDING, R.RUN_STATE_RUNNING, S.STAGE_UNSPECIFIED));
    send(progress(S.STAGE_SFT, 0, 2, "optimizer_steps"));
    await sleep(50);
    send(progress(S.STAGE_SFT, 2, 2, "optimizer_steps"));
    send(progress(S.STAGE_PPO, 0, 1, "iterations"));
    if (scenario === "cancel") {
      if (!isCancelled) await new Promise((r) => (cancelled = r));
      return end(R.RUN_STATE_CANCELLED);
    }
    if (scenario === "policy-dies" || scenario === "hang") return; // the stream stays open
    send(ev({ $case: "metrics", metrics: { stage: S.STAGE_PPO, step: 1, values: { "objective/reward": 0.25, "acceptance/ppo_ptx_beats_sft": 1 } } }));
    send(progress(S.STAGE_PPO, 1, 1, "iterations"));
    if (scenario === "fail") return end(R.RUN_STATE_FAILED, "reward-model: Score: INTERNAL: boom");
    end(R.RUN_STATE_SUCCEEDED);
  },
};
(async () => {
  const services = name === "ppo-coordinator" ? [{ definition: pc.PpoCoordinatorServiceService, implementation: coordinator }] : [];
  const s = await kit.startServer({ services, log, port: Number(portText) });
  if (name === "ppo-coordinator" || name === "pretrain-mix") s.setServing(true);
  if (name === "reward-model") log.error("reward-model: Score failed: boom");
  if (name === "policy" && scenario === "policy-dies") setTimeout(() => { console.error("policy: out of memory"); process.exit(7); }, 1500);
  process.on("SIGTERM", async () => { log.info("got SIGTERM"); await s.shutdown(200); process.exit(0); });
})();
`;

const fakeMain = join(mkdtempSync(join(tmpdir(), "rlhf-fake-cli-")), "main.js");
writeFileSync(fakeMain, FAKE_MAIN);

class Collect extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

const START: SessionAction = { kind: "start", configJson: '{"preset":"tiny"}', runId: "", displayName: "test", source: "cfg.yaml" };

async function session(scenario: string, action: SessionAction = START, during?: (out: Collect) => Promise<void>) {
  const runsDir = mkdtempSync(join(tmpdir(), "rlhf-session-"));
  const out = new Collect();
  process.env.FAKE_SCENARIO = scenario;
  try {
    const running = runSession({ action, runsDir, out, cliMain: fakeMain, backend: "cpu", readyTimeoutMs: testDeadlineMs(30_000), stopGraceMs: 5000 });
    if (during) await during(out);
    const code = await running;
    return { code, out: out.text, runsDir, log: (name: string) => (existsSync(join(runsDir, `${name}.log`)) ? readFileSync(join(runsDir, `${name}.log`), "utf8") : "") };
  } finally {
    delete process.env.FAKE_SCENARIO;
  }
}

async function until(cond: () => boolean, ms = testDeadlineMs(30_000)): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("a run that succeeds: services wired and started, config validated, progress followed, report paths, children stopped, exit 0", async () => {
  const r = await session("success");
  assert.equal(r.code, EXIT.ok, r.out);
  const lines = r.out.split("\n");
  // No OTLP endpoint in this environment: the session collects the children's traces itself.
  assert.match(lines[0], /^starting the services on 127\.0\.0\.1 \(logs: .*\/<service>\.log; traces: run folders \(<run>\/traces\.jsonl, via http:\/\/127\.0\.0\.1:\d+\)\)$/);
  assert.match(lines[1], /^services ready in \d+\.\d s \(tokenizer gpt2, backend cpu\)$/);
  assert.deepEqual(lines.slice(2), [
    `run fake-1 started: ${join(r.runsDir, "fake-1")}`,
    "run fake-1 RUNNING",
    "SFT started (2 optimizer steps)",
    "SFT          ✓ done in 2s (2 optimizer steps)",
    "PPO started (1 iteration)",
    "PPO          ✓ done in 1s (1 iteration)",
    "run fake-1 SUCCEEDED",
    `run folder:  ${join(r.runsDir, "fake-1")}`,
    `report:      ${join(r.runsDir, "fake-1", "report.html")}`,
    `             ${join(r.runsDir, "fake-1", "report.json")}`,
    "acceptance:",
    "  from_get_run  0.5",
    "  ppo_ptx_beats_sft  1",
    "",
  ]);
  // the coordinator got the addresses and RUNS_DIR; the policy and pretrain-mix the resolved tokenizer
  const wiring = (name: string) => JSON.parse(r.log(name).split("\n").find((l) => l.includes('"msg":"wiring"'))!).env as Record<string, string>;
  const c = wiring("ppo-coordinator");
  assert.equal(c.RUNS_DIR, r.runsDir);
  assert.equal(c.RLHF_BACKEND, "cpu");
  for (const k of ["POLICY_ADDR", "REWARD_MODEL_ADDR", "REFERENCE_MODEL_ADDR", "PRETRAIN_MIX_ADDR"]) assert.match(c[k], /^127\.0\.0\.1:\d+$/);
  assert.equal(wiring("policy").TOKENIZER, "gpt2");
  assert.equal(wiring("policy").REWARD_MODEL_ADDR, c.REWARD_MODEL_ADDR);
  assert.equal(wiring("pretrain-mix").TOKENIZER, "gpt2");
  assert.equal(wiring("reward-model").POLICY_ADDR, c.POLICY_ADDR);
  assert.equal(wiring("reference-model").POLICY_ADDR, c.POLICY_ADDR);
  // Authenticated: every child got the session's token file (and no token of the shell), its
  // server checked tokens, and the CLI's calls carried the token (else StartRun had failed).
  const tokenFile = c.RLHF_AUTH_TOKEN_FILE;
  assert.match(tokenFile, /\/\.session-token-\d+-[0-9a-f]{8}$/);
  assert.equal(dirname(tokenFile), r.runsDir);
  for (const name of ["ppo-coordinator", "policy", "reward-model", "reference-model", "pretrain-mix"]) {
    assert.equal(wiring(name).RLHF_AUTH_TOKEN_FILE, tokenFile, name);
    assert.equal(wiring(name).RLHF_TOKEN, "", name);
    assert.match(r.log(name), /"authentication":"RLHF_AUTH_TOKEN_FILE \(service, operator, viewer\)"/, name);
  }
  assert.ok(!existsSync(tokenFile), "the token file is removed when the session ends");
  // validate_only first, then the real StartRun with the same config
  const starts = r.log("ppo-coordinator").split("\n").filter((l) => l.includes('"msg":"StartRun"')).map((l) => JSON.parse(l).request);
  assert.deepEqual(starts.map((q: { validateOnly: boolean; configJson: string }) => [q.validateOnly, q.configJson]), [[true, '{"preset":"tiny"}'], [false, '{"preset":"tiny"}']]);
  for (const name of ["ppo-coordinator", "policy", "reward-model", "reference-model", "pretrain-mix"]) assert.match(r.log(name), /got SIGTERM/, name);
});

test("--tls: the services serve mutual TLS with a throw-away CA, the CLI calls them over it; the shell's GRPC_TLS_* do not leak in", async () => {
  const runsDir = mkdtempSync(join(tmpdir(), "rlhf-session-tls-"));
  const out = new Collect();
  process.env.FAKE_SCENARIO = "success";
  process.env.GRPC_TLS_CA_FILE = "/nonexistent/ca-of-a-remote-cluster.crt";
  try {
    const code = await runSession({ action: START, runsDir, out, cliMain: fakeMain, backend: "cpu", readyTimeoutMs: testDeadlineMs(30_000), stopGraceMs: 5000, tls: true });
    assert.equal(code, EXIT.ok, out.text);
    for (const name of ["ppo-coordinator", "policy", "reward-model", "reference-model", "pretrain-mix"]) {
      assert.match(readFileSync(join(runsDir, `${name}.log`), "utf8"), /"tls":"mutual"/, name);
    }
    assert.deepEqual(readdirSync(runsDir).filter((f) => f.startsWith(".session-")), [], "the CA, certificate and token are removed at the end");
    assert.equal(process.env.GRPC_TLS_CA_FILE, "/nonexistent/ca-of-a-remote-cluster.crt", "the CLI's environment is restored");
    assert.equal(process.env.GRPC_TLS_CERT_FILE, undefined);
    // Without --tls the shell's GRPC_TLS_CA_FILE (meant for a remote coordinator) is not used on loopback.
    const plain = new Collect();
    assert.equal(await runSession({ action: START, runsDir, out: plain, cliMain: fakeMain, backend: "cpu", readyTimeoutMs: testDeadlineMs(30_000), stopGraceMs: 5000 }), EXIT.ok, plain.text);
  } finally {
    delete process.env.FAKE_SCENARIO;
    delete process.env.GRPC_TLS_CA_FILE;
  }
});

test("a run that fails: the error, the failing service's log, the resume command, exit 1", async () => {
  const r = await session("fail");
  assert.equal(r.code, EXIT.failed, r.out);
  assert.match(r.out, /\nrun fake-1 FAILED in PPO: reward-model: Score: INTERNAL: boom\nrun folder: {2}.*fake-1\n/);
  assert.doesNotMatch(r.out, /report\.html|acceptance/, "no report or acceptance lines for a failed run");
  assert.match(r.out, /\nlast lines of .*reward-model\.log:\n( {2}.*\n)* {2}error reward-model: Score failed: boom\n/);
  assert.match(r.out, /\nresume it with: pnpm rlhf resume .*fake-1 --backend cpu\n$/);
});

test("a config the coordinator refuses is a UsageError naming the file; the model services never start", async () => {
  await assert.rejects(session("invalid"), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.equal(e.message, "cfg.yaml: ppo.beta: must be >= 0, got -1");
    return true;
  });
});

test("Ctrl-C cancels the run, waits for CANCELLED, prints the resume command and exits 130", async () => {
  const r = await session("cancel", START, async (out) => {
    await until(() => out.text.includes("PPO started"));
    process.emit("SIGINT");
  });
  assert.equal(r.code, EXIT.interrupted, r.out);
  assert.match(r.out, /Ctrl-C: cancelling run fake-1; it stays resumable \(Ctrl-C again to stop at once\)\n/);
  assert.match(r.out, /\nPPO {10}■ cancelled at iteration 0\/1 after 0s\nrun fake-1 CANCELLED in PPO\n/);
  assert.match(r.out, /resume it with: pnpm rlhf resume .*fake-1 --backend cpu\n$/);
  assert.match(r.log("ppo-coordinator"), /"msg":"CancelRun"/);
  assert.equal(process.listenerCount("SIGINT"), 0, "the handler is gone");
});

test("a second Ctrl-C kills the services at once when the run does not stop", async () => {
  const r = await session("hang", START, async (out) => {
    await until(() => out.text.includes("PPO started"));
    process.emit("SIGINT");
    await until(() => out.text.includes("Ctrl-C: cancelling"));
    process.emit("SIGINT");
  });
  assert.equal(r.code, EXIT.interrupted, r.out);
  assert.match(r.out, /\nCtrl-C again: stopping the services now\n/);
  assert.match(r.out, /resume it with: pnpm rlhf resume .*fake-1 --backend cpu\n$/);
  assert.doesNotMatch(r.out, /did not stop within the grace period/);
  // SIGKILLed: no graceful shutdown in any log
  for (const name of ["ppo-coordinator", "policy", "pretrain-mix"]) assert.doesNotMatch(r.log(name), /got SIGTERM/, name);
});

test("Ctrl-C while the services start stops them and exits 130 without starting a run", async () => {
  const r = await session("success", START, async () => {
    process.emit("SIGINT");
  });
  assert.equal(r.code, EXIT.interrupted, r.out);
  assert.match(r.out, /Ctrl-C: stopping the services\n/);
  assert.doesNotMatch(r.out, /run fake-1|resume it with/);
  assert.doesNotMatch(r.log("ppo-coordinator"), /"msg":"StartRun"/);
});

test("a service that dies during the run ends the session with its log tail, exit 1", async () => {
  const r = await session("policy-dies");
  assert.equal(r.code, EXIT.failed, r.out);
  assert.match(r.out, /\npolicy exited with code 7 (unexpectedly|before it was ready) \(log: .*policy\.log\); its last lines:\n( {2}.*\n)* {2}policy: out of memory\n/);
  assert.match(r.log("ppo-coordinator"), /got SIGTERM/);
});

test("resume: GetRun, then ResumeRun; the history is replayed silently and drawn once", async () => {
  const r = await session("resume", { kind: "resume", runId: "fake-1", runDir: "/somewhere/fake-1" });
  assert.equal(r.code, EXIT.ok, r.out);
  const lines = r.out.split("\n");
  assert.deepEqual(lines.slice(2, 7), [
    `run fake-1 resumed: ${join(r.runsDir, "fake-1")}`,
    "SFT          ✗ failed at step 1/2 after 1s",
    "run fake-1 PENDING",
    "run fake-1 RUNNING",
    "SFT started (2 optimizer steps), from step 2",
  ]);
  assert.match(r.log("ppo-coordinator"), /"msg":"ResumeRun"/);
  assert.doesNotMatch(r.log("ppo-coordinator"), /"msg":"StartRun"/);
});

test("wiring helpers", async () => {
  assert.equal(tokenizerOf('{"model":{"tokenizer":"gpt2"}}'), "gpt2");
  assert.equal(tokenizerOf('{"model":{}}'), "byte");
  assert.equal(tokenizerOf("not json"), "byte");
  assert.equal(tokenizerOf(undefined), "byte");
  assert.equal(serviceNamedIn("policy: Generate: RESOURCE_EXHAUSTED"), "policy");
  assert.equal(serviceNamedIn("rlhf.reward_model.v1.RewardModelService/Score: INTERNAL (called with policy weights)"), "reward-model");
  assert.equal(serviceNamedIn("something odd"), "ppo-coordinator");
  const ports = await freePorts(5);
  assert.equal(new Set(ports).size, 5);
  const specs = serviceSpecs({ ports: { "ppo-coordinator": 1, policy: 2, "reward-model": 3, "reference-model": 4, "pretrain-mix": 5 }, runsDir: "/r", tokenizer: "byte", cliMain: "/cli/main.js" });
  assert.deepEqual(specs.policy, {
    name: "policy",
    args: ["/cli/main.js", "serve", "policy", "--port", "2"],
    port: 2,
    env: { GRPC_HOST: "127.0.0.1", METRICS_PORT: "0", OTEL_SERVICE_NAME: "policy", REWARD_MODEL_ADDR: "127.0.0.1:3", TOKENIZER: "byte", CHECKPOINT_ROOT: "/r" },
    ready: "answer",
  });
  // The roots: the runs folder and the files the config names, for every service that takes paths.
  const config = JSON.stringify({ model: { base_checkpoint: "/models/gpt2" }, data: { files: { sft: "/d/sft.jsonl", prompts: null } } });
  assert.deepEqual(dataPathsOf(config), ["/models/gpt2", "/d/sft.jsonl"]);
  assert.deepEqual(dataPathsOf("not json"), []);
  const rooted = serviceSpecs({ ports: { "ppo-coordinator": 1, policy: 2, "reward-model": 3, "reference-model": 4, "pretrain-mix": 5 }, runsDir: "/r", dataPaths: dataPathsOf(config), tokenizer: "byte" });
  const roots = "/r:/models/gpt2:/d/sft.jsonl";
  assert.equal(rooted.policy.env?.RLHF_AUTH_TOKEN_FILE, undefined, "no token file, no token variable");
  const tokened = serviceSpecs({ ports: { "ppo-coordinator": 1, policy: 2, "reward-model": 3, "reference-model": 4, "pretrain-mix": 5 }, runsDir: "/r", tokenizer: "byte", tokenFile: "/r/.t" });
  assert.ok(SERVICE_NAMES.every((n) => tokened[n].env?.RLHF_AUTH_TOKEN_FILE === "/r/.t" && tokened[n].env?.RLHF_CLIENT_TOKEN_FILE === ""));
  // A fresh 256-bit token in a new file only its owner can read
  const dir = mkdtempSync(join(tmpdir(), "rlhf-token-"));
  const t1 = createSessionToken(dir);
  const t2 = createSessionToken(dir);
  assert.notEqual(t1.token, t2.token);
  assert.match(t1.token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(readFileSync(t1.file, "utf8"), `${t1.token}\n`);
  assert.equal(statSync(t1.file).mode & 0o777, 0o600);
  t1.remove();
  assert.ok(!existsSync(t1.file));
  assert.deepEqual(
    [rooted["ppo-coordinator"].env?.DATA_ROOT, rooted.policy.env?.CHECKPOINT_ROOT, rooted["reward-model"].env?.CHECKPOINT_ROOT, rooted["reference-model"].env?.CHECKPOINT_ROOT, rooted["pretrain-mix"].env?.DATA_ROOT],
    [roots, roots, roots, roots, roots],
  );
  assert.equal(specs["ppo-coordinator"].ready, "serving");
  assert.equal(specs["pretrain-mix"].ready, "serving");
  assert.equal(specs["reward-model"].ready, "answer");
  assert.equal(specs["ppo-coordinator"].env?.RLHF_BACKEND, undefined, "no backend flag, no RLHF_BACKEND");
  // Prometheus endpoints: off for every child unless METRICS_PORT was set, then one port each.
  assert.ok(Object.values(specs).every((s) => s.env?.METRICS_PORT === "0"));
  const withMetrics = serviceSpecs({ ports: { "ppo-coordinator": 1, policy: 2, "reward-model": 3, "reference-model": 4, "pretrain-mix": 5 }, runsDir: "/r", tokenizer: "byte", metricsPort: 9500 });
  assert.deepEqual(
    SERVICE_NAMES.map((n) => withMetrics[n].env?.METRICS_PORT),
    ["9500", "9501", "9502", "9503", "9504"],
  );
  assert.equal(metricsPortOf({}), 0);
  assert.equal(metricsPortOf({ METRICS_PORT: "9500" }), 9500);
  assert.throws(() => metricsPortOf({ METRICS_PORT: "95x" }), /METRICS_PORT must be an integer in \[0, 65531\] \(the five services take it and the next four ports\), got "95x"$/);
  assert.throws(() => metricsPortOf({ METRICS_PORT: "65535" }), /METRICS_PORT must be an integer in \[0, 65531\]/);
});

test("the labeling service, sixth child for a run with rankings.source labeling: the coordinator's LABELING_ADDR, rlhf label serve with the session's token", () => {
  const ports = { "ppo-coordinator": 1, policy: 2, "reward-model": 3, "reference-model": 4, "pretrain-mix": 5 };
  assert.equal(serviceSpecs({ ports, runsDir: "/r", tokenizer: "byte" })["ppo-coordinator"].env?.LABELING_ADDR, undefined, "no labeling ports: the environment's LABELING_ADDR, if any");
  const wiring = { ports, runsDir: "/r", tokenizer: "byte", cliMain: "/cli/main.js", tokenFile: "/r/.t", labelingPorts: { grpc: 6, http: 7 } };
  const coordinator = serviceSpecs(wiring)["ppo-coordinator"].env ?? {};
  assert.equal(coordinator.LABELING_ADDR, "127.0.0.1:6");
  assert.equal(coordinator.LABELING_TOKEN_FILE, "", "the coordinator sends the session's token, which the labeling child accepts");
  const spec = labelingSpec(wiring);
  assert.deepEqual(spec.args, ["/cli/main.js", "label", "serve", "--port", "7", "--grpc-port", "6", "--data-dir", "/r/labeling", "--no-seed"]);
  assert.equal(spec.port, 6);
  assert.equal(spec.ready, "serving");
  assert.equal(spec.env?.RLHF_AUTH_TOKEN_FILE, "/r/.t");
  assert.equal(spec.env?.RLHF_TOKEN, "");
  assert.equal(ranksThroughLabeling(JSON.stringify({ rankings: { source: "labeling" } })), true);
  assert.equal(ranksThroughLabeling(JSON.stringify({ rankings: { source: "simulated" } })), false);
  assert.equal(ranksThroughLabeling("not json"), false);
});
