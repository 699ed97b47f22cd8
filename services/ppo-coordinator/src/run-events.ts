/**
 * A run's events as they go out: numbered, kept in memory for WatchRun's replay, appended to the
 * run folder's `events.jsonl` in order, published to NATS (a copy), recorded as OpenTelemetry
 * gauges (metrics), and handed to the live watchers.
 */
import { join } from "node:path";
import { appendFile } from "node:fs/promises";
import { ppoCoordinator } from "@rlhf/proto";
import type { Logger } from "@rlhf/grpc-kit";
import type { RunConfig } from "@rlhf/run-config";
import { isRunId } from "@rlhf/errors";
import { runEventKind, runEventMsgId, runSubject, type EventPublisher } from "@rlhf/events";
import { stageKey, type RecipeState, type StageName } from "./recipe/records";
import type { EventSink } from "./recipe/context";
import type { StageClock } from "./stage-clock";
import { recordRunMetrics } from "./metrics";

const { RunState, Stage } = ppoCoordinator;
type RunEvent = ppoCoordinator.RunEvent;

/** The proto Stage of a recipe stage. */
export const stageOf = (s: StageName): ppoCoordinator.Stage => ppoCoordinator.stageFromJSON(stageKey(s));

/** The states a run ends in. */
export const TERMINAL = new Set([RunState.RUN_STATE_SUCCEEDED, RunState.RUN_STATE_FAILED, RunState.RUN_STATE_CANCELLED]);

/** A run as the run store holds it. */
export interface RunRecord {
  run: ppoCoordinator.Run;
  config: RunConfig;
  events: RunEvent[];
  watchers: Set<(e: RunEvent) => void>;
  abort?: AbortController;
  state: RecipeState;
  /** Settles when the background execution ends. */
  finished?: Promise<void>;
  /** Set by stopAll: the run stops because the coordinator does, not because it was cancelled. */
  stopping?: boolean;
}

export class RunEventLog {
  /** Appends are ordered: each waits for the previous one. */
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly log: Logger,
    /** NATS_URL's publisher: every event also goes to `rlhf.runs.<run id>.<kind>` (a copy; events.jsonl is the record). */
    private readonly nats?: Pick<EventPublisher, "publish">,
  ) {}

  /** Resolves once every event emitted so far is in its events.jsonl. */
  written(): Promise<void> {
    return this.pending;
  }

  emit(payload: RunEvent["payload"], r: RunRecord): void {
    const event: RunEvent = { runId: r.run.id, sequence: (r.events.at(-1)?.sequence ?? 0) + 1, time: new Date(), payload };
    r.events.push(event);
    r.run.lastEventSequence = event.sequence;
    r.run.updateTime = event.time;
    if (payload?.$case === "metrics" && payload.metrics.stage === Stage.STAGE_PPO) {
      r.run.lastMetrics = payload.metrics.values;
      r.run.iteration = payload.metrics.step;
    }
    // Training signals as OpenTelemetry gauges (rlhf.objective.kl{rlhf.run_id, ...}): here only.
    if (payload?.$case === "metrics") recordRunMetrics(r.run.id, payload.metrics, r.config);
    const json = ppoCoordinator.RunEvent.toJSON(event) as Record<string, unknown>;
    const line = JSON.stringify(json) + "\n";
    // The same bytes to NATS, with a message id JetStream de-duplicates on; publish() only buffers.
    const kind = runEventKind(json);
    if (this.nats && kind && isRunId(r.run.id)) this.nats.publish(runSubject(r.run.id, kind), Buffer.from(line.slice(0, -1)), runEventMsgId(r.run.id, event.sequence));
    this.pending = this.pending.then(() => appendFile(join(r.run.runDir, "events.jsonl"), line)).catch((e) => this.log.error({ err: (e as Error).message }, "events.jsonl write failed"));
    if (payload?.$case === "stateChanged" && TERMINAL.has(payload.stateChanged.toState)) {
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

  /**
   * The sink `r`'s recipe reports through: progress (timed by the stage in progress's clock, if
   * any: ./stage-clock.ts), metrics and checkpoints, each as this run's event.
   */
  sink(r: RunRecord, clock: () => StageClock | undefined): EventSink {
    return {
      progress: (p) => {
        const e = { ...p, stage: stageOf(p.stage) };
        const c = clock();
        this.emit({ $case: "stageProgress", stageProgress: c ? c.progress(e) : e }, r);
      },
      metrics: (m) => this.emit({ $case: "metrics", metrics: { ...m, stage: stageOf(m.stage) } }, r),
      checkpoint: (c) => {
        r.run.lastCheckpointDir = c.dir;
        this.emit({ $case: "checkpointWritten", checkpointWritten: { ...c, stage: stageOf(c.stage) } }, r);
      },
    };
  }
}
