// The run store on real folders: runs found on disk at start, listing and pages, state rules of
// cancel and resume, and the replay of stored events. No model service is called here (the
// recipe itself runs in e2e/src/coordinator.test.ts against the real services).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ppoCoordinator } from "@rlhf/proto";
import { createLogger } from "@rlhf/grpc-kit";
import { resolveRunConfig } from "@rlhf/run-config";
import { DomainError } from "@rlhf/errors";
import { RunStore } from "./runs";
import type { Clients } from "./recipe/gateway";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "runs-test", level: "silent" });
const { RunState } = ppoCoordinator;
// Any call reaching a model service fails the test: nothing here should start a recipe.
const noClients = new Proxy({}, { get: () => assert.fail("no model service may be called") }) as unknown as Clients;
/** What a free model service answers to a run's RunLease (the run now holds it). */
const leased = () => Promise.resolve({ lease: { holder: "", heldMs: 0, idleMs: 0, ttlMs: 600_000 } });

function fabricate(dir: string, id: string, state: ppoCoordinator.RunState, createdMs: number, events = 0): void {
  const runDir = join(dir, id);
  mkdirSync(runDir, { recursive: true });
  const run = ppoCoordinator.Run.fromPartial({ id, state, runDir, createTime: new Date(createdMs), configJson: JSON.stringify(resolveRunConfig({})) });
  writeFileSync(join(runDir, "run.json"), JSON.stringify(ppoCoordinator.Run.toJSON(run)));
  const lines = Array.from({ length: events }, (_, i) =>
    JSON.stringify(ppoCoordinator.RunEvent.toJSON({ runId: id, sequence: i + 1, time: new Date(createdMs + i), payload: { $case: "metrics", metrics: { stage: ppoCoordinator.Stage.STAGE_PPO, step: i + 1, values: { "objective/kl": i } } } })),
  );
  writeFileSync(join(runDir, "events.jsonl"), lines.join("\n") + (lines.length ? "\n" : ""));
}

test("runs on disk: an interrupted run becomes FAILED (resumable), listing pages newest first", async () => {
  const dir = mkdtempSync(join(tmpdir(), "runs-"));
  fabricate(dir, "old-done", RunState.RUN_STATE_SUCCEEDED, 1000, 3);
  fabricate(dir, "mid-run", RunState.RUN_STATE_RUNNING, 3000, 2);
  fabricate(dir, "cancelled", RunState.RUN_STATE_CANCELLED, 2000);
  mkdirSync(join(dir, "not-a-run"));
  writeFileSync(join(dir, "stray.txt"), "x");
  const store = new RunStore(dir, noClients, log);
  await store.init();

  const mid = store.get("mid-run");
  assert.equal(mid.state, RunState.RUN_STATE_FAILED);
  assert.match(mid.errorMessage, /coordinator stopped while the run was in progress; ResumeRun continues it/);
  const onDisk = ppoCoordinator.Run.fromJSON(JSON.parse(readFileSync(join(dir, "mid-run", "run.json"), "utf8")));
  assert.equal(onDisk.state, RunState.RUN_STATE_FAILED, "the new state is saved");
  const events = readFileSync(join(dir, "mid-run", "events.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(events.at(-1).sequence, 3, "the state change continues the numbering");
  assert.equal(events.at(-1).stateChanged.toState, "RUN_STATE_FAILED");

  const page1 = store.list({ pageSize: 2, pageToken: "", states: [] });
  assert.deepEqual(page1.runs.map((r) => r.id), ["mid-run", "cancelled"]);
  const page2 = store.list({ pageSize: 2, pageToken: page1.nextPageToken, states: [] });
  assert.deepEqual(page2.runs.map((r) => r.id), ["old-done"]);
  assert.equal(page2.nextPageToken, "");
  assert.deepEqual(store.list({ pageSize: 0, pageToken: "", states: [RunState.RUN_STATE_SUCCEEDED] }).runs.map((r) => r.id), ["old-done"]);
  assert.throws(() => store.list({ pageSize: 2, pageToken: page1.nextPageToken, states: [RunState.RUN_STATE_FAILED] }), /page_token: not a token of this listing/);
  assert.throws(() => store.get("nope"), /run_id: no run "nope"/);
});

test("cancel and resume follow the run's state; watching a finished run replays after a sequence", async () => {
  const dir = mkdtempSync(join(tmpdir(), "runs-"));
  fabricate(dir, "done", RunState.RUN_STATE_SUCCEEDED, 1000, 5);
  fabricate(dir, "stopped", RunState.RUN_STATE_CANCELLED, 2000, 1);
  const store = new RunStore(dir, noClients, log);
  await store.init();
  await assert.rejects(store.cancel("done"), /run done is RUN_STATE_SUCCEEDED: nothing to cancel/);
  await assert.rejects(store.resume("done"), /only FAILED or CANCELLED runs resume/);
  assert.equal((await store.cancel("stopped")).state, RunState.RUN_STATE_CANCELLED, "cancelling a cancelled run changes nothing");
  const w = store.watch("done", 2, () => assert.fail("a finished run has no live events"));
  assert.equal(w.terminal, true);
  assert.deepEqual(w.replay.map((e) => e.sequence), [3, 4, 5]);
});

test("StartRun: bad configs are refused before anything is created; validate_only resolves presets", async () => {
  const dir = mkdtempSync(join(tmpdir(), "runs-"));
  const store = new RunStore(dir, noClients, log);
  await store.init();
  const req = (over: Partial<ppoCoordinator.StartRunRequest>): ppoCoordinator.StartRunRequest => ({ configJson: "{}", runId: "", displayName: "", validateOnly: false, ...over });
  await assert.rejects(store.start(req({ configJson: "[1" })), /config_json: not valid JSON/);
  await assert.rejects(store.start(req({ configJson: " " })), /config_json: is empty: send a run config \("\{\}" for every default/);
  await assert.rejects(store.start(req({ configJson: JSON.stringify({ ppo: { iterations: 0 } }) })), /ppo\.iterations/);
  await assert.rejects(store.start(req({ configJson: JSON.stringify({ preset: 3 }) })), /config_json\.preset: must be one of tiny, default, got 3/);
  await assert.rejects(store.start(req({ configJson: JSON.stringify({ data: { source: "files", files: { sft: "a", prompts: "/b", eval_prompts: "/c" } }, rankings: { source: "file" } }) })), /data\.files\.sft: must be an absolute path, got "a"/);
  await assert.rejects(store.start(req({ runId: "UPPER" })), /run_id: must be 1\.\.64 of \[a-z0-9-\]/);
  await assert.rejects(store.start(req({ displayName: "x".repeat(257) })), /display_name: exceeds 256 bytes/);
  const deep = "[".repeat(10_000) + "]".repeat(10_000);
  await assert.rejects(store.start(req({ configJson: `{"ppo": ${deep}}` })), (e: unknown) => e instanceof DomainError && e.code === "INVALID_ARGUMENT" && /config_json: is nested more than 32 levels deep/.test(e.message));
  const v = await store.start(req({ configJson: JSON.stringify({ preset: "tiny", ppo: { iterations: 9 } }), validateOnly: true }));
  const cfg = JSON.parse(v.configJson);
  assert.equal(cfg.ppo.iterations, 9, "the user's keys override the preset");
  assert.equal(cfg.model.n_embd, 32, "the rest comes from the tiny preset");
  assert.equal(store.list({ pageSize: 0, pageToken: "", states: [] }).runs.length, 0);
});

test("StartRun with users' data files: every file is read first; a bad line is INVALID_ARGUMENT naming key, file, line and field", async () => {
  const dir = mkdtempSync(join(tmpdir(), "runs-"));
  const store = new RunStore(join(dir, "runs"), noClients, log);
  await store.init();
  const examples = resolve(__dirname, "..", "..", "..", "examples", "user-data");
  const files = { sft: join(examples, "sft.jsonl"), rankings: join(examples, "rankings.jsonl"), prompts: join(examples, "prompts.jsonl"), eval_prompts: join(examples, "eval-prompts.jsonl"), pretrain: join(examples, "pretrain.txt") };
  const cfg = (f: Partial<typeof files>) => JSON.stringify({ preset: "tiny", data: { source: "files", files: { ...files, ...f }, pretrain_validation_fraction: 0.2 }, rankings: { source: "file" }, reward_model: { validation_fraction: 0.2 }, evaluation: { prompts: 12, samples_in_report: 4 } });
  const start = (configJson: string, validateOnly = false) => store.start({ configJson, runId: "mine", displayName: "", validateOnly });
  const v = await start(cfg({}), true);
  assert.equal(JSON.parse(v.configJson).data.files.sft, files.sft, "the resolved config records the absolute paths");
  const bad = join(dir, "sft.jsonl");
  writeFileSync(bad, '{"prompt":"Question: hi?\\nAnswer:","completion":" hello"}\n{"prompt":"Question: and?\\nAnswer:"}\n');
  for (const validateOnly of [true, false]) {
    await assert.rejects(start(cfg({ sft: bad }), validateOnly), (e: unknown) => {
      assert.ok(e instanceof DomainError && e.code === "INVALID_ARGUMENT", String(e));
      assert.equal(e.message, `data.files.sft: ${bad}:2: completion: missing field`);
      return true;
    });
  }
  await assert.rejects(start(cfg({ pretrain: join(dir, "missing.txt") })), /data\.files\.pretrain: .*missing\.txt: file: cannot read: ENOENT$/);
  assert.equal(store.list({ pageSize: 0, pageToken: "", states: [] }).runs.length, 0, "nothing was created");
  assert.equal(existsSync(join(dir, "runs", "mine")), false);
});

test("a coordinator killed while appending an event leaves a torn last line: the next one drops it and keeps the run", async () => {
  const dir = mkdtempSync(join(tmpdir(), "runs-"));
  fabricate(dir, "torn", RunState.RUN_STATE_RUNNING, 1000, 3);
  const events = join(dir, "torn", "events.jsonl");
  writeFileSync(events, readFileSync(events, "utf8") + '{"runId":"torn","sequence":4,"time":"2025-01-0');
  const store = new RunStore(dir, noClients, log);
  await store.init();
  const run = store.get("torn");
  assert.equal(run.state, RunState.RUN_STATE_FAILED, "found, and marked FAILED (resumable)");
  const lines = readFileSync(events, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((e) => e.sequence), [1, 2, 3, 4], "the torn event is gone; the state change takes its number");
  assert.equal(lines[3].stateChanged.toState, "RUN_STATE_FAILED");
});

test("one run at a time: while a run is RUNNING a second start or a resume is FAILED_PRECONDITION naming it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "runs-"));
  fabricate(dir, "stopped", RunState.RUN_STATE_CANCELLED, 2000, 1);
  // Model services that never answer (until the run is cancelled): the first run stays RUNNING.
  let calls = 0;
  const hang = (...args: unknown[]) => {
    if (args[0] === "runLease") return leased(); // the leases taken at StartRun
    calls++;
    const opts = args.find((a) => typeof a === "object" && a !== null && "signal" in a) as { signal?: AbortSignal } | undefined;
    return new Promise((_, reject) => opts?.signal?.addEventListener("abort", () => reject(opts.signal?.reason)));
  };
  const service = new Proxy({}, { get: () => hang });
  const clients = new Proxy({}, { get: () => service }) as unknown as Clients;
  const store = new RunStore(dir, clients, log);
  await store.init();
  const req = (runId: string): ppoCoordinator.StartRunRequest => ({ configJson: JSON.stringify({ preset: "tiny" }), runId, displayName: "", validateOnly: false });
  await store.start(req("first"));
  for (let i = 0; i < testDeadlineMs(60_000) / 10 && store.get("first").state !== RunState.RUN_STATE_RUNNING; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(store.get("first").state, RunState.RUN_STATE_RUNNING);
  const busy = (e: unknown) => e instanceof DomainError && e.code === "FAILED_PRECONDITION" && /run first is RUN_STATE_RUNNING on this coordinator.*one run at a time/.test(e.message);
  await assert.rejects(store.start(req("second")), busy);
  await assert.rejects(store.resume("stopped"), busy);
  assert.equal(existsSync(join(dir, "second")), false, "nothing was created for the refused run");
  // Starting the same run again is still idempotent.
  assert.equal((await store.start(req("first"))).id, "first");
  // Cancelled, it stops at its first call to a model service and the next run can start.
  for (let i = 0; i < testDeadlineMs(60_000) / 10 && calls === 0; i++) await new Promise((r) => setTimeout(r, 10));
  await store.cancel("first");
  for (let i = 0; i < testDeadlineMs(60_000) / 10 && store.get("first").state === RunState.RUN_STATE_RUNNING; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(store.get("first").state, RunState.RUN_STATE_CANCELLED);
  assert.equal((await store.start(req("second"))).id, "second");
  await store.cancel("second");
});

test("shutdown (stopAll) records the end of a run in progress: FAILED and resumable, its last event terminal, driver.json gone; a cancelled one stays CANCELLED", async () => {
  const dir = mkdtempSync(join(tmpdir(), "runs-"));
  // The run's first call (pretrain-mix's GetInfo) waits until the run's signal cancels it, as a call to a busy service would.
  const calls: string[] = [];
  const waiting = {
    unary: (method: string, _req: unknown, opts: { signal: AbortSignal }) => {
      if (method === "runLease") return leased(); // the leases taken at StartRun
      calls.push(method);
      return new Promise((_, reject) => opts.signal.addEventListener("abort", () => reject(opts.signal.reason), { once: true }));
    },
  };
  const clients = { policy: waiting, rewardModel: waiting, reference: waiting, pretrainMix: waiting } as unknown as Clients;
  const store = new RunStore(dir, clients, log);
  await store.init();
  const start = async (runId: string) => {
    await store.start({ configJson: '{"preset": "tiny"}', runId, displayName: "", validateOnly: false });
    // Only a hang ends this wait: the run starts its data worker first.
    for (const end = Date.now() + testDeadlineMs(60_000); calls.length === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
    assert.equal(store.get(runId).state, RunState.RUN_STATE_RUNNING);
    assert.ok(existsSync(join(dir, runId, "driver.json")), "driver.json marks the run as executed by this process");
  };
  const lastEvent = (runId: string) => JSON.parse(readFileSync(join(dir, runId, "events.jsonl"), "utf8").trim().split("\n").at(-1) as string);

  await start("stopped");
  await store.stopAll();
  const run = ppoCoordinator.Run.fromJSON(JSON.parse(readFileSync(join(dir, "stopped", "run.json"), "utf8")));
  assert.equal(run.state, RunState.RUN_STATE_FAILED);
  assert.match(run.errorMessage, /^STAGE_UNSPECIFIED: the coordinator stopped while the run was in progress; ResumeRun continues it/);
  assert.equal(lastEvent("stopped").stateChanged.toState, "RUN_STATE_FAILED");
  assert.equal(existsSync(join(dir, "stopped", "driver.json")), false);

  calls.length = 0;
  await start("cancelled-first");
  await store.cancel("cancelled-first");
  await store.stopAll();
  assert.equal(store.get("cancelled-first").state, RunState.RUN_STATE_CANCELLED);
  assert.equal(lastEvent("cancelled-first").stateChanged.toState, "RUN_STATE_CANCELLED");
});
