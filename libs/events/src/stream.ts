/**
 * The RLHF_RUNS stream: created on first connect when missing. An existing stream is kept as it
 * is, except that subjects it lacks are added, so operators may create it beforehand with their
 * own limits or replicas.
 */
import { DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { STREAM_NAME, STREAM_SUBJECTS } from "./subjects";

/** Settings of the stream when this library creates it. */
export interface StreamSettings {
  /** Default "RLHF_RUNS". */
  name: string;
  /** Default `rlhf.runs.>` and `rlhf.policy.>`. */
  subjects: readonly string[];
  /** Events older than this are deleted. Default 30 days. */
  maxAgeMs: number;
  /** Oldest events are deleted beyond this size. Default 1 GiB. */
  maxBytes: number;
  /** Largest event accepted. Default 1 MiB (the NATS server's default max_payload). */
  maxMsgBytes: number;
  /** A second message with the same message id within this window is dropped. Default 2 minutes. */
  duplicateWindowMs: number;
  /** Copies in a JetStream cluster. Default 1. */
  replicas: number;
}

export const DEFAULT_STREAM: Readonly<StreamSettings> = {
  name: STREAM_NAME,
  subjects: STREAM_SUBJECTS,
  maxAgeMs: 30 * 24 * 3600_000,
  maxBytes: 1024 ** 3,
  maxMsgBytes: 1024 ** 2,
  duplicateWindowMs: 120_000,
  replicas: 1,
};

/** The JetStream StreamConfig of `s`: file storage, limits retention, oldest discarded first. */
export function streamConfig(s: StreamSettings): Partial<StreamConfig> & { name: string } {
  return {
    name: s.name,
    subjects: [...s.subjects],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(s.maxAgeMs),
    max_bytes: s.maxBytes,
    max_msg_size: s.maxMsgBytes,
    duplicate_window: nanos(s.duplicateWindowMs),
    num_replicas: s.replicas,
  };
}

/** Creates the stream, or adds the subjects an existing one lacks. Returns what it did. */
export async function ensureStream(jsm: JetStreamManager, s: StreamSettings): Promise<"created" | "updated" | "exists"> {
  try {
    const info = await jsm.streams.info(s.name);
    const have = new Set(info.config.subjects ?? []);
    const missing = s.subjects.filter((x) => !have.has(x));
    if (missing.length === 0) return "exists";
    await jsm.streams.update(s.name, { ...info.config, subjects: [...have, ...missing] });
    return "updated";
  } catch (e) {
    if (!(e instanceof JetStreamApiError) || e.code !== 10059) throw e; // 10059: stream not found
  }
  await jsm.streams.add(streamConfig(s));
  return "created";
}
