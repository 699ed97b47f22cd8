/**
 * Reading a run's events back from JetStream: an ordered consumer on `rlhf.runs.<runId>.>` that
 * delivers everything from the run's first event, then new ones as they come (it survives
 * reconnects and resumes after the last event it saw).
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, JetStreamApiError, type ConsumerMessages } from "@nats-io/jetstream";
import { STREAM_NAME, kindOfSubject, runSubjects } from "./subjects";

/** One event read from the stream. */
export interface FeedMessage {
  subject: string;
  /** The subject's last token: state, stage, metrics, checkpoint, weights... */
  kind: string | undefined;
  /** Position in the stream. */
  streamSeq: number;
  /** Events of this run still in the stream after this one (0: the latest so far). */
  pending: number;
  /** The payload parsed as JSON; undefined if it is not JSON (then see `text`). */
  json: unknown;
  text: string;
}

/** A run's events, in stream order; iterate once. */
export interface RunFeed extends AsyncIterable<FeedMessage> {
  /** Events of the run in the stream when the feed opened. */
  readonly initialPending: number;
  close(): Promise<void>;
}

/** The run has no events in the stream. */
export class UnknownRunError extends Error {}

/** Options of {@link openRunFeed}. */
export interface FeedOptions {
  servers: string[];
  runId: string;
  /** Default RLHF_RUNS. */
  stream?: string;
  /** Connection handshake timeout. Default 5,000 ms. */
  connectTimeoutMs?: number;
}

/**
 * Opens an ordered consumer on the run's subjects. Throws a clear Error when NATS cannot be
 * reached or has no stream, and UnknownRunError when the stream holds no event of the run.
 */
export async function openRunFeed(o: FeedOptions): Promise<RunFeed> {
  const stream = o.stream ?? STREAM_NAME;
  const where = o.servers.join(",");
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: o.servers, name: "rlhf watch", timeout: o.connectTimeoutMs ?? 5000, maxReconnectAttempts: -1 });
  } catch (e) {
    throw new Error(`cannot connect to NATS at ${where}: ${(e as Error).message}`);
  }
  try {
    const js = jetstream(nc);
    let consumer;
    try {
      consumer = await js.consumers.get(stream, { filter_subjects: runSubjects(o.runId) });
    } catch (e) {
      if (e instanceof JetStreamApiError && e.code === 10059) throw new UnknownRunError(`NATS at ${where} has no stream ${stream}: no service published events there (is NATS_URL set for the services?)`);
      throw e;
    }
    const info = await consumer.info();
    if (info.num_pending === 0) throw new UnknownRunError(`no events of run "${o.runId}" in NATS stream ${stream} at ${where}`);
    let messages: ConsumerMessages | undefined;
    const feed: RunFeed = {
      initialPending: info.num_pending,
      async *[Symbol.asyncIterator]() {
        // Pulls that expire after 5 s (heartbeats every 2.5 s): after a NATS restart the consumer is
        // found missing and made again within seconds, not the default 30 s.
        messages = await consumer.consume({ expires: 5000 });
        for await (const m of messages) {
          const text = m.string();
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          yield { subject: m.subject, kind: kindOfSubject(m.subject), streamSeq: m.seq, pending: m.info.pending, json, text };
        }
      },
      async close() {
        messages?.stop();
        await nc.close().catch(() => undefined);
      },
    };
    return feed;
  } catch (e) {
    await nc.close().catch(() => undefined);
    throw e;
  }
}
