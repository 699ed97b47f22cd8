import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import { ppoCoordinator } from "@rlhf/proto";
import { EventPublisher, runEventKind, runEventMsgId, runSubject, startNatsServer, type NatsServer } from "@rlhf/events";
import { UsageError, parseArgs } from "../args";
import { cliEntryPoint } from "../run/session";
import { runWatch, watchOptions, type WatchOptions } from "./watch";
import { testDeadlineMs, waitUntil } from "@rlhf/errors/dist/testing/deadline";

const { RunState, Stage } = ppoCoordinator;
const tmp = mkdtempSync(join(tmpdir(), "rlhf-cli-watch-"));
const args = (...argv: string[]) => parseArgs(argv, new Set(["help", "tiny", "no-cache", "json"]));
let nats: NatsServer | undefined;
after(() => nats?.stop());

/** A run's events.jsonl lines: RUNNING, SFT in 4 steps, two PPO iterations with metrics, a checkpoint, then `end`. */
function runLines(runId: string, end: ppoCoordinator.RunState, from = 1): string[] {
  const payloads: ppoCoordinator.RunEvent["payload"][] = [
    { $case: "stateChanged", stateChanged: { fromState: RunState.RUN_STATE_PENDING, toState: RunState.RUN_STATE_RUNNING, stage: Stage.STAGE_UNSPECIFIED, errorMessage: "" } },
    ...[0, 2, 4].map((step) => ({ $case: "stageProgress" as const, stageProgress: { stage: Stage.STAGE_SFT, step, totalSteps: 4, unit: "optimizer_steps", etaMs: 0, elapsedMs: step * 1000 } })),
    { $case: "stageProgress", stageProgress: { stage: Stage.STAGE_PPO, step: 0, totalSteps: 2, unit: "iterations", etaMs: 0, elapsedMs: 0 } },
    { $case: "metrics", metrics: { stage: Stage.STAGE_PPO, step: 1, values: { "objective/reward": 0.25, "objective/kl": 0.5 } } },
    { $case: "stageProgress", stageProgress: { stage: Stage.STAGE_PPO, step: 1, totalSteps: 2, unit: "iterations", etaMs: 1000, elapsedMs: 1000 } },
    { $case: "checkpointWritten", checkpointWritten: { dir: `/runs/${runId}/checkpoints/ppo-000001`, stage: Stage.STAGE_PPO, iteration: 1, weights: [], bytes: 2048 } },
    { $case: "metrics", metrics: { stage: Stage.STAGE_PPO, step: 2, values: { "objective/reward": 0.75, "objective/kl": 1.5 } } },
    { $case: "stageProgress", stageProgress: { stage: Stage.STAGE_PPO, step: 2, totalSteps: 2, unit: "iterations", etaMs: 0, elapsedMs: 2000 } },
    { $case: "stateChanged", stateChanged: { fromState: RunState.RUN_STATE_RUNNING, toState: end, stage: Stage.STAGE_PPO, errorMessage: end === RunState.RUN_STATE_FAILED ? "STAGE_PPO: policy.ppoUpdate: 14 UNAVAILABLE" : "" } },
  ];
  return payloads.map((payload, i) => JSON.stringify(ppoCoordinator.RunEvent.toJSON({ runId, sequence: from + i, time: new Date(Date.UTC(2025, 0, 1, 0, 0, from + i)), payload })));
}

function runFolder(runsDir: string, runId: string, lines: string[]): string {
  const dir = join(runsDir, runId);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "run.json"), "{}");
  writeFileSync(join(dir, "events.jsonl"), lines.map((l) => l + "\n").join(""));
  return dir;
}

/** Collects what the command writes. */
function sink(): { out: Writable; text: () => string } {
  let s = "";
  const out = new Writable({
    write(chunk, _enc, cb) {
      s += chunk;
      cb();
    },
  });
  return { out, text: () => s };
}

const folder = (runsDir: string, runId: string, json = false): WatchOptions => ({ runId, source: { kind: "folder", runsDir }, json });

test("arguments: the source is --nats, else NATS_URL, else --runs-dir (default ./runs); mistakes are UsageErrors", () => {
  assert.deepEqual(watchOptions(args("watch", "r-1"), {}), folder(resolve("runs"), "r-1"));
  assert.deepEqual(watchOptions(args("watch", "r-1", "--json", "--runs-dir", tmp), {}), folder(tmp, "r-1", true));
  assert.deepEqual(watchOptions(args("watch", "r-1"), { NATS_URL: "nats://n:4222" }), { runId: "r-1", source: { kind: "nats", servers: ["nats://n:4222"] }, json: false });
  assert.deepEqual(watchOptions(args("watch", "r-1", "--runs-dir", tmp), { NATS_URL: "nats://n:4222" }).source, { kind: "folder", runsDir: tmp }, "--runs-dir wins over NATS_URL");
  assert.deepEqual(watchOptions(args("watch", "r-1", "--nats", "a:1,b:2"), {}).source, { kind: "nats", servers: ["a:1", "b:2"] });
  const bad = (argv: string[], message: RegExp, env: Record<string, string> = {}) =>
    assert.throws(
      () => watchOptions(args(...argv), env),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
      argv.join(" "),
    );
  bad(["watch"], /^which run\?\nrlhf watch <run-id>/);
  bad(["watch", "Run_1"], /^the run id must be 1-64 characters of a-z, 0-9 and -, got "Run_1"$/);
  bad(["watch", "r", "s"], /^rlhf watch: unexpected argument "s"$/);
  bad(["watch", "r", "--nats", "x:1", "--runs-dir", tmp], /^give --nats or --runs-dir, not both$/);
  bad(["watch", "r", "--nats", "http://x"], /^--nats must be nats:\/\/host:port \(comma-separated for several servers\), got "http:\/\/x"$/);
  bad(["watch", "r"], /^NATS_URL must be nats:\/\/host:port/, { NATS_URL: "nats://x:port" });
  bad(["watch", "r", "--follow"], /^rlhf watch: unknown option --follow \(known: --nats, --runs-dir, --json\)$/);
  writeFileSync(join(tmp, "a-file"), "x");
  bad(["watch", "r", "--runs-dir", join(tmp, "a-file")], /is not a folder$/);
});

test("arguments: a run folder (a path) instead of a run id is read from its parent, also with NATS_URL set", () => {
  assert.deepEqual(watchOptions(args("watch", "runs/r-1"), {}), folder(resolve("runs"), "r-1"));
  assert.deepEqual(watchOptions(args("watch", join(tmp, "x", "r-2") + "/", "--json"), { NATS_URL: "nats://n:4222" }), folder(join(tmp, "x"), "r-2", true));
  assert.throws(() => watchOptions(args("watch", "runs/r-1", "--nats", "n:4222"), {}), (e: unknown) => e instanceof UsageError && e.message === "runs/r-1 is a run folder: --nats goes with a run id");
  assert.throws(() => watchOptions(args("watch", "runs/r-1", "--runs-dir", tmp), {}), (e: unknown) => e instanceof UsageError && e.message === "runs/r-1 is a run folder: --runs-dir goes with a run id");
  assert.throws(() => watchOptions(args("watch", "data/My_Run"), {}), (e: unknown) => e instanceof UsageError && e.message === 'data/My_Run is not a run folder: its name "My_Run" is not a run id (a-z, 0-9 and -)');
});

test("the built CLI: watch --help, a bad argument exits 2, an unknown run exits 1 naming it", () => {
  const rlhf = (...argv: string[]) => spawnSync(process.execPath, [cliEntryPoint(), ...argv], { encoding: "utf8", timeout: testDeadlineMs(30_000), env: { ...process.env, NATS_URL: "" } });
  const help = rlhf("watch", "--help");
  assert.equal(help.status, 0);
  assert.ok(help.stdout.startsWith("rlhf watch <run-id> [--nats URL | --runs-dir DIR] [--json]\nrlhf watch <run-folder> [--json]"), help.stdout);
  assert.match(rlhf("help").stdout, /\n {2}watch <run-id> {4}follow a run live/);
  const usage = rlhf("watch", "Bad_Id");
  assert.equal(usage.status, 2);
  assert.equal(usage.stderr, 'rlhf: the run id must be 1-64 characters of a-z, 0-9 and -, got "Bad_Id"\n');
  const unknown = rlhf("watch", "no-such-run", "--runs-dir", tmp);
  assert.equal(unknown.status, 1);
  assert.equal(unknown.stderr, `rlhf: no run "no-such-run" in ${tmp} (no folder ${join(tmp, "no-such-run")})\n`);
});

test("run folder: a finished run is replayed with its progress and metrics; exit 0, or 1 when it FAILED", async () => {
  const runs = join(tmp, "replay");
  runFolder(runs, "done-1", runLines("done-1", RunState.RUN_STATE_SUCCEEDED));
  const s = sink();
  assert.equal(await runWatch(folder(runs, "done-1"), { out: s.out }), 0);
  const text = s.text();
  assert.match(text, /^watching run done-1 from .*done-1\/events\.jsonl\n/);
  assert.match(text, /SFT {10}✓ done in 4s \(4 optimizer steps\)/);
  assert.match(text, /PPO started \(2 iterations\)/);
  assert.match(text, /\nPPO iteration 1\/2 {2}reward 0\.25 {2}kl 0\.5\n/);
  assert.match(text, /\nPPO iteration 2\/2 {2}reward 0\.75 {2}kl 1\.5\n/);
  assert.match(text, /checkpoint \/runs\/done-1\/checkpoints\/ppo-000001 \(2\.0 KiB, PPO iteration 1\)/);
  assert.match(text, /PPO {10}✓ done in 2s \(2 iterations\)/);
  assert.match(text, /run done-1 SUCCEEDED\n/);

  runFolder(runs, "failed-1", runLines("failed-1", RunState.RUN_STATE_FAILED));
  const f = sink();
  assert.equal(await runWatch(folder(runs, "failed-1"), { out: f.out }), 1);
  assert.match(f.text(), /run failed-1 FAILED in PPO: STAGE_PPO: policy\.ppoUpdate: 14 UNAVAILABLE/);

  // FAILED, then resumed to SUCCEEDED: the replay goes on past the first end.
  const first = runLines("again", RunState.RUN_STATE_FAILED);
  runFolder(runs, "again", [...first, ...runLines("again", RunState.RUN_STATE_SUCCEEDED, first.length + 1)]);
  const r = sink();
  assert.equal(await runWatch(folder(runs, "again"), { out: r.out }), 0);
  assert.match(r.text(), /run again SUCCEEDED\n/);

  // --json: the lines of events.jsonl, as they are.
  const j = sink();
  assert.equal(await runWatch(folder(runs, "done-1", true), { out: j.out }), 0);
  assert.equal(j.text(), runLines("done-1", RunState.RUN_STATE_SUCCEEDED).join("\n") + "\n");
});

/** events.jsonl lines of `payloads`, one second apart. */
function eventLines(runId: string, payloads: ppoCoordinator.RunEvent["payload"][]): string[] {
  return payloads.map((payload, i) => JSON.stringify(ppoCoordinator.RunEvent.toJSON({ runId, sequence: i + 1, time: new Date(Date.UTC(2025, 0, 1, 0, 0, i)), payload })));
}

test("run folder: PPO-ptx and plain PPO are counted apart (the folder's config.json says how many each); plain PPO shows no ptx loss", async () => {
  const runs = join(tmp, "variants");
  const ppo = (step: number, elapsedMs = step * 1000) => ({ $case: "stageProgress" as const, stageProgress: { stage: Stage.STAGE_PPO, step, totalSteps: 4, unit: "iterations", etaMs: 0, elapsedMs } });
  const m = (step: number, ptx: boolean) => ({
    $case: "metrics" as const,
    metrics: { stage: Stage.STAGE_PPO, step, values: { "objective/reward": step / 4, "objective/kl": 0.5, ...(ptx ? { "ptx/loss": 3 } : {}), "run/variant_ptx": ptx ? 1 : 0 } },
  });
  const lines = eventLines("two-1", [
    { $case: "stateChanged", stateChanged: { fromState: RunState.RUN_STATE_PENDING, toState: RunState.RUN_STATE_RUNNING, stage: Stage.STAGE_UNSPECIFIED, errorMessage: "" } },
    ppo(0),
    m(1, true),
    ppo(1),
    m(2, true),
    ppo(2),
    ppo(2),
    m(3, false),
    ppo(3),
    m(4, false),
    ppo(4),
    ppo(4, 5_200),
    { $case: "stateChanged", stateChanged: { fromState: RunState.RUN_STATE_RUNNING, toState: RunState.RUN_STATE_SUCCEEDED, stage: Stage.STAGE_PPO, errorMessage: "" } },
  ]);
  const dir = runFolder(runs, "two-1", lines);
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ppo: { iterations: 2, compare_without_ptx: true } }));
  const s = sink();
  assert.equal(await runWatch(folder(runs, "two-1"), { out: s.out }), 0);
  const iterations = s.text().split("\n").filter((l) => l.startsWith("PPO iteration "));
  assert.deepEqual(iterations, [
    "PPO iteration 1/2  PPO-ptx  reward 0.25  kl 0.5  ptx loss 3",
    "PPO iteration 2/2  PPO-ptx  reward 0.5  kl 0.5  ptx loss 3",
    "PPO iteration 1/2  plain PPO  reward 0.75  kl 0.5",
    "PPO iteration 2/2  plain PPO  reward 1  kl 0.5",
  ]);
  // The closing event's time (the stage's in report.json), not the last step's.
  assert.match(s.text(), /\nPPO {10}✓ done in 5s \(4 iterations\)\n/);
});

test("run folder on a terminal: while no event comes the stage's clock goes on; the redraw stops with the run", async () => {
  const runs = join(tmp, "clock");
  const lines = runLines("clock-1", RunState.RUN_STATE_SUCCEEDED);
  const dir = runFolder(runs, "clock-1", lines.slice(0, 2)); // RUNNING, SFT step 0
  const s = sink();
  const out = Object.assign(s.out, { isTTY: true, columns: 200 });
  const watching = runWatch(folder(runs, "clock-1"), { out, pollMs: 20, tickMs: 50 });
  // No event after SFT's first: the line is redrawn with a later elapsed time all the same.
  const deadline = Date.now() + testDeadlineMs(30_000);
  while (!/SFT {10}\[-+\] {3}0% {2}step 0\/4 {2}elapsed [1-9]\d*s\n/.test(s.text())) {
    assert.ok(Date.now() < deadline, `no clock redraw in: ${JSON.stringify(s.text())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  appendFileSync(join(dir, "events.jsonl"), lines.slice(2).join("\n") + "\n");
  assert.equal(await watching, 0);
  const end = s.text().length;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.text().length, end, "nothing written after the command returned");
});

test("the built CLI: watch <run folder> replays a finished run and exits (no timer left running)", () => {
  const runs = join(tmp, "built");
  const dir = runFolder(runs, "built-1", runLines("built-1", RunState.RUN_STATE_SUCCEEDED));
  const r = spawnSync(process.execPath, [cliEntryPoint(), "watch", dir], { encoding: "utf8", timeout: testDeadlineMs(30_000), env: { ...process.env, NATS_URL: "nats://127.0.0.1:1" } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /run built-1 SUCCEEDED\n/);
});

test("run folder: a live run is followed as events.jsonl grows (a half-written line waits); Ctrl-C stops with 130", async () => {
  const runs = join(tmp, "live");
  const lines = runLines("live-1", RunState.RUN_STATE_SUCCEEDED);
  const dir = runFolder(runs, "live-1", lines.slice(0, 4));
  const s = sink();
  let finished = false;
  const watching = runWatch(folder(runs, "live-1", true), { out: s.out, pollMs: 20 }).then((code) => {
    finished = true;
    return code;
  });
  await waitUntil(() => s.text() === lines.slice(0, 4).join("\n") + "\n", `the first 4 lines, not ${JSON.stringify(s.text())}`);
  assert.equal(finished, false);
  const rest = lines.slice(4).join("\n") + "\n";
  appendFileSync(join(dir, "events.jsonl"), rest.slice(0, 100)); // cut inside a line
  await new Promise((r) => setTimeout(r, 100));
  appendFileSync(join(dir, "events.jsonl"), rest.slice(100));
  assert.equal(await watching, 0);
  assert.equal(s.text(), lines.join("\n") + "\n");

  runFolder(runs, "stuck", lines.slice(0, 3));
  const abort = new AbortController();
  const w = sink();
  setTimeout(() => abort.abort(), 150);
  assert.equal(await runWatch(folder(runs, "stuck"), { out: w.out, pollMs: 20, signal: abort.signal }), 130);
  assert.match(w.text(), /stopped watching run stuck after 3 events\n$/);
});

test("NATS: a late watcher replays the run from its first event (weights events in --json); a live one follows it; unknown runs are named", async () => {
  nats = await startNatsServer();
  const pub = new EventPublisher({ servers: [nats.url] });
  const send = (runId: string, lines: string[]) => {
    for (const l of lines) {
      const json = JSON.parse(l);
      pub.publish(runSubject(runId, runEventKind(json)!), Buffer.from(l), runEventMsgId(runId, json.sequence));
    }
  };
  const lines = runLines("n-1", RunState.RUN_STATE_SUCCEEDED);
  const weights = JSON.stringify({ runId: "n-1", time: "2025-01-01T00:00:06Z", weights: { modelId: "policy", version: 3, source: "random:0", reason: "ppo_update" } });
  send("n-1", lines.slice(0, 6));
  pub.publish(runSubject("n-1", "weights"), Buffer.from(weights));
  send("n-1", lines.slice(6));
  assert.equal(await pub.flush(testDeadlineMs(10_000)), true);
  const viaNats = (runId: string, json: boolean): WatchOptions => ({ runId, source: { kind: "nats", servers: [nats!.url] }, json });

  const j = sink();
  assert.equal(await runWatch(viaNats("n-1", true), { out: j.out }), 0);
  assert.equal(j.text(), [...lines.slice(0, 6), weights, ...lines.slice(6)].join("\n") + "\n");
  const h = sink();
  assert.equal(await runWatch(viaNats("n-1", false), { out: h.out }), 0);
  const fromFolder = sink();
  runFolder(join(tmp, "same"), "n-1", lines);
  await runWatch(folder(join(tmp, "same"), "n-1"), { out: fromFolder.out });
  // The same display as from the run folder, up to the end line (the folder adds its paths).
  const body = (t: string) => t.slice(t.indexOf("\n") + 1, t.indexOf("SUCCEEDED\n"));
  assert.match(h.text(), /PPO iteration 2\/2 {2}reward 0\.75 {2}kl 1\.5\n/);
  assert.equal(body(h.text()), body(fromFolder.text()), "the same display as from the run folder");

  // Live: half the run is out when the watcher starts.
  const live = runLines("n-2", RunState.RUN_STATE_CANCELLED);
  send("n-2", live.slice(0, 5));
  assert.equal(await pub.flush(testDeadlineMs(10_000)), true);
  const l = sink();
  const watching = runWatch(viaNats("n-2", true), { out: l.out });
  await new Promise((r) => setTimeout(r, 300));
  send("n-2", live.slice(5));
  assert.equal(await watching, 1, "CANCELLED exits 1");
  assert.equal(l.text(), live.join("\n") + "\n");
  await pub.close();

  await assert.rejects(runWatch(viaNats("n-3", false), { out: sink().out }), /^Error: no events of run "n-3" in NATS stream RLHF_RUNS at nats:\/\/127\.0\.0\.1:\d+$/);
});

test("run folder whose coordinator was killed: driver.json names a process of this machine that is gone, so watch reads what is there and ends with 1, saying it is resumable", async () => {
  const runs = join(tmp, "orphan");
  const lines = runLines("orphan-1", RunState.RUN_STATE_SUCCEEDED).slice(0, 6);
  const dir = runFolder(runs, "orphan-1", lines);
  // A process that has exited: its pid names no process any more.
  const dead = spawnSync(process.execPath, ["-e", ""]).pid as number;
  writeFileSync(join(dir, "driver.json"), JSON.stringify({ pid: dead, host: hostname(), since: new Date().toISOString() }));
  const s = sink();
  assert.equal(await runWatch(folder(runs, "orphan-1"), { out: s.out, pollMs: 20 }), 1);
  assert.match(s.text(), new RegExp(`run orphan-1 did not end: the coordinator running it \\(process ${dead} on this machine\\) has stopped without recording its end; it is resumable: .* resume ${dir}`));
  const j = sink();
  assert.equal(await runWatch(folder(runs, "orphan-1", true), { out: j.out, pollMs: 20 }), 1);
  assert.deepEqual(j.text().trim().split("\n").slice(0, -1), lines, "every event is read before it stops");
  assert.deepEqual(JSON.parse(j.text().trim().split("\n").at(-1) as string).orphaned, { pid: dead });

  // A coordinator that still runs (this process), or one of another machine: followed until Ctrl-C.
  for (const [name, mark] of [
    ["alive", { pid: process.pid, host: hostname() }],
    ["elsewhere", { pid: dead, host: `not-${hostname()}` }],
  ] as const) {
    writeFileSync(join(runFolder(runs, name, lines), "driver.json"), JSON.stringify(mark));
    const abort = new AbortController();
    const w = sink();
    setTimeout(() => abort.abort(), 300);
    assert.equal(await runWatch(folder(runs, name), { out: w.out, pollMs: 20, signal: abort.signal }), 130, name);
  }
});
