/**
 * The coordinator's runs: each one a folder under RUNS_DIR holding `run.json` (the Run message),
 * `config.json` (the resolved config), `events.jsonl` (every RunEvent, numbered), `recipe-state.json`
 * (what a resume needs), `checkpoints/` and the report. A run executes in the background; watchers
 * get its stored events, then new ones as they happen.
 */
import { join } from "node:path";
import { mkdir, readdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { ppoCoordinator } from "@rlhf/proto";
import { DomainError, FailedPreconditionError, NotFoundError, checkRunId, confinePath, writeJsonAtomic, type PathRoots } from "@rlhf/errors";
import type { Logger } from "@rlhf/grpc-kit";
import type { RecipeContext } from "./recipe/context";
import { runRecipe } from "./recipe/driver";
import { createGateway, type Clients } from "./recipe/gateway";
import { emptyState, stageKey } from "./recipe/records";
import { writeDataFiles } from "./recipe/user-data";
import { writeRunReport } from "./report";
import { checkConfigPaths, parseStartRequest } from "./start-request";
import { readRunFolder, removeDriverMark, writeDriverMark } from "./run-folder";
import { RunEventLog, TERMINAL, stageOf, type RunRecord } from "./run-events";
import { StageClock } from "./stage-clock";
import { RunLeases } from "./leases";
import { listRuns } from "./run-list";
import type { EventPublisher } from "@rlhf/events";
import type { RunConfig } from "@rlhf/run-config";

const { RunState, Stage } = ppoCoordinator;
type Run = ppoCoordinator.Run;
type RunEvent = ppoCoordinator.RunEvent;

/** Why a run that the coordinator's shutdown interrupted is FAILED (as init() says of one a killed coordinator left RUNNING). */
const STOPPED_MESSAGE = "the coordinator stopped while the run was in progress; ResumeRun continues it from its last checkpoint";

export class RunStore {
  private readonly runs = new Map<string, RunRecord>();
  private readonly events: RunEventLog;

  constructor(
    readonly runsDir: string,
    private readonly clients: Clients,
    private readonly log: Logger,
    /** NATS_URL's publisher: every event also goes to `rlhf.runs.<run id>.<kind>` (a copy; events.jsonl is the record). */
    private readonly nats?: Pick<EventPublisher, "publish">,
    /** DATA_ROOT: where the files a run config names must be (see {@link checkConfigPaths}); unset: anywhere (tests). */
    private readonly dataRoots?: PathRoots,
  ) {
    this.events = new RunEventLog(log, nats);
  }

  /** Loads the runs found in RUNS_DIR; one that was RUNNING or PENDING is marked FAILED (resumable). */
  async init(): Promise<void> {
    await mkdir(this.runsDir, { recursive: true });
    for (const name of await readdir(this.runsDir)) {
      const dir = join(this.runsDir, name);
      if (!existsSync(join(dir, "run.json"))) continue;
      try {
        const { run, config, events, state } = await readRunFolder(dir, this.log);
        const rec: RunRecord = { run, config, events, watchers: new Set(), state };
        this.runs.set(run.id, rec);
        if (run.state === RunState.RUN_STATE_RUNNING || run.state === RunState.RUN_STATE_PENDING) {
          await this.transition(rec, RunState.RUN_STATE_FAILED, STOPPED_MESSAGE);
        }
      } catch (e) {
        this.log.warn({ dir, err: (e as Error).message }, "skipping an unreadable run folder");
      }
    }
  }

  private dirOf(id: string): string {
    return join(this.runsDir, id);
  }

  /** Validates and resolves the config; creates and starts the run unless `validateOnly`. */
  async start(req: ppoCoordinator.StartRunRequest): Promise<Run> {
    const { config, configJson, userData } = await parseStartRequest(req, this.dataRoots);
    for (const w of userData.warnings) this.log.warn({ warning: w }, "ignored field in a data file");
    if (req.validateOnly) return ppoCoordinator.Run.fromPartial({ configJson, displayName: req.displayName });
    if (req.runId !== "") checkRunId(req.runId, "run_id");
    const existing = req.runId ? this.runs.get(req.runId) : undefined;
    if (existing) {
      if (existing.run.configJson === configJson) return existing.run;
      throw new DomainError("ALREADY_EXISTS", `run ${req.runId} exists with a different config`, "run_id");
    }
    this.checkNoActiveRun(req.runId);
    const id = req.runId || `run-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, "").toLowerCase()}-${randomBytes(3).toString("hex")}`;
    // The id is [a-z0-9-] only; the real path must still be in RUNS_DIR (no symlinked run folder).
    const dir = confinePath(this.dirOf(id), "run_id", { dirs: [this.runsDir], name: "RUNS_DIR" });
    // Another run (of another coordinator) holding a model service: FAILED_PRECONDITION naming it.
    const leases = await RunLeases.take(this.clients, id, this.log);
    const rec = await this.create(id, dir, req, config, configJson, userData.files).catch(async (e: unknown) => {
      await leases.release();
      throw e;
    });
    this.execute(rec, leases);
    return rec.run;
  }

  /** The run's record and folder (config.json, data files, run.json), PENDING. */
  private async create(id: string, dir: string, req: ppoCoordinator.StartRunRequest, config: RunConfig, configJson: string, files: Parameters<typeof writeDataFiles>[1]): Promise<RunRecord> {
    await mkdir(dir, { recursive: true });
    const now = new Date();
    const run = ppoCoordinator.Run.fromPartial({
      id,
      displayName: req.displayName,
      state: RunState.RUN_STATE_PENDING,
      stage: Stage.STAGE_UNSPECIFIED,
      createTime: now,
      updateTime: now,
      runDir: dir,
      totalIterations: config.ppo.iterations * (config.ppo.compare_without_ptx ? 2 : 1),
      configJson,
    });
    const rec: RunRecord = { run, config, events: [], watchers: new Set(), state: emptyState() };
    this.runs.set(id, rec);
    await writeJsonAtomic(join(dir, "config.json"), config);
    await writeDataFiles(dir, files);
    await this.saveRun(rec);
    return rec;
  }

  /**
   * One run at a time: the model services hold one model each, and two runs driving them at once
   * would change each other's weights (one fails on a version clash, the other succeeds with wrong
   * figures). A run still PENDING or RUNNING (a cancelled one included, until its stage stops)
   * makes a second start or resume FAILED_PRECONDITION, naming it.
   */
  private checkNoActiveRun(except: string): void {
    for (const r of this.runs.values()) {
      if (r.run.id === except) continue;
      if (r.run.state === RunState.RUN_STATE_RUNNING || r.run.state === RunState.RUN_STATE_PENDING) {
        const what = r.run.cancelRequested ? "is stopping after a cancel" : `is ${ppoCoordinator.runStateToJSON(r.run.state)}`;
        throw new FailedPreconditionError(
          `run ${r.run.id} ${what} on this coordinator, whose model services hold one model each: one run at a time; wait for it to end or cancel it (CancelRun, or Ctrl-C in the rlhf that started it), then try again`,
        );
      }
    }
  }

  get(id: string): Run {
    return this.record(id).run;
  }

  private record(id: string): RunRecord {
    checkRunId(id, "run_id");
    const rec = this.runs.get(id);
    if (!rec) throw new NotFoundError("run_id", `no run ${JSON.stringify(id)}`);
    return rec;
  }

  list(req: ppoCoordinator.ListRunsRequest): ppoCoordinator.ListRunsResponse {
    return listRuns([...this.runs.values()].map((r) => r.run), req);
  }

  async cancel(id: string): Promise<Run> {
    const rec = this.record(id);
    const s = rec.run.state;
    if (s === RunState.RUN_STATE_SUCCEEDED || s === RunState.RUN_STATE_FAILED) throw new FailedPreconditionError(`run ${id} is ${ppoCoordinator.runStateToJSON(s)}: nothing to cancel`);
    if (s === RunState.RUN_STATE_CANCELLED || rec.run.cancelRequested) return rec.run;
    rec.run.cancelRequested = true;
    rec.run.updateTime = new Date();
    rec.abort?.abort(new DomainError("CANCELLED", "run cancelled"));
    await this.saveRun(rec);
    return rec.run;
  }

  async resume(id: string): Promise<Run> {
    const rec = this.record(id);
    const s = rec.run.state;
    if (s !== RunState.RUN_STATE_FAILED && s !== RunState.RUN_STATE_CANCELLED) throw new FailedPreconditionError(`run ${id} is ${ppoCoordinator.runStateToJSON(s)}: only FAILED or CANCELLED runs resume`);
    checkConfigPaths(rec.config, this.dataRoots); // DATA_ROOT may have changed since the start
    this.checkNoActiveRun(id);
    const leases = await RunLeases.take(this.clients, id, this.log);
    rec.run.resumeCount++;
    rec.run.cancelRequested = false;
    rec.run.errorMessage = "";
    rec.run.endTime = undefined;
    await this.transition(rec, RunState.RUN_STATE_PENDING).catch(async (e: unknown) => {
      await leases.release();
      throw e;
    });
    this.execute(rec, leases);
    return rec.run;
  }

  /** Stored events after `after`, then live ones; returns an unsubscribe function. */
  watch(id: string, after: number, onEvent: (e: RunEvent) => void): { replay: RunEvent[]; terminal: boolean; unsubscribe: () => void } {
    const rec = this.record(id);
    const replay = rec.events.filter((e) => e.sequence > after);
    const terminal = TERMINAL.has(rec.run.state);
    if (terminal) return { replay, terminal, unsubscribe: () => undefined };
    rec.watchers.add(onEvent);
    return { replay, terminal, unsubscribe: () => rec.watchers.delete(onEvent) };
  }

  /**
   * Shutdown: stops every running run at its next call boundary (its in-flight calls are
   * cancelled) and waits until each has recorded its end: FAILED and resumable, or CANCELLED
   * when a CancelRun came first. The run folder thus ends with a terminal event whenever the
   * coordinator stops gracefully (SIGTERM, its parent `rlhf` gone); after a SIGKILL, init()
   * marks it at the next start.
   */
  async stopAll(): Promise<void> {
    for (const rec of this.runs.values()) {
      if (!rec.abort) continue;
      rec.stopping = true;
      rec.abort.abort(new DomainError("UNAVAILABLE", "the coordinator is shutting down"));
    }
    await Promise.all([...this.runs.values()].map((r) => r.finished?.catch(() => undefined)));
  }

  private async saveRun(rec: RunRecord): Promise<void> {
    await writeJsonAtomic(join(rec.run.runDir, "run.json"), ppoCoordinator.Run.toJSON(rec.run));
  }

  private async saveState(rec: RunRecord): Promise<void> {
    await writeJsonAtomic(join(rec.run.runDir, "recipe-state.json"), rec.state);
  }

  private emit(payload: RunEvent["payload"], r: RunRecord): void {
    this.events.emit(payload, r);
  }

  private async transition(rec: RunRecord, to: ppoCoordinator.RunState, error = ""): Promise<void> {
    const from = rec.run.state;
    rec.run.state = to;
    const now = new Date();
    if (to === RunState.RUN_STATE_RUNNING) rec.run.startTime = now;
    if (TERMINAL.has(to)) rec.run.endTime = now;
    if (to === RunState.RUN_STATE_FAILED) rec.run.errorMessage = error;
    this.emit({ $case: "stateChanged", stateChanged: { fromState: from, toState: to, stage: rec.run.stage, errorMessage: error } }, rec);
    await this.events.written();
    await this.saveRun(rec);
    if (TERMINAL.has(to)) rec.watchers.clear();
  }

  /** Runs the recipe in the background (./recipe/driver.ts), skipping the stages a previous attempt finished. */
  private execute(rec: RunRecord, leases: RunLeases): void {
    leases.keepAlive();
    const abort = new AbortController();
    rec.abort = abort;
    // The stage in progress: its events' elapsed times and its time in report.json (./stage-clock.ts).
    let clock: StageClock | undefined;
    const ctx: RecipeContext = {
      cfg: rec.config,
      services: createGateway(this.clients, abort.signal, rec.run.id),
      runDir: rec.run.runDir,
      runId: rec.run.id,
      log: this.log.child({ runId: rec.run.id }),
      signal: abort.signal,
      events: this.events.sink(rec, () => clock),
    };
    rec.finished = (async () => {
      try {
        await mkdir(join(rec.run.runDir, "checkpoints"), { recursive: true });
        await writeDriverMark(rec.run.runDir);
        await this.transition(rec, RunState.RUN_STATE_RUNNING);
        await runRecipe(ctx, rec.state, {
          stageStarted: (s) => {
            rec.run.stage = stageOf(s);
            clock = new StageClock(rec.run.stage, rec.state.stageMs[stageKey(s)] ?? 0, Date.now());
          },
          stageElapsed: () => {
            const { stageMs, closing } = (clock as StageClock).finish(Date.now());
            if (closing) this.emit({ $case: "stageProgress", stageProgress: closing }, rec);
            return stageMs;
          },
          stageDone: async () => {
            clock = undefined;
            await this.saveState(rec);
            await this.saveRun(rec);
          },
          saveState: () => this.saveState(rec),
          writeReport: async (data, state, backend) => {
            const acceptance = await writeRunReport(rec.run, rec.config, state, data, backend);
            ctx.events.metrics({ stage: "evaluation", step: 1, values: acceptance });
          },
        });
        // Given back before the end is recorded: whoever waits for it may start the next run.
        await leases.release();
        await this.transition(rec, RunState.RUN_STATE_SUCCEEDED);
      } catch (e) {
        await leases.release();
        await this.saveState(rec).catch(() => undefined);
        if (rec.stopping && !rec.run.cancelRequested) await this.transition(rec, RunState.RUN_STATE_FAILED, `${ppoCoordinator.stageToJSON(rec.run.stage)}: ${STOPPED_MESSAGE}`);
        else if (abort.signal.aborted) await this.transition(rec, RunState.RUN_STATE_CANCELLED);
        else {
          const msg = (e as Error).message ?? String(e);
          this.log.error({ runId: rec.run.id, err: msg, stack: (e as Error).stack }, "run failed");
          await this.transition(rec, RunState.RUN_STATE_FAILED, `${ppoCoordinator.stageToJSON(rec.run.stage)}: ${msg}`);
        }
      } finally {
        rec.abort = undefined;
        rec.stopping = false;
        await removeDriverMark(rec.run.runDir);
      }
    })();
  }
}
