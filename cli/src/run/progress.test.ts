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
    [7_000, progress(Stage.STAGE_PRETRAIN, 60, 60, "optimizer_steps", 0, 12_000)],
    [7_000, progress(Stage.STAGE_SFT, 0, 16, "optimizer_steps", 0, 0)],
    [8_000, metrics(Stage.STAGE_SFT, 1, { "loss/lm": 2.5 })],
    [9_000, progress(Stage.STAGE_SFT, 16, 16, "optimizer_steps", 0, 83_000)],
    [9_000, progress(Stage.STAGE_RANKINGS, 0, 0, "prompts", 0, 0)],
    [20_000, progress(Stage.STAGE_RANKINGS, 48, 0, "prompts", 0, 30_000)],
    // a new stage closes one that never reported its last step
    [21_000, progress(Stage.STAGE_REWARD_MODEL, 0, 12, "optimizer_steps", 0, 0)],
    [22_000, progress(Stage.STAGE_REWARD_MODEL, 12, 12, "optimizer_steps", 0, 65_000)],
    [22_000, checkpoint("/runs/r1/checkpoints/reward-model", Stage.STAGE_REWARD_MODEL, 0, 1.5 * 1024 * 1024)],
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
    ["Pretrain     ✓ done in 12s (60 optimizer steps)"],
    ["SFT started (16 optimizer steps)"],
    [],
    ["SFT          ✓ done in 1m23s (16 optimizer steps)"],
    ["Rankings started"],
    ["Rankings     [????????????????????]    ?  prompt 48  elapsed 30s"],
    ["Rankings     ✓ done in 30s (48 prompts)", "Reward model started (12 optimizer steps)"],
    ["Reward model ✓ done in 1m05s (12 optimizer steps)"],
    ["checkpoint /runs/r1/checkpoints/reward-model (1.5 MiB, Reward model)"],
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
      "Pretrain     ✓ done in 12s (60 optimizer steps)",
      "SFT          ✓ done in 1m23s (16 optimizer steps)",
      "Rankings     ✓ done in 30s (48 prompts)",
      "Reward model ✓ done in 1m05s (12 optimizer steps)",
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
  assert.equal(r.tick(5_000), "SFT          [#########-----------]  45%  step 90/200  ETA 1m12s\n");
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
  // a finished stage redraws at once (its line changes shape), however recent the last redraw
  assert.equal(r.push(progress(Stage.STAGE_SFT, 200, 200, "optimizer_steps", 0, 123_000), 250), up(1) + "SFT          ✓ done in 2m03s (200 optimizer steps)\n");
  assert.equal(
    r.push(progress(Stage.STAGE_PPO, 0, 10, "iterations", 0, 0), 260),
    up(1) + "SFT          ✓ done in 2m03s (200 optimizer steps)\nPPO          [--------------------]   0%  iteration 0/10  elapsed 0s\n",
  );
  assert.equal(r.push(metrics(Stage.STAGE_PPO, 1, { "objective/reward": 1.5, "objective/kl": 0.25, "objective/kl_coef": 0.1, "run/variant_ptx": 0 }), 300), "");
  const block3 = "SFT          ✓ done in 2m03s (200 optimizer steps)\nPPO          [--------------------]   0%  iteration 0/10  elapsed 0s\n             plain PPO  reward 1.5  kl 0.25  beta 0.1\n";
  assert.equal(r.tick(400), up(2) + block3);
  // a checkpoint line scrolls above the block
  assert.equal(r.push(checkpoint("/runs/r1/ckpt-3", Stage.STAGE_PPO, 3, 2048), 410), up(3) + "checkpoint /runs/r1/ckpt-3 (2.0 KiB, PPO iteration 3)\n" + block3);
  assert.equal(r.note("Ctrl-C: cancelling", 420), up(3) + "Ctrl-C: cancelling\n" + block3);
  r.push(metrics(Stage.STAGE_EVALUATION, 0, { "eval/ppo_ptx/win_rate_vs_sft": 0.61, "acceptance/ppo_ptx_beats_sft": 1, "acceptance/rm_heldout_accuracy": 0.68 }), 500);
  // SUCCEEDED closes the stages still running; the summary draws the block a last time, then the outcome
  const end = r.push(changed(RunState.RUN_STATE_RUNNING, RunState.RUN_STATE_SUCCEEDED, Stage.STAGE_EVALUATION), 600);
  assert.equal(end, up(3) + "SFT          ✓ done in 2m03s (200 optimizer steps)\nPPO          ✓ done in 0s (10 iterations)\n             plain PPO  reward 1.5  kl 0.25  beta 0.1\n");
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
      "  2 of 4 checks passed; report.html says why the others did not",
    ],
  );
  assert.deepEqual(acceptanceLines({ "objective/kl": 1 }), []);
});
