import { test } from "node:test";
import assert from "node:assert/strict";
import { ppoCoordinator } from "@rlhf/proto";
import { StageClock } from "./stage-clock";

const { Stage } = ppoCoordinator;
const progress = (stage: ppoCoordinator.Stage, step: number, elapsedMs: number, etaMs = 500): ppoCoordinator.StageProgress => ({ stage, step, totalSteps: 4, unit: "optimizer_steps", etaMs, elapsedMs });

test("a stage's closing progress event carries the time the report records; elapsed times count earlier attempts", () => {
  // Resumed: 30 s in this stage before, this attempt began at t = 1000.
  const clock = new StageClock(Stage.STAGE_SFT, 30_000, 1_000);
  assert.deepEqual(clock.progress(progress(Stage.STAGE_SFT, 0, 0)), progress(Stage.STAGE_SFT, 0, 30_000));
  assert.deepEqual(clock.progress(progress(Stage.STAGE_SFT, 3, 2_000)), progress(Stage.STAGE_SFT, 3, 32_000));
  // another stage's event passes as it is
  assert.deepEqual(clock.progress(progress(Stage.STAGE_PPO, 1, 10)), progress(Stage.STAGE_PPO, 1, 10));
  // The stage ends at t = 4500 (after saving its model): 30 s + 3.5 s, at its last step, no ETA.
  const end = clock.finish(4_500);
  assert.equal(end.stageMs, 33_500);
  assert.deepEqual(end.closing, { stage: Stage.STAGE_SFT, step: 4, totalSteps: 4, unit: "optimizer_steps", etaMs: 0, elapsedMs: 33_500 });
  // The time is fixed once (the evaluation writes the report with it before the stage returns).
  assert.deepEqual(clock.finish(9_000), { stageMs: 33_500 });
});

test("a stage that reported no progress ends without a closing event", () => {
  const clock = new StageClock(Stage.STAGE_PRETRAIN, 0, 100);
  clock.progress(progress(Stage.STAGE_SFT, 1, 1));
  assert.deepEqual(clock.finish(350), { stageMs: 250, closing: undefined });
});
