/**
 * The progress display of `rlhf demo|run|resume`: a pure renderer of a run's event stream (no
 * I/O, no clock: the caller passes the time). It keeps per-stage state and returns the text to
 * write:
 *
 * - TTY mode redraws one block in place (cursor up + clear to the end of the screen): a line per
 *   stage seen so far (a bar while running, a check mark and the elapsed time once done) and,
 *   under PPO, the latest key metrics; one-off lines (state changes, checkpoints) scroll above it.
 * - Plain mode (a pipe, CI, a log file) prints one line per stage change and at most one
 *   progress line per `plainProgressIntervalMs`.
 *
 * Between events a running stage's clock goes on (its elapsed time counts up, its ETA down from
 * the last event): {@link ProgressRenderer.tick} redraws a terminal's block every second and, in
 * plain mode, prints a progress line after `plainHeartbeatMs` without any.
 *
 * A stage is done when the coordinator reports its last step a second time (the closing event,
 * sent when the stage ends, with the time report.json records for it), or when a later stage
 * starts or the run ends; it is printed with the time of its last event.
 */
import { join } from "node:path";
import { ppoCoordinator } from "@rlhf/proto";

const { Stage, RunState } = ppoCoordinator;
type Stage = ppoCoordinator.Stage;
type RunState = ppoCoordinator.RunState;

/** Options of {@link ProgressRenderer}. */
export interface ProgressOptions {
  /** Redraw in place with ANSI codes (a terminal) instead of printing plain lines. */
  tty: boolean;
  /** Terminal width: TTY lines are cut to `columns - 1` so that a redraw moves up the right number of lines. Default 120. */
  columns?: number;
  /** Plain mode: least time between two progress lines. Default 5000 ms. */
  plainProgressIntervalMs?: number;
  /** TTY mode: least time between two redraws caused by progress alone. Default 100 ms. */
  ttyRedrawIntervalMs?: number;
  /** Plain mode: while a stage runs, a progress line after this long without one. Default 30000 ms; 0 never. */
  plainHeartbeatMs?: number;
  /** PPO iterations per variant (the run config's `ppo.iterations`): PPO then counts per variant. Default: unknown. */
  ppoIterationsPerVariant?: number;
  /** Width of the bar between the brackets. Default 20. */
  barWidth?: number;
}

/** What the renderer knows about one stage (times as of its last progress event). */
export interface StageView {
  stage: Stage;
  step: number;
  /** 0 when unknown. */
  totalSteps: number;
  unit: string;
  /** 0 when unknown. */
  etaMs: number;
  elapsedMs: number;
  status: "running" | "done" | "failed" | "cancelled";
}

/** Where the run ended, for {@link ProgressRenderer.summary}. */
export interface RunSummaryInput {
  runId: string;
  /** The run folder (report.html and report.json are in it). Empty when unknown. */
  runDir: string;
  /** Overrides the state the events reported (e.g. from GetRun when the stream broke). */
  state?: RunState;
  errorMessage?: string;
  /** Extra metrics to look for acceptance lines in (e.g. Run.last_metrics). */
  metrics?: Readonly<Record<string, number>>;
}

const STAGE_LABELS: Readonly<Record<number, string>> = {
  [Stage.STAGE_PRETRAIN]: "Pretrain",
  [Stage.STAGE_SFT]: "SFT",
  [Stage.STAGE_RANKINGS]: "Rankings",
  [Stage.STAGE_REWARD_MODEL]: "Reward model",
  [Stage.STAGE_PPO]: "PPO",
  [Stage.STAGE_EVALUATION]: "Evaluation",
};

/** A stage's name for people ("Reward model"). */
export function stageLabel(stage: Stage): string {
  return STAGE_LABELS[stage] ?? `Stage ${stage}`;
}

const STATE_NAMES: Readonly<Record<number, string>> = {
  [RunState.RUN_STATE_UNSPECIFIED]: "UNSPECIFIED",
  [RunState.RUN_STATE_PENDING]: "PENDING",
  [RunState.RUN_STATE_RUNNING]: "RUNNING",
  [RunState.RUN_STATE_SUCCEEDED]: "SUCCEEDED",
  [RunState.RUN_STATE_FAILED]: "FAILED",
  [RunState.RUN_STATE_CANCELLED]: "CANCELLED",
};

/** "SUCCEEDED" for RUN_STATE_SUCCEEDED. */
export function stateName(state: RunState): string {
  return STATE_NAMES[state] ?? String(state);
}

/** Whether a run in this state will not change any more. */
export function isTerminal(state: RunState): boolean {
  return state === RunState.RUN_STATE_SUCCEEDED || state === RunState.RUN_STATE_FAILED || state === RunState.RUN_STATE_CANCELLED;
}

/** The PPO metrics shown under the PPO line: label, then the names it may be published under. */
export const KEY_PPO_METRICS: readonly { label: string; names: readonly string[] }[] = [
  { label: "reward", names: ["objective/reward"] },
  { label: "kl", names: ["objective/kl"] },
  { label: "beta", names: ["objective/beta", "objective/kl_coef"] },
  { label: "ptx loss", names: ["ptx/loss"] },
];

/**
 * Metric names under this prefix are printed at the end as acceptance lines:
 * `acceptance/<check>` is the check's value, `acceptance/<check>/passed` 1 or 0,
 * `/threshold`, `/comparison` (index in {@link COMPARISONS}) and `/tolerance` what it needed,
 * `/not_applicable` 1 for a check that does not apply to the run.
 */
export const ACCEPTANCE_PREFIX = "acceptance/";

/** The comparisons of `acceptance/<check>/comparison`, by code (the coordinator's COMPARISON_CODES). */
export const COMPARISONS = [">=", ">", "<", "<=", "within"] as const;

const CHECK_FIELDS = ["passed", "threshold", "comparison", "tolerance", "not_applicable"] as const;
type CheckField = (typeof CHECK_FIELDS)[number];

/**
 * "acceptance:", a line per check (`✓`/`✗`, its name, its value and what it needed, or `–` and
 * "does not apply"), and one closing line that counts those that say whether they passed and
 * names the targets not met; none without checks.
 */
export function acceptanceLines(metrics: Readonly<Record<string, number>>): string[] {
  const checks = new Map<string, Partial<Record<CheckField | "value", number>>>();
  for (const [k, v] of Object.entries(metrics)) {
    if (!k.startsWith(ACCEPTANCE_PREFIX)) continue;
    const rest = k.slice(ACCEPTANCE_PREFIX.length);
    const field = CHECK_FIELDS.find((f) => rest.endsWith(`/${f}`));
    const name = field ? rest.slice(0, -(field.length + 1)) : rest;
    const c = checks.get(name) ?? {};
    c[field ?? "value"] = v;
    checks.set(name, c);
  }
  if (checks.size === 0) return [];
  const lines = ["acceptance:"];
  let passed = 0;
  let applicable = 0;
  const missed: string[] = [];
  for (const name of [...checks.keys()].sort()) {
    const c = checks.get(name)!;
    if (c.not_applicable) {
      lines.push(`  – ${name}  does not apply to this run (see report.html)`);
      continue;
    }
    if (c.passed !== undefined) applicable++;
    if (c.passed) passed++;
    else if (c.passed !== undefined) missed.push(name);
    const mark = c.passed === undefined ? "" : c.passed ? "✓ " : "✗ ";
    const cmp = c.comparison === undefined ? undefined : COMPARISONS[c.comparison];
    const target =
      c.threshold === undefined || cmp === undefined ? "" : cmp === "within" ? `  (needed ${formatMetric(c.threshold)} ± ${formatMetric(c.tolerance ?? 0)})` : `  (needed ${cmp} ${formatMetric(c.threshold)})`;
    const bounds = c.threshold === undefined ? [] : cmp === "within" ? [c.threshold - (c.tolerance ?? 0), c.threshold + (c.tolerance ?? 0)] : [c.threshold];
    lines.push(`  ${mark}${name}${c.value === undefined ? "  not measured" : `  ${formatCheckValue(c.value, bounds)}`}${target}`);
  }
  // The count covers the checks that say whether they passed (a coordinator's; not bare values).
  // A run can succeed and still miss its targets: the last line names them.
  if (applicable > 0) lines.push(`  ${passed} of ${applicable} checks passed${missed.length === 0 ? "" : `; targets not met: ${missed.join(", ")} (report.html says why)`}`);
  return lines;
}

/**
 * A duration for people, rounded to the second: "0s", "45s", "1m12s", "1h05m" (minutes
 * rounded down above an hour). Negative or non-finite values read "?".
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "?";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** A metric with three significant digits ("0.0312", "3.21", "-0.412"); exponent form when tiny or huge. */
export function formatMetric(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(digits - 1);
  return String(Number(x.toPrecision(digits)));
}

/**
 * A check's value with enough significant digits that it does not read as one of its bounds
 * when it differs from it: 0.6997 against ">= 0.7" is "0.6997", not "0.7".
 */
export function formatCheckValue(x: number, bounds: readonly number[]): string {
  let digits = 3;
  let s = formatMetric(x, digits);
  while (digits < 10 && bounds.some((b) => x !== b && Number(s) === Number(formatMetric(b, digits)))) s = formatMetric(x, ++digits);
  return s;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** Per unit: the word before "90/200", and the singular / plural after a count ("16 optimizer steps"). */
const UNIT_WORDS: Readonly<Record<string, readonly [short: string, one: string, many: string]>> = {
  optimizer_steps: ["step", "optimizer step", "optimizer steps"],
  iterations: ["iteration", "iteration", "iterations"],
  prompts: ["prompt", "prompt", "prompts"],
  ranked_prompts: ["ranked", "ranked prompt", "ranked prompts"],
  models: ["model", "model", "models"],
};

function unitWords(unit: string): readonly [string, string, string] {
  const known = UNIT_WORDS[unit];
  if (known) return known;
  if (!unit) return ["step", "step", "steps"];
  const many = unit.replace(/_/g, " ");
  const one = many.replace(/(ch|sh|ss|x)es$/, "$1").replace(/([^s])s$/, "$1");
  return [one, one, many];
}

/** "16 optimizer steps", "1 iteration". */
function countOf(n: number, unit: string): string {
  const [, one, many] = unitWords(unit);
  return `${n} ${n === 1 ? one : many}`;
}

const LABEL_WIDTH = 12;
const INDENT = " ".repeat(LABEL_WIDTH + 1);

/** One-off output of an event, and whether a terminal should see it too (stage starts/ends show in the block there). */
interface Message {
  text: string;
  tty: boolean;
}

const ESC = "\x1b[";

/** TTY mode: a running stage's line is redrawn this often (its clock shows seconds). */
const CLOCK_MS = 1000;

/** The PPO variants in the order the coordinator runs them (recipe/stages/ppo.ts: ppo_ptx, then plain ppo). */
const PPO_VARIANTS = ["PPO-ptx", "plain PPO"] as const;

/** A stage's view and the caller's clock at its last progress event (NaN: unknown, e.g. replayed history). */
interface StageState extends StageView {
  atMs: number;
}

/**
 * Iterations per PPO variant from a resolved run config (JSON): its `ppo.iterations`; undefined
 * when the text is not such a config.
 */
export function ppoIterationsOf(configJson: string | undefined): number | undefined {
  try {
    const c = JSON.parse(configJson ?? "") as { ppo?: { iterations?: unknown } };
    const n = c?.ppo?.iterations;
    return typeof n === "number" && Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Keeps a run's progress from its events and renders it (see the module comment). */
export class ProgressRenderer {
  private readonly stages = new Map<Stage, StageState>();
  /** The latest PPO metrics event's values only: a plain PPO iteration shows no ptx loss of PPO-ptx's. */
  private ppoMetrics: Record<string, number> = {};
  /** Index in PPO_VARIANTS of the variant PPO is in. */
  private ppoVariant = 0;
  private ppoIterations: number | undefined;
  private lastMetricsValues: Record<string, number> = {};
  private runState: RunState = RunState.RUN_STATE_UNSPECIFIED;
  private error = "";
  /** Stage of the FAILED / CANCELLED state change. */
  private endStage: Stage = Stage.STAGE_UNSPECIFIED;
  private drawnLines = 0;
  private dirty = false;
  private lastDrawMs = Number.NEGATIVE_INFINITY;
  private lastPlainProgressMs = Number.NEGATIVE_INFINITY;
  private readonly opts: Required<Omit<ProgressOptions, "ppoIterationsPerVariant">>;

  constructor(opts: ProgressOptions) {
    const { ppoIterationsPerVariant, ...rest } = opts;
    this.opts = { columns: 120, plainProgressIntervalMs: 5000, ttyRedrawIntervalMs: 100, plainHeartbeatMs: 30_000, barWidth: 20, ...rest };
    this.ppoIterations = ppoIterationsPerVariant;
  }

  /** Takes what the display needs from the run's resolved config (JSON): PPO's iterations per variant. */
  useRunConfig(configJson: string | undefined): void {
    this.ppoIterations = ppoIterationsOf(configJson) ?? this.ppoIterations;
  }

  /** The run state the events reported last (UNSPECIFIED before any state change). */
  get state(): RunState {
    return this.runState;
  }

  /** The error message of the FAILED state change, if any. */
  get errorMessage(): string {
    return this.error;
  }

  /** Stages seen so far, in recipe order. */
  get stageViews(): StageView[] {
    return [...this.stages.values()].sort((a, b) => a.stage - b.stage).map(({ atMs: _, ...view }) => view);
  }

  /** Values of the latest RunMetrics event. */
  get lastMetrics(): Readonly<Record<string, number>> {
    return this.lastMetricsValues;
  }

  /**
   * Applies an event and returns what to write now ("" for nothing). `nowMs` is the caller's
   * clock, used only to throttle progress output.
   */
  push(event: ppoCoordinator.RunEvent, nowMs: number): string {
    const { messages, progressed, metrics } = this.apply(event, nowMs);
    // Plain lines follow progress only: the coordinator sends an iteration's metrics just before its progress.
    if (progressed || (metrics && this.opts.tty)) this.dirty = true;
    if (this.opts.tty) {
      const shown = messages.filter((m) => m.tty).map((m) => m.text);
      if (messages.length > 0 || (this.dirty && nowMs - this.lastDrawMs >= this.opts.ttyRedrawIntervalMs)) return this.redraw(shown, nowMs);
      return "";
    }
    let out = messages.map((m) => m.text + "\n").join("");
    // A stage start or end already said where the run is; progress lines fill the gaps between.
    if (messages.length > 0) {
      this.lastPlainProgressMs = nowMs;
      this.dirty = false;
    } else if (this.dirty && nowMs - this.lastPlainProgressMs >= this.opts.plainProgressIntervalMs) out += this.plainProgress(nowMs);
    return out;
  }

  /** Applies an event of the run's history (replayed when resuming) without writing anything. */
  replay(event: ppoCoordinator.RunEvent): void {
    this.apply(event, Number.NaN);
    this.dirty = false;
  }

  /**
   * Writes what throttling held back, once it is due, and keeps a running stage's clock going
   * without events: a terminal's block is redrawn every second (once it is on the screen), a
   * plain progress line follows `plainHeartbeatMs` after the last line. Call it every second.
   */
  tick(nowMs: number): string {
    const running = [...this.stages.values()].some((s) => s.status === "running");
    if (this.opts.tty) {
      if (this.dirty && nowMs - this.lastDrawMs >= this.opts.ttyRedrawIntervalMs) return this.redraw([], nowMs);
      return running && this.drawnLines > 0 && nowMs - this.lastDrawMs >= CLOCK_MS ? this.redraw([], nowMs) : "";
    }
    if (this.dirty && nowMs - this.lastPlainProgressMs >= this.opts.plainProgressIntervalMs) return this.plainProgress(nowMs);
    // Only after a first line: the history of a resumed run is being replayed before that.
    const heartbeat = this.opts.plainHeartbeatMs > 0 && running && Number.isFinite(this.lastPlainProgressMs);
    return heartbeat && nowMs - this.lastPlainProgressMs >= this.opts.plainHeartbeatMs ? this.plainProgress(nowMs) : "";
  }

  /**
   * The current picture, drawn afresh: the whole block in TTY mode (e.g. after a replay, or
   * after other output), the stage lines in plain mode.
   */
  snapshot(nowMs: number): string {
    if (this.opts.tty) {
      this.drawnLines = 0;
      return this.redraw([], nowMs);
    }
    this.lastPlainProgressMs = nowMs;
    return this.block(nowMs).map((l) => l + "\n").join("");
  }

  /**
   * A line (or several) of the caller's own: above the block in TTY mode (the block is drawn
   * again below it), as is in plain mode.
   */
  note(text: string, nowMs: number): string {
    return this.opts.tty ? this.redraw([text], nowMs) : text + "\n";
  }

  /**
   * Leaves the block as it is (TTY: the next output goes below it instead of redrawing it).
   * Call before writing anything of one's own.
   */
  release(): void {
    this.drawnLines = 0;
  }

  /**
   * The closing lines: the outcome, the run folder, and for a SUCCEEDED run its report paths
   * and the acceptance lines when the last metrics carry them. In TTY mode the block is drawn one last time first.
   */
  summary(input: RunSummaryInput, nowMs: number): string {
    const out: string[] = [];
    let head = "";
    if (this.opts.tty && this.dirty) head = this.redraw([], nowMs);
    this.release();
    const state = input.state ?? this.runState;
    const error = input.errorMessage || this.error;
    const where = this.endStage !== Stage.STAGE_UNSPECIFIED && state !== RunState.RUN_STATE_SUCCEEDED ? ` in ${stageLabel(this.endStage)}` : "";
    if (state === RunState.RUN_STATE_FAILED) out.push(`run ${input.runId} FAILED${where}${error ? `: ${error}` : ""}`);
    else out.push(`run ${input.runId} ${stateName(state)}${where}`);
    if (input.runDir) {
      out.push(`run folder:  ${input.runDir}`);
      if (state === RunState.RUN_STATE_SUCCEEDED) {
        out.push(`report:      ${join(input.runDir, "report.html")}`);
        out.push(`             ${join(input.runDir, "report.json")}`);
      }
    }
    const metrics = state === RunState.RUN_STATE_SUCCEEDED ? { ...(input.metrics ?? {}), ...this.lastMetricsValues } : {};
    out.push(...acceptanceLines(metrics));
    return head + out.map((l) => l + "\n").join("");
  }

  /** Updates the state; says what to write at once, and whether the progress or the shown metrics changed. */
  private apply(event: ppoCoordinator.RunEvent, nowMs: number): { messages: Message[]; progressed: boolean; metrics?: boolean } {
    const messages: Message[] = [];
    const p = event.payload;
    if (!p) return { messages, progressed: false };
    switch (p.$case) {
      case "stateChanged": {
        // The outcome itself is the summary's first line; here only the stage lines change.
        const c = p.stateChanged;
        this.runState = c.toState;
        if (c.toState === RunState.RUN_STATE_FAILED || c.toState === RunState.RUN_STATE_CANCELLED) {
          if (c.toState === RunState.RUN_STATE_FAILED) this.error = c.errorMessage;
          this.endStage = c.stage;
          for (const s of this.stages.values()) {
            if (s.status !== "running") continue;
            s.status = c.toState === RunState.RUN_STATE_FAILED ? "failed" : "cancelled";
            messages.push({ text: this.stageLine(s), tty: false });
          }
        } else if (c.toState === RunState.RUN_STATE_SUCCEEDED) {
          for (const s of this.stages.values()) if (s.status === "running") this.finishStage(s, messages);
        } else {
          messages.push({ text: `run ${event.runId} ${stateName(c.toState)}`, tty: true });
        }
        return { messages, progressed: true };
      }
      case "stageProgress": {
        const sp = p.stageProgress;
        // A new stage closes the ones before it that never reported their last step.
        for (const s of this.stages.values()) if (s.status === "running" && s.stage < sp.stage) this.finishStage(s, messages);
        let s = this.stages.get(sp.stage);
        const before = s?.status === "running" ? { step: s.step, totalSteps: s.totalSteps } : undefined;
        const isNew = before === undefined;
        const wasAtEnd = before !== undefined && before.totalSteps > 0 && before.step >= before.totalSteps;
        const repeated = before !== undefined && before.step === sp.step;
        if (!s) {
          s = { stage: sp.stage, step: 0, totalSteps: 0, unit: "", etaMs: 0, elapsedMs: 0, status: "running", atMs: nowMs };
          this.stages.set(sp.stage, s);
        }
        Object.assign(s, { step: sp.step, totalSteps: sp.totalSteps, unit: sp.unit, etaMs: sp.etaMs, elapsedMs: sp.elapsedMs, status: "running", atMs: nowMs });
        if (sp.stage === Stage.STAGE_PPO) {
          // Without the config: a step said again before the end is where plain PPO starts.
          if (this.ppoIterations === undefined && repeated && sp.step > 0 && sp.step * 2 === sp.totalSteps) this.ppoIterations = sp.step;
          this.ppoVariant = this.variantAt(sp.step, sp.totalSteps, isNew || repeated, this.ppoVariant);
        }
        if (isNew) {
          const size = sp.totalSteps > 0 ? ` (${countOf(sp.totalSteps, sp.unit)})` : "";
          const from = sp.step > 0 ? `, from ${this.ppoCount(s) ?? `${unitWords(sp.unit)[0]} ${sp.step}`}` : "";
          messages.push({ text: `${stageLabel(sp.stage)} started${size}${from}`, tty: false });
        }
        // The last step is reported when it is done; the stage still saves its work. The
        // coordinator reports it again as the stage ends, with the stage's whole time.
        if (wasAtEnd && sp.totalSteps > 0 && sp.step >= sp.totalSteps) this.finishStage(s, messages);
        return { messages, progressed: true };
      }
      case "metrics": {
        const m = p.metrics;
        this.lastMetricsValues = { ...m.values };
        if (m.stage === Stage.STAGE_PPO) {
          this.ppoMetrics = { ...m.values };
          const v = this.variantOf(m.values);
          if (v !== undefined) this.ppoVariant = v;
          // Without the config: plain PPO only runs second, after as many iterations of PPO-ptx.
          const total = this.stages.get(Stage.STAGE_PPO)?.totalSteps ?? 0;
          if (v === 1 && this.ppoIterations === undefined && total > 0 && total % 2 === 0) this.ppoIterations = total / 2;
        }
        return { messages, progressed: false, metrics: m.stage === Stage.STAGE_PPO };
      }
      case "checkpointWritten": {
        const c = p.checkpointWritten;
        const at = c.stage === Stage.STAGE_PPO ? `, PPO iteration ${c.iteration}` : c.stage !== Stage.STAGE_UNSPECIFIED ? `, ${stageLabel(c.stage)}` : "";
        messages.push({ text: `checkpoint ${c.dir} (${formatBytes(c.bytes)}${at})`, tty: true });
        return { messages, progressed: false };
      }
    }
    return { messages, progressed: false };
  }

  private finishStage(s: StageView, messages: Message[]): void {
    s.status = "done";
    s.etaMs = 0;
    if (s.totalSteps > 0) s.step = Math.max(s.step, s.totalSteps);
    messages.push({ text: this.stageLine(s), tty: false });
  }

  /** The line of one stage (see the module comment for the shapes). */
  stageLine(s: StageView): string {
    const label = stageLabel(s.stage).padEnd(LABEL_WIDTH) + " ";
    const [one] = unitWords(s.unit);
    const count = this.ppoCount(s) ?? (s.totalSteps > 0 ? `${one} ${s.step}/${s.totalSteps}` : `${one} ${s.step}`);
    switch (s.status) {
      case "done":
        return `${label}✓ done in ${formatDuration(s.elapsedMs)} (${countOf(s.totalSteps > 0 ? s.totalSteps : s.step, s.unit)})`;
      case "failed":
        return `${label}✗ failed at ${count} after ${formatDuration(s.elapsedMs)}`;
      case "cancelled":
        return `${label}■ cancelled at ${count} after ${formatDuration(s.elapsedMs)}`;
      case "running": {
        const w = this.opts.barWidth;
        let bar: string;
        let pct: string;
        if (s.totalSteps > 0) {
          const f = Math.min(1, s.step / s.totalSteps);
          const filled = Math.floor(f * w);
          bar = "#".repeat(filled) + "-".repeat(w - filled);
          pct = `${Math.floor(f * 100)}%`;
        } else {
          bar = "?".repeat(w);
          pct = "?";
        }
        const time = s.etaMs > 0 ? `ETA ${formatDuration(s.etaMs)}` : `elapsed ${formatDuration(s.elapsedMs)}`;
        return `${label}[${bar}] ${pct.padStart(4)}  ${count}  ${time}`;
      }
    }
  }

  /** The key PPO metrics line (indented under the PPO line): the latest iteration's, with its variant; undefined before any. */
  metricsLine(): string | undefined {
    const parts = this.metricParts(this.ppoMetrics);
    const v = this.variantOf(this.ppoMetrics);
    if (v !== undefined) parts.unshift(PPO_VARIANTS[v]);
    return parts.length > 0 ? INDENT + parts.join("  ") : undefined;
  }

  /**
   * A line for one PPO iteration from its metrics event, once pushed: "PPO iteration 3/15  plain
   * PPO  reward 0.412  kl 0.0312 ...", counted in its variant when PPO has two (else in the stage).
   */
  ppoIterationLine(m: ppoCoordinator.RunMetrics): string {
    const v = this.variantOf(m.values);
    const total = this.stages.get(Stage.STAGE_PPO)?.totalSteps ?? 0;
    const n = this.variantIterations(total);
    const count = v !== undefined && n !== undefined ? `${m.step - v * n}/${n}` : `${m.step}${total > 0 ? `/${total}` : ""}`;
    return [`PPO iteration ${count}`, ...(v === undefined ? [] : [PPO_VARIANTS[v]]), ...this.metricParts(m.values)].join("  ");
  }

  private metricParts(values: Readonly<Record<string, number>>): string[] {
    const parts: string[] = [];
    for (const k of KEY_PPO_METRICS) {
      const name = k.names.find((n) => values[n] !== undefined);
      if (name !== undefined) parts.push(`${k.label} ${formatMetric(values[name])}`);
    }
    return parts;
  }

  /** Index in PPO_VARIANTS of the variant a PPO metrics event names (`run/variant_ptx`), if any. */
  private variantOf(values: Readonly<Record<string, number>>): number | undefined {
    const ptx = values["run/variant_ptx"];
    return ptx === undefined ? undefined : ptx ? 0 : 1;
  }

  /**
   * PPO's iterations per variant when it runs both variants (the stage's total is twice the
   * run config's `ppo.iterations`); undefined otherwise: a lone PPO-ptx's count is the stage's.
   */
  private variantIterations(total: number): number | undefined {
    const n = this.ppoIterations;
    return n !== undefined && total > 0 && total === n * PPO_VARIANTS.length ? n : undefined;
  }

  /**
   * The variant PPO is in at `step` (the coordinator counts the variants' iterations one after
   * the other). A step between two variants ends the one and starts the next: the next has
   * started once that step is reported again (its first report), or first after a resume.
   */
  private variantAt(step: number, total: number, started: boolean, current: number): number {
    const n = this.variantIterations(total);
    if (n === undefined) return current;
    if (step >= total) return PPO_VARIANTS.length - 1;
    const k = Math.floor(step / n);
    return step > 0 && step % n === 0 && !started ? k - 1 : k;
  }

  /** "PPO-ptx 5/15": the count of a PPO stage with two variants, in the one it is in. */
  private ppoCount(s: StageView): string | undefined {
    const n = s.stage === Stage.STAGE_PPO ? this.variantIterations(s.totalSteps) : undefined;
    if (n === undefined) return undefined;
    const v = Math.min(this.ppoVariant, PPO_VARIANTS.length - 1);
    return `${PPO_VARIANTS[v]} ${Math.min(n, Math.max(0, s.step - v * n))}/${n}`;
  }

  /** A stage as of `nowMs`: while it runs, the time since its last event counts up its elapsed time and down its ETA. */
  private viewAt(s: StageState, nowMs: number): StageView {
    const { atMs, ...view } = s;
    const since = Number.isFinite(atMs) && Number.isFinite(nowMs) ? Math.max(0, nowMs - atMs) : 0;
    if (view.status !== "running" || since === 0) return view;
    // An ETA that ran out gives way to the elapsed time.
    return { ...view, elapsedMs: view.elapsedMs + since, etaMs: view.etaMs > since ? view.etaMs - since : 0 };
  }

  /** The lines of the stages (only the running ones with `runningOnly`), as of `nowMs`. */
  private block(nowMs: number, runningOnly = false): string[] {
    const lines: string[] = [];
    const states = [...this.stages.values()].sort((a, b) => a.stage - b.stage);
    for (const s of states) {
      if (runningOnly && s.status !== "running") continue;
      lines.push(this.stageLine(this.viewAt(s, nowMs)));
      if (s.stage === Stage.STAGE_PPO) {
        const m = this.metricsLine();
        if (m) lines.push(m);
      }
    }
    return lines;
  }

  private plainProgress(nowMs: number): string {
    this.dirty = false;
    this.lastPlainProgressMs = nowMs;
    return this.block(nowMs, true).map((l) => l + "\n").join("");
  }

  private redraw(messages: string[], nowMs: number): string {
    this.dirty = false;
    this.lastDrawMs = nowMs;
    const cut = (l: string) => ([...l].length >= this.opts.columns ? [...l].slice(0, Math.max(1, this.opts.columns - 1)).join("") : l);
    const block = this.block(nowMs).map(cut);
    const up = this.drawnLines > 0 ? `\r${ESC}${this.drawnLines}A${ESC}J` : "";
    this.drawnLines = block.length;
    // Messages can be long (paths, errors): they scroll above the block, wrapped by the terminal.
    return up + [...messages, ...block].map((l) => l + "\n").join("");
  }
}
