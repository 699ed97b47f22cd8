/** What every stage of the recipe gets: the config, the gateway to the services, the run folder, events. */
import type { Logger } from "@rlhf/grpc-kit";
import type { RunConfig } from "@rlhf/run-config";
import type { Gateway } from "./gateway";
import type { StageName, WeightsRef } from "./records";

/** Sinks of a run's events (the run store numbers them, writes events.jsonl and notifies watchers). */
export interface EventSink {
  progress(p: { stage: StageName; step: number; totalSteps: number; unit: string; etaMs: number; elapsedMs: number }): void;
  metrics(m: { stage: StageName; step: number; values: Record<string, number> }): void;
  checkpoint(c: { dir: string; stage: StageName; iteration: number; weights: WeightsRef[]; bytes: number }): void;
}

export interface RecipeContext {
  cfg: RunConfig;
  /** The model services, for this run (./gateway.ts). */
  services: Gateway;
  /** Absolute path of the run folder. */
  runDir: string;
  /** The run's id (policy calls carry it, so that the policy's weights events name the run). */
  runId?: string;
  events: EventSink;
  log: Logger;
  /** Aborted by CancelRun (or shutdown): stages stop at the next call boundary. */
  signal: AbortSignal;
}
