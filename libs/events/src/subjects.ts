/**
 * The NATS subjects of run events and the JetStream stream that keeps them.
 *
 * | subject                          | published by    | payload (JSON)                                        |
 * |----------------------------------|-----------------|-------------------------------------------------------|
 * | `rlhf.runs.<runId>.state`        | ppo-coordinator | RunEvent with `stateChanged` (a line of events.jsonl)  |
 * | `rlhf.runs.<runId>.stage`        | ppo-coordinator | RunEvent with `stageProgress`                         |
 * | `rlhf.runs.<runId>.metrics`      | ppo-coordinator | RunEvent with `metrics`                               |
 * | `rlhf.runs.<runId>.checkpoint`   | ppo-coordinator | RunEvent with `checkpointWritten`                     |
 * | `rlhf.runs.<runId>.weights`      | policy          | {@link WeightsEvent}                                  |
 * | `rlhf.policy.weights`            | policy          | {@link WeightsEvent} of a call that named no run      |
 */
import { isRunId, RUN_ID_RULE } from "@rlhf/errors";

/** Name of the JetStream stream of run events. */
export const STREAM_NAME = "RLHF_RUNS";
/** Subject prefix of a run's events: `rlhf.runs.<runId>.<kind>`. */
export const RUN_SUBJECT_PREFIX = "rlhf.runs";
/** Subject of the policy's weights events when the call named no run. */
export const POLICY_WEIGHTS_SUBJECT = "rlhf.policy.weights";
/** Subjects the stream captures (run events and run-less policy events). */
export const STREAM_SUBJECTS: readonly string[] = [`${RUN_SUBJECT_PREFIX}.>`, "rlhf.policy.>"];

/** The last subject token of a run event. */
export type EventKind = "state" | "stage" | "metrics" | "checkpoint" | "weights" | "log";
export const EVENT_KINDS: readonly EventKind[] = ["state", "stage", "metrics", "checkpoint", "weights", "log"];

/** `rlhf.runs.<runId>.<kind>`; throws on a run id that is not {@link RUN_ID_RULE} (no dots or wildcards: one subject token). */
export function runSubject(runId: string, kind: EventKind): string {
  if (!isRunId(runId)) throw new Error(`run id must be ${RUN_ID_RULE}, got ${JSON.stringify(runId)}`);
  return `${RUN_SUBJECT_PREFIX}.${runId}.${kind}`;
}

/** `rlhf.runs.<runId>.>`: every event of one run. */
export function runSubjects(runId: string): string {
  if (!isRunId(runId)) throw new Error(`run id must be ${RUN_ID_RULE}, got ${JSON.stringify(runId)}`);
  return `${RUN_SUBJECT_PREFIX}.${runId}.>`;
}

/** The kind of a subject `rlhf.runs.<runId>.<kind>` (undefined for other subjects). */
export function kindOfSubject(subject: string): string | undefined {
  const parts = subject.split(".");
  return parts.length === 4 && `${parts[0]}.${parts[1]}` === RUN_SUBJECT_PREFIX ? parts[3] : undefined;
}

/**
 * The kind of a coordinator RunEvent in its JSON form (a line of events.jsonl): the field its
 * `payload` oneof set. Undefined when it sets none we know.
 */
export function runEventKind(eventJson: Readonly<Record<string, unknown>>): EventKind | undefined {
  if (eventJson.stateChanged !== undefined) return "state";
  if (eventJson.stageProgress !== undefined) return "stage";
  if (eventJson.metrics !== undefined) return "metrics";
  if (eventJson.checkpointWritten !== undefined) return "checkpoint";
  return undefined;
}

/** Message id of a run event: JetStream drops a second message with the same id (re-publish after a reconnect). */
export function runEventMsgId(runId: string, sequence: number | string): string {
  return `${runId}-${sequence}`;
}

/** Payload of a policy weights event (`rlhf.runs.<runId>.weights` or `rlhf.policy.weights`). */
export interface WeightsEvent {
  /** The run the call named; absent when it named none. */
  runId?: string;
  /** When the version changed (ISO 8601). */
  time: string;
  weights: {
    /** "policy". */
    modelId: string;
    /** The policy's weights version now (every optimiser step adds 1; a load sets it). */
    version: number;
    /** Where the weights came from (checkpoint folder, "random:<seed>", ...). */
    source: string;
    /** The call that changed it: "sft", "ppo_update" or "load_checkpoint". */
    reason: string;
    /** The critic's version, when a critic is loaded. */
    criticVersion?: number;
  };
}
