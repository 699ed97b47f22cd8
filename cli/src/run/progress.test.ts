import { test } from "node:test";
import assert from "node:assert/strict";
import { ppoCoordinator } from "@rlhf/proto";
import { ProgressRenderer, acceptanceLines, formatDuration, formatMetric } from "./progress";

const { Stage, RunState } = ppoCoordinator;
type Payload = NonNullable<ppoCoordinator.RunEvent["payload"]>;

let seq = 0;
const ev = (payload: Payload): ppoCoordinator.RunEvent => ({ runId: "r1", sequence: ++seq, time: undefined, payload });
const progress = (stage: ppoCoordinator.Stage, step: number, totalSteps: number, unit: string, etaMs: number, elapsedMs: number) =>
  ev({ $case: "stageProgress", stageProgress: { stage, step, totalSteps, unit, etaMs, elapsedMs } });
const changed = (fromState: ppoCoordinator.RunState, toState: ppoCoordinator.RunState, stage: ppoCoordinator.Stage, errorMessage = "") =>
  ev({ $case: "stateChanged", stateChanged: { fromState, toState, stage, errorMessage } });
const metrics = (stage: ppoCoordinator.Stage, step: number, values: Record<string, number>) => ev({ $case: "metrics", metrics: { stage, step, values } });
const checkpoint = (dir: string, stage: ppoCoordinator.Stage, iteration: number, bytes: number) =>
  ev({ $case: "checkpointWritten", checkpointWritten: { dir, stage, iteration, bytes, weights: [] } });

/** Feeds [time, event] pairs and returns the output of each push, split into lines (without the final newline). */
function feed(r: ProgressRenderer, steps: [number, ppoCoordinator.RunEvent][]): string[][] {
  return steps.map(([t, e]) => {
    const s = r.push(e, t);
    return s === "" ? [] : s.replace(/\n$/, "").split("\n");
  });
}

test("durations read like 45s, 1m12s and 1h02m; metrics with three significant digits", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(499), "0s");
  assert.equal(formatDuration(999), "1s");
  assert.equal(formatDuration(45_000), "45s");
  assert.equal(formatDuration(59_600), "1m00s");
  assert.equal(formatDuration(72_000), "1m12s");
  assert.equal(formatDuration(3_599_000), "59m59s");
  assert.equal(formatDuration(3_600_000), "1h00m");
  assert.equal(formatDuration(3_725_000), "1h02m");
  assert.equal(formatDuration(26 * 3_600_000), "26h00m");
  assert.equal(formatDuration(-1), "?");
  assert.equal(formatDuration(Number.NaN), "?");
  assert.equal(formatMetric(0.41234), "0.412");
  assert.equal(formatMetric(0.02), "0.02");
  assert.equal(formatMetric(-3.2109), "-3.21");
  assert.equal(formatMetric(0), "0");
  assert.equal(formatMetric(0.0000123), "1.23e-5");
  assert.equal(formatMetric(1234.5), "1230");
});

test("a stage line: bar, percent, step of total, ETA; unknown totals and ETAs", () => {
  const r = new ProgressRenderer({ tty: false });
  const line = (stage: ppoCoordinator.Stage, step: number, total: number, unit: string, eta: number, elapsed: number) =>
    r.stageLine({ stage, step, totalSteps: total, unit, etaMs: eta, elapsedMs: elapsed, status: "running" });
  assert.equal(line(Stage.STAGE_SFT, 90, 200, "optimizer_steps", 72_000, 60_000), "SFT          [#########-----------]  45%  step 90/200  ETA 1m12s");
  assert.equal(line(Stage.STAGE_REWARD_MODEL, 0, 12, "optimizer_steps", 0, 0), "Reward model [--------------------]   0%  step 0/12  elapsed 0s");
  assert.equal(line(Stage.STAGE_PPO, 15, 15, "iterations", 0, 0), "PPO          [####################] 100%  iteration 15/15  elapsed 0s");
  // total_steps 0: unknown; no ETA either, so the time spent shows instead
  assert.equal(line(Stage.STAGE_RANKINGS, 48, 0, "prompts", 0, 30_000), "Rankings     [????????????????????]    ?  prompt 48  elapsed 30s");
  // an ETA is shown when the coordinator gives one, even without a total
  assert.equal(line(Stage.STAGE_EVALUATION, 1, 0, "models", 5_000, 1_000), "Evaluation   [????????????????????]    ?  model 1  ETA 5s");
  // a unit the renderer does not know is shown as sent
  assert.equal(line(Stage.STAGE_PRETRAIN, 3, 4, "batches", 1_000, 1_000), "Pretrain     [###############-----]  75%  batch 3/4  ETA 1s");
});

test("plain mode: one line per stage change, throttled progress lines, PPO metrics, a failure", () => {
  seq = 0;
  const r = new ProgressRenderer({ tty: false, plainProgressIntervalMs: 5000 });
  const out = feed(r, [
    [0, changed(RunState.RUN_STATE_PENDING, RunState.RUN_STATE_RUNNING, Stage.STAGE_UNSPECIFIED)],
    [0, progress(Stage.STAGE_PRETRAIN, 0, 60, "optimizer_steps", 0, 0)],
    [1_000, progress(Stage.STAGE_PRETRAIN, 30, 60, "optimizer_steps", 6_000, 6_000)], // within 5 s of the start line: held back
    [6_000, progress(Stage.STAGE_PRETRAIN, 40, 60, "optimizer_steps", 4_000, 8_000)],
    [7_000, progress(Stage.STAGE_PRETRAIN, 60, 60, "optimizer_steps", 0, 12_000)], // the last step: the stage still saves its model
    // the closing event, as the stage ends: its time is the stage's in report.json, not the last step's
    [7_500, progress(Stage.STAGE_PRETRAIN, 60, 60, "optimizer_steps", 0, 14_400)],
    [7_500, progress(Stage.STAGE_SFT, 0, 16, "optimizer_steps", 0, 0)],
    [8_000, metrics(Stage.STAGE_SFT, 1, { "loss/lm": 2.5 })],
    [9_000, progress(Stage.STAGE_SFT, 16, 16, "optimizer_steps", 0, 83_000)],
    // no closing event (an older coordinator's events): the next stage closes it, with its last step's time
    [9_000, progress(Stage.STAGE_RANKINGS, 0, 0, "prompts", 0, 0)],
    [20_000, progress(Stage.STAGE_RANKINGS, 48, 0, "prompts", 0, 30_000)],
    // a new stage closes one that never reported its last step
    [21_000, progress(Stage.STAGE_REWARD_MODEL, 0, 12, "optimizer_steps", 0, 0)],
    [22_000, progress(Stage.STAGE_REWARD_MODEL, 12, 12, "optimizer_steps", 0, 65_000)],
    [22_000, checkpoint("/runs/r1/checkpoints/reward-model", Stage.STAGE_REWARD_MODEL, 0, 1.5 * 1024 * 1024)],
    [22_500, progress(Stage.STAGE_REWARD_MODEL, 12, 12, "optimizer_steps", 0, 66_000)],
    [23_000, progress(Stage.STAGE_PPO, 0, 6, "iterations", 0, 0)],
    [39_000, metrics(Stage.STAGE_PPO, 1, { "objective/reward": 0.41234, "objective/kl": 0.0312, "objective/beta": 0.02, "ptx/loss": 3.2109, "loss/policy": -0.1, "run/variant_ptx": 1 })],
    [40_000, progress(Stage.STAGE_PPO, 1, 6, "iterations", 50_000, 10_000)], // metrics wait for the progress that follows them
    [41_000, progress(Stage.STAGE_PPO, 2, 6, "iterations", 40_000, 20_000)],
    [42_000, changed(RunState.RUN_STATE_RUNNING, RunState.RUN_STATE_FAILED, Stage.STAGE_PPO, "policy: PpoUpdate: INTERNAL: out of memory")],
  ]);
  assert.deepEqual(out, [
    ["run r1 RUNNING"],
    ["Pretrain started (60 optimizer steps)"],
    [],
    ["Pretrain     [#############-------]  66%  step 40/60  ETA 4s"],
    [],
    ["Pretrain     ✓ done in 14s (60 optimizer steps)"],
    ["SFT started (16 optimizer steps)"],
    [],
    [],
    ["SFT          ✓ done in 1m23s (16 optimizer steps)", "Rankings started"],
    ["Rankings     [????????????????????]    ?  prompt 48  elapsed 30s"],
    ["Rankings     ✓ done in 30s (48 prompts)", "Reward model started (12 optimizer steps)"],
    [],
    ["checkpoint /runs/r1/checkpoints/reward-model (1.5 MiB, Reward model)"],
    ["Reward model ✓ done in 1m06s (12 optimizer steps)"],
    ["PPO started (6 iterations)"],
    [],
    ["PPO          [###-----------------]  16%  iteration 1/6  ETA 50s", "             PPO-ptx  reward 0.412  kl 0.0312  beta 0.02  ptx loss 3.21"],
    [],
    // the outcome is the summary's; the stage line says where it stopped
    ["PPO          ✗ failed at iteration 2/6 after 20s"],
  ]);
  assert.equal(r.state, RunState.RUN_STATE_FAILED);
  assert.equal(r.errorMessage, "policy: PpoUpdate: INTERNAL: out of memory");
  assert.deepEqual(
    r.stageViews.map((s) => r.stageLine(s)),
    [
      "Pretrain     ✓ done in 14s (60 optimizer steps)",
      "SFT          ✓ done in 1m23s (16 optimizer steps)",
      "Rankings     ✓ done in 30s (48 prompts)",
      "Reward model ✓ done in 1m06s (12 optimizer steps)",
      "PPO          ✗ failed at iteration 2/6 after 20s",
    ],
  );
  // nothing held back after the failure; a failed run names no report
  assert.equal(r.tick(100_000), "");
  assert.equal(r.summary({ runId: "r1", runDir: "/runs/r1" }, 100_000), "run r1 FAILED in PPO: policy: PpoUpdate: INTERNAL: out of memory\nrun folder:  /runs/r1\n");
});

test("plain mode: tick prints held-back progress once it is due, and only once", () => {
  seq = 0;
  const r = new ProgressRenderer({ tty: false, plainProgressIntervalMs: 5000 });
  assert.equal(r.push(progress(Stage.STAGE_SFT, 0, 200, "optimizer_steps", 0, 0), 0), "SFT started (200 optimizer steps)\n");
  assert.equal(r.push(progress(Stage.STAGE_SFT, 90, 200, "optimizer_steps", 72_000, 60_000), 1_000), "");
  assert.equal(r.tick(4_999), "");
  // the ETA counts down from the event's (72 s at 1 s)
  assert.equal(r.tick(5_000), "SFT          [#########-----------]  45%  step 90/200  ETA 1m08s\n");
  assert.equal(r.tick(20_000), "");
});

test("TTY mode: redraws the block in place, throttled, messages above it, summary with report and acceptance lines", () => {
  seq = 0;
  const up = (n: number) => `\r\x1b[${n}A\x1b[J`;
  const r = new ProgressRenderer({ tty: true, ttyRedrawIntervalMs: 100, columns: 200 });
  assert.equal(r.push(progress(Stage.STAGE_SFT, 0, 200, "optimizer_steps", 0, 0), 0), "SFT          [--------------------]   0%  step 0/200  elapsed 0s\n");
  assert.equal(r.push(progress(Stage.STAGE_SFT, 90, 200, "optimizer_steps", 72_000, 60_000), 50), "", "within 100 ms of the last redraw");
  assert.equal(r.tick(99), "");
  assert.equal(r.tick(200), up(1) + "SFT          [#########-----------]  45%  step 90/200  ETA 1m12s\n");
  assert.equal(r.tick(400), "", "nothing new");
  // the last step; then the closing event redraws at once (the line changes shape), however recent the last redraw
  assert.equal(r.push(progress(Stage.STAGE_SFT, 200, 200, "optimizer_steps", 0, 122_000), 240), "");
  assert.equal(r.push(progress(Stage.STAGE_SFT, 200, 200, "optimizer_steps", 0, 123_000), 250), up(1) + "SFT          ✓ done in 2m03s (200 optimizer steps)\n");
  assert.equal(
    r.push(progress(Stage.STAGE_PPO, 0, 10, "iterations", 0, 0), 260),
    up(1) + "SFT          ✓ done in 2m03s (200 optimizer steps)\nPPO          [--------------------]   0%  iteration 0/10  elapsed 0s\n",
  );
  assert.equal(r.push(metrics(Stage.STAGE_PPO, 1, { "objective/reward": 1.5, "objective/kl": 0.25, "objective/kl_coef": 0.1, "run/variant_ptx": 1 }), 300), "");
  const block3 = "SFT          ✓ done in 2m03s (200 optimizer steps)\nPPO          [--------------------]   0%  iteration 0/10  elapsed 0s\n             PPO-ptx  reward 1.5  kl 0.25  beta 0.1\n";
  assert.equal(r.tick(400), up(2) + block3);
  // a checkpoint line scrolls above the block
  assert.equal(r.push(checkpoint("/runs/r1/ckpt-3", Stage.STAGE_PPO, 3, 2048), 410), up(3) + "checkpoint /runs/r1/ckpt-3 (2.0 KiB, PPO iteration 3)\n" + block3);
  assert.equal(r.note("Ctrl-C: cancelling", 420), up(3) + "Ctrl-C: cancelling\n" + block3);
  r.push(metrics(Stage.STAGE_EVALUATION, 0, { "eval/ppo_ptx/win_rate_vs_sft": 0.61, "acceptance/ppo_ptx_beats_sft": 1, "acceptance/rm_heldout_accuracy": 0.68 }), 500);
  // SUCCEEDED closes the stages still running; the summary draws the block a last time, then the outcome
  const end = r.push(changed(RunState.RUN_STATE_RUNNING, RunState.RUN_STATE_SUCCEEDED, Stage.STAGE_EVALUATION), 600);
  assert.equal(end, up(3) + "SFT          ✓ done in 2m03s (200 optimizer steps)\nPPO          ✓ done in 0s (10 iterations)\n             PPO-ptx  reward 1.5  kl 0.25  beta 0.1\n");
  assert.equal(
    r.summary({ runId: "r1", runDir: "/runs/r1" }, 700),
    [
      "run r1 SUCCEEDED",
      "run folder:  /runs/r1",
      "report:      /runs/r1/report.html",
      "             /runs/r1/report.json",
      "acceptance:",
      "  ppo_ptx_beats_sft  1",
      "  rm_heldout_accuracy  0.68",
      "",
    ].join("\n"),
  );
});

test("TTY mode cuts block lines to the terminal width so that redraws move up the right number of lines", () => {
  seq = 0;
  const r = new ProgressRenderer({ tty: true, columns: 30 });
  const out = r.push(progress(Stage.STAGE_SFT, 90, 200, "optimizer_steps", 72_000, 60_000), 0);
  assert.equal(out, "SFT          [#########------\n");
});

test("a resumed run's history is replayed silently, then drawn once; without acceptance metrics the summary has none", () => {
  seq = 0;
  const r = new ProgressRenderer({ tty: false });
  for (const e of [
    changed(RunState.RUN_STATE_PENDING, RunState.RUN_STATE_RUNNING, Stage.STAGE_UNSPECIFIED),
    progress(Stage.STAGE_SFT, 0, 16, "optimizer_steps", 0, 0),
    progress(Stage.STAGE_SFT, 16, 16, "optimizer_steps", 0, 50_000),
    progress(Stage.STAGE_PPO, 0, 6, "iterations", 0, 0),
    progress(Stage.STAGE_PPO, 3, 6, "iterations", 30_000, 30_000),
    changed(RunState.RUN_STATE_RUNNING, RunState.RUN_STATE_CANCELLED, Stage.STAGE_PPO),
  ])
    r.replay(e);
  assert.equal(r.tick(1e9), "");
  assert.equal(r.snapshot(0), "SFT          ✓ done in 50s (16 optimizer steps)\nPPO          ■ cancelled at iteration 3/6 after 30s\n");
  // the resumed run goes on with PPO from iteration 3
  assert.equal(r.push(changed(RunState.RUN_STATE_CANCELLED, RunState.RUN_STATE_PENDING, Stage.STAGE_PPO), 0), "run r1 PENDING\n");
  assert.equal(r.push(progress(Stage.STAGE_PPO, 3, 6, "iterations", 0, 30_000), 0), "PPO started (6 iterations), from iteration 3\n");
  r.push(changed(RunState.RUN_STATE_RUNNING, RunState.RUN_STATE_CANCELLED, Stage.STAGE_PPO), 0);
  assert.equal(r.summary({ runId: "r1", runDir: "" }, 0), "run r1 CANCELLED in PPO\n");
  // a state from GetRun overrides the events'
  assert.equal(r.summary({ runId: "r1", runDir: "/x", state: RunState.RUN_STATE_SUCCEEDED }, 0), "run r1 SUCCEEDED\nrun folder:  /x\nreport:      /x/report.html\n             /x/report.json\n");
});

test("a running stage's clock goes on without events: a terminal redraws every second, plain output at most every 30 s", () => {
  seq = 0;
  const up = (n: number) => `\r\x1b[${n}A\x1b[J`;
  const t = new ProgressRenderer({ tty: true, columns: 200 });
  assert.equal(t.push(progress(Stage.STAGE_SFT, 0, 200, "optimizer_steps", 0, 0), 0), "SFT          [--------------------]   0%  step 0/200  elapsed 0s\n");
  assert.equal(t.tick(500), "", "not a second yet");
  assert.equal(t.tick(1_000), up(1) + "SFT          [--------------------]   0%  step 0/200  elapsed 1s\n");
  assert.equal(t.tick(1_500), "");
  assert.equal(t.tick(61_000), up(1) + "SFT          [--------------------]   0%  step 0/200  elapsed 1m01s\n");
  // an ETA counts down from its event; once it runs out the elapsed time shows instead
  assert.equal(t.push(progress(Stage.STAGE_SFT, 90, 200, "optimizer_steps", 72_000, 60_000), 62_000), up(1) + "SFT          [#########-----------]  45%  step 90/200  ETA 1m12s\n");
  assert.equal(t.tick(72_000), up(1) + "SFT          [#########-----------]  45%  step 90/200  ETA 1m02s\n");
  assert.equal(t.tick(142_000), up(1) + "SFT          [#########-----------]  45%  step 90/200  elapsed 2m20s\n");
  // a finished stage's line stays as it is
  t.push(progress(Stage.STAGE_SFT, 200, 200, "optimizer_steps", 0, 130_000), 150_000);
  assert.equal(t.push(progress(Stage.STAGE_SFT, 200, 200, "optimizer_steps", 0, 131_000), 151_000), up(1) + "SFT          ✓ done in 2m11s (200 optimizer steps)\n");
  assert.equal(t.tick(200_000), "");
  // after release (the summary) nothing is redrawn, even with a stage still running
  t.push(progress(Stage.STAGE_PPO, 0, 2, "iterations", 0, 0), 200_000);
  t.release();
  assert.equal(t.tick(300_000), "");

  const p = new ProgressRenderer({ tty: false });
  assert.equal(p.tick(100_000), "", "nothing before the first line");
  assert.equal(p.push(progress(Stage.STAGE_SFT, 0, 200, "optimizer_steps", 0, 0), 0), "SFT started (200 optimizer steps)\n");
  for (const at of [1_000, 2_000, 29_999]) assert.equal(p.tick(at), "", `no line at ${at} ms`);
  assert.equal(p.tick(30_000), "SFT          [--------------------]   0%  step 0/200  elapsed 30s\n");
  assert.equal(p.tick(31_000), "");
  assert.equal(p.tick(60_000), "SFT          [--------------------]   0%  step 0/200  elapsed 1m00s\n");
  const quiet = new ProgressRenderer({ tty: false, plainHeartbeatMs: 0 });
  quiet.push(progress(Stage.STAGE_SFT, 0, 200, "optimizer_steps", 0, 0), 0);
  assert.equal(quiet.tick(1e6), "", "plainHeartbeatMs 0: no line without progress");
});

test("PPO counts iterations per variant; a plain PPO line shows only plain PPO's metrics", () => {
  seq = 0;
  const ptx = (step: number) => metrics(Stage.STAGE_PPO, step, { "objective/reward": 0.5, "objective/kl": 0.02, "objective/beta": 0.1, "ptx/loss": 3.2109, "run/variant_ptx": 1 });
  const plain = (step: number) => metrics(Stage.STAGE_PPO, step, { "objective/reward": 0.75, "objective/kl": 0.03, "objective/beta": 0.1, "run/variant_ptx": 0 });
  const ppo = (step: number, elapsedMs = step * 1000) => progress(Stage.STAGE_PPO, step, 6, "iterations", 0, elapsedMs);
  const r = new ProgressRenderer({ tty: false, plainProgressIntervalMs: 0 });
  r.useRunConfig(JSON.stringify({ ppo: { iterations: 3, compare_without_ptx: true } }));
  const out = feed(r, [
    [0, ppo(0)],
    [1, ptx(1)],
    [1, ppo(1)],
    [2, ptx(3)],
    [2, ppo(3)], // PPO-ptx's last iteration
    [3, ppo(3)], // plain PPO starts: the same step again
    [4, plain(4)],
    [4, ppo(4)],
    [5, changed(RunState.RUN_STATE_RUNNING, RunState.RUN_STATE_FAILED, Stage.STAGE_PPO, "boom")],
  ]);
  assert.deepEqual(out, [
    ["PPO started (6 iterations)"],
    [],
    ["PPO          [###-----------------]  16%  PPO-ptx 1/3  elapsed 1s", "             PPO-ptx  reward 0.5  kl 0.02  beta 0.1  ptx loss 3.21"],
    [],
    ["PPO          [##########----------]  50%  PPO-ptx 3/3  elapsed 3s", "             PPO-ptx  reward 0.5  kl 0.02  beta 0.1  ptx loss 3.21"],
    ["PPO          [##########----------]  50%  plain PPO 0/3  elapsed 3s", "             PPO-ptx  reward 0.5  kl 0.02  beta 0.1  ptx loss 3.21"],
    [],
    ["PPO          [#############-------]  66%  plain PPO 1/3  elapsed 4s", "             plain PPO  reward 0.75  kl 0.03  beta 0.1"],
    ["PPO          ✗ failed at plain PPO 1/3 after 4s"],
  ]);
  const metricsOf = (e: ppoCoordinator.RunEvent) => (e.payload as Extract<Payload, { $case: "metrics" }>).metrics;
  assert.equal(r.ppoIterationLine(metricsOf(ptx(1))), "PPO iteration 1/3  PPO-ptx  reward 0.5  kl 0.02  beta 0.1  ptx loss 3.21");
  assert.equal(r.ppoIterationLine(metricsOf(plain(6))), "PPO iteration 3/3  plain PPO  reward 0.75  kl 0.03  beta 0.1");

  // Without the config (rlhf watch from NATS): PPO-ptx counts in the stage until plain PPO starts,
  // which the repeated step (or plain PPO's first metrics) shows.
  const w = new ProgressRenderer({ tty: false, plainProgressIntervalMs: 0 });
  w.push(ppo(0), 0);
  w.push(ptx(1), 1);
  assert.equal(w.push(ppo(1), 1), "PPO          [###-----------------]  16%  iteration 1/6  elapsed 1s\n             PPO-ptx  reward 0.5  kl 0.02  beta 0.1  ptx loss 3.21\n");
  assert.equal(w.ppoIterationLine(metricsOf(ptx(1))), "PPO iteration 1/6  PPO-ptx  reward 0.5  kl 0.02  beta 0.1  ptx loss 3.21");
  w.push(ptx(3), 2);
  w.push(ppo(3), 2);
  assert.match(w.push(ppo(3), 3), /^PPO {10}\[#+-+\] {2}50% {2}plain PPO 0\/3 {2}elapsed 3s\n/);
  const w2 = new ProgressRenderer({ tty: false, plainProgressIntervalMs: 0 });
  w2.push(ppo(4), 0);
  w2.push(plain(5), 2);
  assert.equal(w2.ppoIterationLine(metricsOf(plain(5))), "PPO iteration 2/3  plain PPO  reward 0.75  kl 0.03  beta 0.1");
  assert.equal(w2.push(ppo(5), 2), "PPO          [################----]  83%  plain PPO 2/3  elapsed 5s\n             plain PPO  reward 0.75  kl 0.03  beta 0.1\n");

  // PPO-ptx alone (compare_without_ptx false): the stage's count is PPO-ptx's.
  const one = new ProgressRenderer({ tty: false, plainProgressIntervalMs: 0, ppoIterationsPerVariant: 6 });
  one.push(ppo(0), 0);
  one.push(ptx(2), 1);
  assert.equal(one.push(ppo(2), 1), "PPO          [######--------------]  33%  iteration 2/6  elapsed 2s\n             PPO-ptx  reward 0.5  kl 0.02  beta 0.1  ptx loss 3.21\n");
  assert.equal(one.ppoIterationLine(metricsOf(ptx(2))), "PPO iteration 2/6  PPO-ptx  reward 0.5  kl 0.02  beta 0.1  ptx loss 3.21");

  // A resume into plain PPO: its first event starts the variant; the closing event ends the stage.
  const q = new ProgressRenderer({ tty: false, ppoIterationsPerVariant: 3 });
  assert.equal(q.push(ppo(3), 0), "PPO started (6 iterations), from plain PPO 0/3\n");
  q.push(ppo(6, 9_000), 1);
  assert.equal(q.push(ppo(6, 9_500), 2), "PPO          ✓ done in 10s (6 iterations)\n");
});

test("acceptance lines: a check's value with a mark from its /passed metric and what it needed", () => {
  assert.deepEqual(
    acceptanceLines({
      "acceptance/rm_heldout_accuracy": 0.7212,
      "acceptance/rm_heldout_accuracy/passed": 1,
      "acceptance/rm_heldout_accuracy/threshold": 0.7,
      "acceptance/rm_heldout_accuracy/comparison": 0,
      "acceptance/ppo_ptx_win_rate": 0.55,
      "acceptance/ppo_ptx_win_rate/passed": 0,
      "acceptance/ppo_ptx_win_rate/threshold": 0.65,
      "acceptance/ppo_ptx_win_rate/comparison": 0,
      "acceptance/labeler_agreement": 0.741,
      "acceptance/labeler_agreement/passed": 1,
      "acceptance/labeler_agreement/threshold": 0.73,
      "acceptance/labeler_agreement/tolerance": 0.03,
      "acceptance/labeler_agreement/comparison": 4,
      "acceptance/kl_within_bound/passed": 0, // no value: the data was missing
      "acceptance/gold_ties/not_applicable": 1,
      "objective/kl": 1,
    }),
    [
      "acceptance:",
      "  – gold_ties  does not apply to this run (see report.html)",
      "  ✗ kl_within_bound  not measured",
      "  ✓ labeler_agreement  0.741  (needed 0.73 ± 0.03)",
      "  ✗ ppo_ptx_win_rate  0.55  (needed >= 0.65)",
      "  ✓ rm_heldout_accuracy  0.721  (needed >= 0.7)",
      "  2 of 4 checks passed; targets not met: kl_within_bound, ppo_ptx_win_rate (report.html says why)",
    ],
  );
  assert.deepEqual(acceptanceLines({ "objective/kl": 1 }), []);
});

test("acceptance lines: a value just short of its bound shows the digits that say so", () => {
  const line = (value: number, threshold: number, passed: number, tolerance?: number) =>
    acceptanceLines({
      "acceptance/x": value,
      "acceptance/x/passed": passed,
      "acceptance/x/threshold": threshold,
      "acceptance/x/comparison": tolerance === undefined ? 0 : 4,
      ...(tolerance === undefined ? {} : { "acceptance/x/tolerance": tolerance }),
    })[1];
  assert.equal(line(0.6996960486322188, 0.7, 0), "  ✗ x  0.6997  (needed >= 0.7)");
  assert.equal(line(0.64995, 0.65, 0), "  ✗ x  0.64995  (needed >= 0.65)");
  assert.equal(line(0.7, 0.7, 1), "  ✓ x  0.7  (needed >= 0.7)");
  assert.equal(line(0.7603, 0.73, 0, 0.03), "  ✗ x  0.7603  (needed 0.73 ± 0.03)");
  assert.equal(line(0.741, 0.73, 1, 0.03), "  ✓ x  0.741  (needed 0.73 ± 0.03)");
});
