/**
 * The coordinator's runs: each one a folder under RUNS_DIR holding `run.json` (the Run message),
 * `config.json` (the resolved config), `events.jsonl` (every RunEvent, numbered), `recipe-state.json`
 * (what a resume needs), `checkpoints/` and the report. A run executes in the background; watchers
 * get its stored events, then new ones as they happen.
 */
import { join } from "node:path";
import { appendFile, mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { ppoCoordinator } from "@rlhf/proto";
import { DomainError, FailedPreconditionError, InvalidArgumentError, NotFoundError, confinePath, type PathRoots } from "@rlhf/errors";
import type { Logger } from "@rlhf/grpc-kit";
import { PATH_KEYS, RUN_PRESET_NAMES, mergeRunConfigs, presetRunConfig, resolveRunConfig, type RunConfig, type RunPresetName } from "@rlhf/run-config";
import type { Clients, RecipeContext } from "./recipe/context";
import { emptyState, evaluationStage, ppoStage, prepareRunDir, pretrainStage, rankingsStage, recipeData, restoreLabelers, rewardModelStage, sftStage, type RankedSamples, type RecipeState } from "./recipe/recipe";
import { writeRunReport } from "./report";
import { stageTrace } from "./recipe/trace";
import { checkRunInputs, loadUserData, writeDataFiles } from "./recipe/user-data";
import { getTokenizer } from "@rlhf/model/tokens";
import { recordRunMetrics } from "./metrics";
import { StageClock } from "./stage-clock";
import { isRunId, runEventKind, runEventMsgId, runSubject, type EventPublisher } from "@rlhf/events";

const { RunState, Stage } = ppoCoordinator;
type Run = ppoCoordinator.Run;
type RunEvent = ppoCoordinator.RunEvent;

const RUN_ID = /^[a-z0-9-]{1,64}$/;
/** The deepest nesting a run config may have (the real one is 4 levels deep). */
const MAX_CONFIG_DEPTH = 32;

/**
 * Refuses a JSON value nested deeper than `max` levels (measured without recursion): every later
 * step (merge, validation, copies) recurses, and a config 10,000 levels deep would overflow the
 * stack there and answer INTERNAL.
 */
function checkNesting(value: unknown, field: string, max: number): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== "object" || v === null) continue;
    if (depth > max) throw new InvalidArgumentError(field, `is nested more than ${max} levels deep`);
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
}

const TERMINAL = new Set([RunState.RUN_STATE_SUCCEEDED, RunState.RUN_STATE_FAILED, RunState.RUN_STATE_CANCELLED]);

interface RunRecord {
  run: Run;
  config: RunConfig;
  events: RunEvent[];
  watchers: Set<(e: RunEvent) => void>;
  abort?: AbortController;
  state: RecipeState;
  /** Settles when the background execution ends. */
  finished?: Promise<void>;
}

/**
 * Every file or folder a run config names (`data.files.*`, `model.base_checkpoint`) must resolve,
 * symlinks included, inside DATA_ROOT: PERMISSION_DENIED naming the key otherwise, and
 * INVALID_ARGUMENT for a NUL byte. Checked before any of them is read.
 */
export function checkConfigPaths(config: RunConfig, roots: PathRoots | undefined): void {
  if (!roots) return;
  for (const key of PATH_KEYS) {
    let v: unknown = config;
    for (const part of key.split(".")) v = v && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined;
    if (v === null || v === undefined) continue;
    confinePath(v, key, roots);
  }
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + "\n");
  await rename(tmp, path);
}

export class RunStore {
  private readonly runs = new Map<string, RunRecord>();

  constructor(
    readonly runsDir: string,
    private readonly clients: Clients,
    private readonly log: Logger,
    /** NATS_URL's publisher: every event also goes to `rlhf.runs.<run id>.<kind>` (a copy; events.jsonl is the record). */
    private readonly nats?: Pick<EventPublisher, "publish">,
    /** DATA_ROOT: where the files a run config names must be (see {@link checkConfigPaths}); unset: anywhere (tests). */
    private readonly dataRoots?: PathRoots,
  ) {}

  /** Loads the runs found in RUNS_DIR; one that was RUNNING or PENDING is marked FAILED (resumable). */
  async init(): Promise<void> {
    await mkdir(this.runsDir, { recursive: true });
    for (const name of await readdir(this.runsDir)) {
      const dir = join(this.runsDir, name);
      if (!existsSync(join(dir, "run.json"))) continue;
      try {
        const run = ppoCoordinator.Run.fromJSON(JSON.parse(await readFile(join(dir, "run.json"), "utf8")));
        const config = resolveRunConfig(JSON.parse(run.configJson));
        const lines = (await readFile(join(dir, "events.jsonl"), "utf8").catch(() => "")).split("\n").filter((l) => l.trim() !== "");
        // A coordinator killed while appending leaves a torn last line: drop it (its event is lost, the rest stands).
        const parsed = (l: string) => {
          try {
            return ppoCoordinator.RunEvent.fromJSON(JSON.parse(l));
          } catch {
            return undefined;
          }
        };
        if (lines.length && !parsed(lines[lines.length - 1])) {
          this.log.warn({ dir, line: lines.length }, "events.jsonl ends with a torn line (the coordinator was killed while writing it): dropped");
          lines.pop();
          await writeFile(join(dir, "events.jsonl"), lines.map((l) => l + "\n").join(""));
        }
        const events = lines.map((l) => ppoCoordinator.RunEvent.fromJSON(JSON.parse(l)));
        const state = existsSync(join(dir, "recipe-state.json")) ? (JSON.parse(await readFile(join(dir, "recipe-state.json"), "utf8")) as RecipeState) : emptyState();
        const rec: RunRecord = { run, config, events, watchers: new Set(), state };
        this.runs.set(run.id, rec);
        if (run.state === RunState.RUN_STATE_RUNNING || run.state === RunState.RUN_STATE_PENDING) {
          await this.transition(rec, RunState.RUN_STATE_FAILED, "the coordinator stopped while the run was in progress; ResumeRun continues it from its last checkpoint");
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
    if (Buffer.byteLength(req.configJson) > 1024 * 1024) throw new InvalidArgumentError("config_json", "exceeds 1 MiB");
    // An empty request is a mistake, not "every default": that would start a full run.
    if (req.configJson.trim() === "") throw new InvalidArgumentError("config_json", 'is empty: send a run config ("{}" for every default, {"preset": "tiny"} for the smoke run)');
    let json: unknown;
    try {
      json = JSON.parse(req.configJson);
    } catch (e) {
      throw new InvalidArgumentError("config_json", `not valid JSON: ${(e as Error).message}`);
    }
    checkNesting(json, "config_json", MAX_CONFIG_DEPTH);
    // A top-level "preset" ("tiny" or "default") expands to that demo configuration, which the
    // other keys then override.
    if (typeof json === "object" && json !== null && !Array.isArray(json) && "preset" in json) {
      const { preset, ...rest } = json as Record<string, unknown>;
      if (typeof preset !== "string" || !(RUN_PRESET_NAMES as readonly string[]).includes(preset)) {
        throw new InvalidArgumentError("config_json.preset", `must be one of ${RUN_PRESET_NAMES.join(", ")}, got ${JSON.stringify(preset)}`);
      }
      json = mergeRunConfigs(presetRunConfig(preset as RunPresetName), rest);
    }
    const config = resolveRunConfig(json);
    checkConfigPaths(config, this.dataRoots);
    // The user's data files are read and checked now: a bad line fails StartRun (validate_only too) before anything is created.
    const userData = loadUserData(config, getTokenizer(config.model.tokenizer));
    for (const w of userData.warnings) this.log.warn({ warning: w }, "ignored field in a data file");
    const configJson = JSON.stringify(config);
    if (Buffer.byteLength(req.displayName) > 256) throw new InvalidArgumentError("display_name", "exceeds 256 bytes");
    if (req.validateOnly) return ppoCoordinator.Run.fromPartial({ configJson, displayName: req.displayName });
    if (req.runId !== "" && !RUN_ID.test(req.runId)) throw new InvalidArgumentError("run_id", `must be 1..64 of [a-z0-9-], got ${JSON.stringify(req.runId)}`);
    const existing = req.runId ? this.runs.get(req.runId) : undefined;
    if (existing) {
      if (existing.run.configJson === configJson) return existing.run;
      throw new DomainError("ALREADY_EXISTS", `run ${req.runId} exists with a different config`, "run_id");
    }
    this.checkNoActiveRun(req.runId);
    const id = req.runId || `run-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, "").toLowerCase()}-${randomBytes(3).toString("hex")}`;
    // The id is [a-z0-9-] only; the real path must still be in RUNS_DIR (no symlinked run folder).
    const dir = confinePath(this.dirOf(id), "run_id", { dirs: [this.runsDir], name: "RUNS_DIR" });
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
    await writeDataFiles(dir, userData.files);
    await this.saveRun(rec);
    this.execute(rec);
    return run;
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
    if (!RUN_ID.test(id)) throw new InvalidArgumentError("run_id", `must be 1..64 of [a-z0-9-], got ${JSON.stringify(id.slice(0, 80))}`);
    const rec = this.runs.get(id);
    if (!rec) throw new NotFoundError("run_id", `no run ${JSON.stringify(id)}`);
    return rec;
  }

  list(req: ppoCoordinator.ListRunsRequest): ppoCoordinator.ListRunsResponse {
    const size = req.pageSize === 0 ? 20 : Math.min(req.pageSize, 100);
    const filter = [...req.states].sort().join(",");
    let offset = 0;
    if (req.pageToken) {
      const [f, o] = Buffer.from(req.pageToken, "base64url").toString().split("|");
      if (f !== filter || !/^\d+$/.test(o ?? "")) throw new InvalidArgumentError("page_token", "not a token of this listing");
      offset = Number(o);
    }
    const all = [...this.runs.values()]
      .map((r) => r.run)
      .filter((r) => req.states.length === 0 || req.states.includes(r.state))
      .sort((a, b) => (b.createTime?.getTime() ?? 0) - (a.createTime?.getTime() ?? 0));
    const page = all.slice(offset, offset + size);
    const next = offset + size < all.length ? Buffer.from(`${filter}|${offset + size}`).toString("base64url") : "";
    return { runs: page, nextPageToken: next };
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
    rec.run.resumeCount++;
    rec.run.cancelRequested = false;
    rec.run.errorMessage = "";
    rec.run.endTime = undefined;
    await this.transition(rec, RunState.RUN_STATE_PENDING);
    this.execute(rec);
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

  /** Cancels every running run and waits for them (shutdown). */
  async stopAll(): Promise<void> {
    for (const rec of this.runs.values()) rec.abort?.abort(new DomainError("CANCELLED", "the coordinator is shutting down"));
    await Promise.all([...this.runs.values()].map((r) => r.finished?.catch(() => undefined)));
  }

  private async saveRun(rec: RunRecord): Promise<void> {
    await writeJsonAtomic(join(rec.run.runDir, "run.json"), ppoCoordinator.Run.toJSON(rec.run));
  }

  private async saveState(rec: RunRecord): Promise<void> {
    await writeJsonAtomic(join(rec.run.runDir, "recipe-state.json"), rec.state);
  }

  private emit(rec: RunEvent["payload"], r: RunRecord): void {
    const event: RunEvent = { runId: r.run.id, sequence: (r.events.at(-1)?.sequence ?? 0) + 1, time: new Date(), payload: rec };
    r.events.push(event);
    r.run.lastEventSequence = event.sequence;
    r.run.updateTime = event.time;
    if (rec?.$case === "metrics" && rec.metrics.stage === Stage.STAGE_PPO) {
      r.run.lastMetrics = rec.metrics.values;
      r.run.iteration = rec.metrics.step;
    }
    // Training signals as OpenTelemetry gauges (rlhf.objective.kl{rlhf.run_id, ...}): here only.
    if (rec?.$case === "metrics") recordRunMetrics(r.run.id, rec.metrics, r.config);
    // Appends are ordered: each waits for the previous one.
    const json = ppoCoordinator.RunEvent.toJSON(event) as Record<string, unknown>;
    const line = JSON.stringify(json) + "\n";
    // The same bytes to NATS, with a message id JetStream de-duplicates on; publish() only buffers.
    const kind = runEventKind(json);
    if (this.nats && kind && isRunId(r.run.id)) this.nats.publish(runSubject(r.run.id, kind), Buffer.from(line.slice(0, -1)), runEventMsgId(r.run.id, event.sequence));
    this.pending = this.pending.then(() => appendFile(join(r.run.runDir, "events.jsonl"), line)).catch((e) => this.log.error({ err: (e as Error).message }, "events.jsonl write failed"));
    if (rec?.$case === "stateChanged" && TERMINAL.has(rec.stateChanged.toState)) {
      // The last event a watcher gets: only once it is in events.jsonl, so that a client whose
      // WatchRun ended finds the run folder's record complete.
      const watchers = [...r.watchers];
      this.pending = this.pending.then(() => {
        for (const w of watchers) {
          try {
            w(event);
          } catch (e) {
            this.log.error({ err: (e as Error).message }, "run watcher failed");
          }
        }
      });
    } else {
      for (const w of r.watchers) w(event);
    }
  }
  private pending: Promise<void> = Promise.resolve();

  private async transition(rec: RunRecord, to: ppoCoordinator.RunState, error = ""): Promise<void> {
    const from = rec.run.state;
    rec.run.state = to;
    const now = new Date();
    if (to === RunState.RUN_STATE_RUNNING) rec.run.startTime = now;
    if (TERMINAL.has(to)) rec.run.endTime = now;
    if (to === RunState.RUN_STATE_FAILED) rec.run.errorMessage = error;
    this.emit({ $case: "stateChanged", stateChanged: { fromState: from, toState: to, stage: rec.run.stage, errorMessage: error } }, rec);
    await this.pending;
    await this.saveRun(rec);
    if (TERMINAL.has(to)) rec.watchers.clear();
  }

  /** Runs the recipe in the background, skipping the stages a previous attempt finished. */
  private execute(rec: RunRecord): void {
    const abort = new AbortController();
    rec.abort = abort;
    // The stage in progress: its events' elapsed times and its time in report.json (./stage-clock.ts).
    let clock: StageClock | undefined;
    const ctx: RecipeContext = {
      cfg: rec.config,
      clients: this.clients,
      runDir: rec.run.runDir,
      runId: rec.run.id,
      log: this.log.child({ runId: rec.run.id }),
      signal: abort.signal,
      events: {
        progress: (p) => this.emit({ $case: "stageProgress", stageProgress: clock ? clock.progress(p) : p }, rec),
        metrics: (m) => this.emit({ $case: "metrics", metrics: m }, rec),
        checkpoint: (c) => {
          rec.run.lastCheckpointDir = c.dir;
          this.emit({ $case: "checkpointWritten", checkpointWritten: c }, rec);
        },
      },
    };
    rec.finished = (async () => {
      try {
        await prepareRunDir(rec.run.runDir);
        await this.transition(rec, RunState.RUN_STATE_RUNNING);
        const data = recipeData(ctx);
        restoreLabelers(ctx, data, rec.state);
        // Exact resume needs the same data files; the corpus must be tokenised as the policy's.
        await checkRunInputs(ctx, data.files);
        let ranked: RankedSamples[] | undefined;
        // `finish` ends the stage's clock: its time for report.json, said to watchers by a closing progress event.
        const stage = async (s: ppoCoordinator.Stage, fn: (finish: () => number) => Promise<void>) => {
          if (rec.state.stagesDone.includes(s)) return;
          if (abort.signal.aborted) throw abort.signal.reason;
          rec.run.stage = s;
          const key = ppoCoordinator.stageToJSON(s);
          const c = (clock = new StageClock(s, rec.state.stageMs[key] ?? 0, Date.now()));
          const finish = () => {
            const { stageMs, closing } = c.finish(Date.now());
            if (closing) this.emit({ $case: "stageProgress", stageProgress: closing }, rec);
            return stageMs;
          };
          // Each stage is one trace (a root span `stage.<name>`; recipe/trace.ts).
          await stageTrace(ctx, key.replace(/^STAGE_/, "").toLowerCase(), () => fn(finish));
          rec.state.stageMs[key] = finish();
          clock = undefined;
          rec.state.stagesDone.push(s);
          await this.saveState(rec);
          await this.saveRun(rec);
        };
        await stage(Stage.STAGE_PRETRAIN, () => pretrainStage(ctx, data, rec.state));
        await stage(Stage.STAGE_SFT, () => sftStage(ctx, data, rec.state));
        // Rankings are the reward model's input; a resume that redoes the reward model redoes them.
        if (!rec.state.stagesDone.includes(Stage.STAGE_REWARD_MODEL)) {
          rec.state.stagesDone = rec.state.stagesDone.filter((s) => s !== Stage.STAGE_RANKINGS);
          await stage(Stage.STAGE_RANKINGS, async () => {
            ranked = await rankingsStage(ctx, data, rec.state);
          });
          await stage(Stage.STAGE_REWARD_MODEL, () => rewardModelStage(ctx, data, rec.state, ranked as RankedSamples[]));
        }
        await stage(Stage.STAGE_PPO, () => ppoStage(ctx, data, rec.state, () => this.saveState(rec)));
        await stage(Stage.STAGE_EVALUATION, async (finish) => {
          await evaluationStage(ctx, data, rec.state);
          const backend = (await this.clients.policy.unary("getInfo", {}, { signal: abort.signal })).backend;
          // The report is written inside this stage: its time so far is its time, in the report and the closing event.
          const key = ppoCoordinator.stageToJSON(Stage.STAGE_EVALUATION);
          const stageMs = { ...rec.state.stageMs, [key]: finish() };
          const acceptance = await writeRunReport(rec.run, rec.config, { ...rec.state, stageMs }, data, backend);
          ctx.events.metrics({ stage: Stage.STAGE_EVALUATION, step: 1, values: acceptance });
        });
        await this.transition(rec, RunState.RUN_STATE_SUCCEEDED);
      } catch (e) {
        await this.saveState(rec).catch(() => undefined);
        if (abort.signal.aborted) await this.transition(rec, RunState.RUN_STATE_CANCELLED);
        else {
          const msg = (e as Error).message ?? String(e);
          this.log.error({ runId: rec.run.id, err: msg, stack: (e as Error).stack }, "run failed");
          await this.transition(rec, RunState.RUN_STATE_FAILED, `${ppoCoordinator.stageToJSON(rec.run.stage)}: ${msg}`);
        }
      } finally {
        rec.abort = undefined;
      }
    })();
  }
}
