/**
 * A stage's time as report.json records it (the recipe state's `stageMs`: this attempt's time
 * plus the earlier attempts'), and the progress events that go with it. Elapsed times count the
 * earlier attempts too (StageProgress.elapsed_ms is "across resumes"), and the stage ends with its
 * last progress event said again, at step == total_steps and with the stage's time: the CLI
 * prints that time as the stage's "done in", so the display and the report agree.
 */
import type { ppoCoordinator } from "@rlhf/proto";

type StageProgress = ppoCoordinator.StageProgress;

export class StageClock {
  private last: StageProgress | undefined;
  private doneMs: number | undefined;

  /**
   * @param stage the stage being timed
   * @param priorMs its time in earlier attempts (`stageMs`; 0 the first time)
   * @param startMs when this attempt began (Date.now() before the stage's work)
   */
  constructor(
    readonly stage: ppoCoordinator.Stage,
    private readonly priorMs: number,
    private readonly startMs: number,
  ) {}

  /** A progress event as it goes out: the stage's own with the earlier attempts' time added; others as they are. */
  progress(p: StageProgress): StageProgress {
    if (p.stage !== this.stage) return p;
    this.last = { ...p, elapsedMs: p.elapsedMs + this.priorMs };
    return this.last;
  }

  /**
   * Ends the stage at `nowMs`: its whole time and, the first time only, the closing progress
   * event (none when the stage reported no progress). Later calls return the same time.
   */
  finish(nowMs: number): { stageMs: number; closing?: StageProgress } {
    if (this.doneMs !== undefined) return { stageMs: this.doneMs };
    this.doneMs = this.priorMs + Math.max(0, nowMs - this.startMs);
    const l = this.last;
    return { stageMs: this.doneMs, closing: l && { ...l, step: Math.max(l.step, l.totalSteps), etaMs: 0, elapsedMs: this.doneMs } };
  }
}
