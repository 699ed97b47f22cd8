/**
 * A JetStream publisher that never blocks or fails its caller. `publish()` only encodes the
 * event and appends it to a bounded buffer; a background loop connects (and reconnects, forever),
 * makes sure the stream exists, and sends the buffer in order, one event at a time, each with
 * its message id and waiting for JetStream's ack. An event whose ack did not come is sent again
 * with the same id, so JetStream keeps it once (within the stream's duplicate window).
 *
 * When the buffer is full (by count or by bytes) the OLDEST event not already being sent is
 * dropped: a follower who missed the middle still sees the run's latest state and its end. An
 * event larger than the byte bound or the stream's message-size limit, or one JetStream
 * rejects, is dropped at once. Every drop is counted ({@link PublisherStats.dropped}, and the
 * OpenTelemetry counter `rlhf.events.dropped`; see metrics.ts).
 */
import { connect, errors as natsErrors, nuid, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient } from "@nats-io/jetstream";
import { DEFAULT_STREAM, ensureStream, type StreamSettings } from "./stream";
import { observeBuffer, recordDropped, recordPublished } from "./metrics";

/** What the publisher logs with (a pino logger fits). */
export interface EventsLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Why an event was dropped. */
export type DropReason = "buffer_full" | "too_large" | "rejected" | "unsent_at_close";

/** Options of {@link EventPublisher}. */
export interface PublisherOptions {
  /** NATS servers (see parseNatsServers). */
  servers: string[];
  /** Connection name shown by the NATS server's monitoring, e.g. the service name. */
  name?: string;
  log?: EventsLog;
  /** Most events buffered (sent or not yet acked). Default 10,000. */
  maxBufferedEvents?: number;
  /** Most bytes buffered (payloads and subjects). Default 16 MiB. */
  maxBufferedBytes?: number;
  /** How long to wait for JetStream's ack before sending again. Default 5,000 ms. */
  ackTimeoutMs?: number;
  /** Wait between two connection attempts. Default 1,000 ms. */
  reconnectWaitMs?: number;
  /** The stream created when missing (see stream.ts). */
  stream?: Partial<StreamSettings>;
  /** Called for every drop (e.g. to count it in a metric). */
  onDropped?: (count: number, reason: DropReason) => void;
}

/** Counters of a publisher. */
export interface PublisherStats {
  /** Events stored by JetStream. */
  published: number;
  /** Re-sends that JetStream recognised by their message id and did not store again. */
  duplicates: number;
  /** Events lost: buffer full, too large, rejected, or still buffered at close. */
  dropped: number;
  /** Events waiting in the buffer now (including one being sent). */
  buffered: number;
  bufferedBytes: number;
  /** Sends that failed (timeout, disconnect) and were retried. */
  retries: number;
  /** Reconnections after a lost connection. */
  reconnects: number;
  connected: boolean;
  /** The last error seen, if any. */
  lastError?: string;
}

interface Pending {
  subject: string;
  data: Uint8Array;
  msgId: string;
  bytes: number;
}

const encoder = new TextEncoder();

export class EventPublisher {
  /** Prefix of the message ids this publisher makes up (`<id>-<n>`) for events that bring none. */
  readonly id = nuid.next();
  private readonly queue: Pending[] = [];
  private bytes = 0;
  private sending?: Pending;
  private seq = 0;
  private readonly counts = { published: 0, duplicates: 0, dropped: 0, retries: 0, reconnects: 0 };
  private lastError?: string;
  private nc?: NatsConnection;
  private js?: JetStreamClient;
  private connected = false;
  private streamReady = false;
  private stopped = false;
  private wakeUp?: () => void;
  private readonly idle = new Set<() => void>();
  private readonly loop: Promise<void>;
  private readonly stream: StreamSettings;
  private readonly maxEvents: number;
  private readonly maxBytes: number;
  private readonly ackTimeoutMs: number;
  private readonly reconnectWaitMs: number;
  private disconnectedAt?: number;
  private warnedUnreachable = false;

  constructor(private readonly opts: PublisherOptions) {
    if (opts.servers.length === 0) throw new Error("EventPublisher: servers is empty");
    this.stream = { ...DEFAULT_STREAM, ...opts.stream };
    this.maxEvents = opts.maxBufferedEvents ?? 10_000;
    this.maxBytes = opts.maxBufferedBytes ?? 16 * 1024 * 1024;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 5000;
    this.reconnectWaitMs = opts.reconnectWaitMs ?? 1000;
    if (!(this.maxEvents >= 1)) throw new Error(`maxBufferedEvents must be >= 1, got ${this.maxEvents}`);
    if (!(this.maxBytes >= 1)) throw new Error(`maxBufferedBytes must be >= 1, got ${this.maxBytes}`);
    observeBuffer(this);
    this.loop = this.run();
  }

  /** Events waiting in the buffer (for the `rlhf.events.buffered` gauge). */
  bufferedCount(): number {
    return this.queue.length;
  }

  /**
   * Queues an event (a JSON-encodable value, or bytes as they are) for `subject`. Never throws
   * for NATS reasons and never waits. `msgId` defaults to `<publisher id>-<n>`. Returns false
   * when the event itself was dropped (too large, or the publisher is closed).
   */
  publish(subject: string, payload: unknown, msgId?: string): boolean {
    const data = payload instanceof Uint8Array ? payload : encoder.encode(JSON.stringify(payload));
    const item: Pending = { subject, data, msgId: msgId ?? `${this.id}-${++this.seq}`, bytes: data.length + subject.length };
    if (this.stopped) {
      this.drop(1, "unsent_at_close");
      return false;
    }
    if (item.bytes > this.maxBytes || data.length > this.stream.maxMsgBytes) {
      this.drop(1, "too_large");
      return false;
    }
    this.queue.push(item);
    this.bytes += item.bytes;
    let self = true;
    while (this.queue.length > this.maxEvents || this.bytes > this.maxBytes) {
      // The oldest that is not on the wire: the one being sent must stay until its ack.
      const i = this.queue[0] === this.sending ? 1 : 0;
      const [gone] = this.queue.splice(i, 1);
      this.bytes -= gone.bytes;
      if (gone === item) self = false;
      this.drop(1, "buffer_full");
    }
    this.wake();
    return self;
  }

  /** The counters now. */
  stats(): PublisherStats {
    return { ...this.counts, buffered: this.queue.length, bufferedBytes: this.bytes, connected: this.connected, ...(this.lastError ? { lastError: this.lastError } : {}) };
  }

  /** Waits until the buffer is empty (true) or `timeoutMs` passed (false). */
  flush(timeoutMs: number): Promise<boolean> {
    if (this.queue.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(t);
        this.idle.delete(onIdle);
        resolve(ok);
      };
      const onIdle = () => done(true);
      const t = setTimeout(() => done(false), timeoutMs);
      this.idle.add(onIdle);
    });
  }

  /**
   * Sends what it can within `timeoutMs`, then stops: what is still buffered counts as dropped.
   * Logs and returns the final counters. The default, the ack timeout plus a second, lets a
   * publish in flight get its answer: NATS just back from an outage may take seconds to confirm
   * (a service stopping right after lost its last events with a 2-second window under load).
   */
  async close(timeoutMs = this.ackTimeoutMs + 1000): Promise<PublisherStats> {
    if (!this.stopped) {
      await this.flush(timeoutMs);
      this.stopped = true;
      this.wake();
      const left = this.queue.length;
      this.queue.length = 0;
      this.bytes = 0;
      if (left > 0) this.drop(left, "unsent_at_close");
      const nc = this.nc;
      this.nc = undefined;
      await nc?.close().catch(() => undefined);
      await this.loop;
      const s = this.stats();
      const fields = { published: s.published, duplicates: s.duplicates, dropped: s.dropped, unsent: left, retries: s.retries, reconnects: s.reconnects };
      if (s.dropped > 0) this.opts.log?.warn(fields, "events publisher stopped: some events did not reach NATS (the run folder's events.jsonl has them all)");
      else this.opts.log?.info(fields, "events publisher stopped");
    }
    return this.stats();
  }

  private drop(n: number, reason: DropReason): void {
    this.counts.dropped += n;
    recordDropped(n, reason);
    this.opts.onDropped?.(n, reason);
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  /** Resolves on wake() or after `ms` (never keeps the process alive). */
  private sleep(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const t = ms === undefined ? undefined : setTimeout(resolve, ms);
      t?.unref();
      this.wakeUp = () => {
        if (t) clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    let backoffMs = 0;
    const fail = async (e: unknown) => {
      this.lastError = (e as Error).message ?? String(e);
      backoffMs = Math.min(Math.max(backoffMs * 2, 250), 5000);
      await this.sleep(backoffMs);
    };
    while (!this.stopped) {
      if (!this.nc) {
        try {
          await this.open();
        } catch (e) {
          this.lastError = (e as Error).message;
          // Said once: the service goes on, and events wait in the buffer (oldest dropped when full).
          if (!this.warnedUnreachable) this.opts.log?.warn({ servers: this.opts.servers, err: this.lastError, maxBufferedEvents: this.maxEvents, maxBufferedBytes: this.maxBytes }, "cannot reach NATS; buffering events and retrying");
          this.warnedUnreachable = true;
          await this.sleep(this.reconnectWaitMs);
        }
        continue;
      }
      if (!this.connected) {
        await this.sleep(this.reconnectWaitMs);
        continue;
      }
      if (!this.streamReady) {
        try {
          const did = await ensureStream(await jetstreamManager(this.nc), this.stream);
          if (did !== "exists") this.opts.log?.info({ stream: this.stream.name, subjects: this.stream.subjects }, `NATS stream ${did}`);
          this.streamReady = true;
          backoffMs = 0;
        } catch (e) {
          this.opts.log?.warn({ stream: this.stream.name, err: (e as Error).message }, "cannot set up the NATS stream; events stay buffered");
          await fail(e);
        }
        continue;
      }
      const item = this.queue[0];
      if (!item) {
        for (const f of [...this.idle]) f();
        await this.sleep();
        continue;
      }
      this.sending = item;
      try {
        const ack = await (this.js as JetStreamClient).publish(item.subject, item.data, { msgID: item.msgId, timeout: this.ackTimeoutMs });
        if (ack.duplicate) this.counts.duplicates++;
        else {
          this.counts.published++;
          recordPublished(1);
        }
        this.done(item);
        backoffMs = 0;
      } catch (e) {
        if (this.stopped) break;
        if (e instanceof JetStreamApiError && e.status !== 503) {
          // JetStream refused this event (e.g. larger than the stream's max_msg_size): it never will take it.
          this.opts.log?.warn({ subject: item.subject, err: e.message }, "NATS refused an event; dropped");
          this.lastError = e.message;
          this.done(item);
          this.drop(1, "rejected");
        } else if (e instanceof natsErrors.InvalidArgumentError) {
          // Larger than the server's max_payload.
          this.lastError = e.message;
          this.done(item);
          this.drop(1, "too_large");
        } else {
          // No stream (a fresh server) / timeout / disconnect: send it again, same message id.
          // No responders (the library calls it JetStreamNotEnabled): no stream takes the subject.
          if ((e as Error).name === "JetStreamNotEnabled") this.streamReady = false;
          this.counts.retries++;
          await fail(e);
        }
      } finally {
        this.sending = undefined;
      }
    }
  }

  private done(item: Pending): void {
    if (this.queue[0] === item) {
      this.queue.shift();
      this.bytes -= item.bytes;
    }
  }

  /** One connection attempt; then the client reconnects by itself, forever. */
  private async open(): Promise<void> {
    const nc = await connect({
      servers: this.opts.servers,
      name: this.opts.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: this.reconnectWaitMs,
      timeout: 5000,
      pingInterval: 10_000,
      maxPingOut: 3,
    });
    if (this.stopped) {
      await nc.close();
      return;
    }
    this.nc = nc;
    this.js = jetstream(nc, { timeout: this.ackTimeoutMs });
    this.connected = true;
    this.streamReady = false;
    this.opts.log?.info({ server: nc.getServer() }, "connected to NATS");
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect") {
          this.connected = false;
          this.disconnectedAt = Date.now();
          this.opts.log?.warn({ server: s.server, buffered: this.queue.length }, "NATS connection lost; buffering events and reconnecting");
        } else if (s.type === "reconnect") {
          this.connected = true;
          this.streamReady = false; // the server may have lost the stream
          this.counts.reconnects++;
          const downMs = this.disconnectedAt === undefined ? 0 : Date.now() - this.disconnectedAt;
          this.opts.log?.info({ server: s.server, downMs, buffered: this.queue.length, dropped: this.counts.dropped }, "NATS reconnected");
          this.wake();
        }
      }
    })().catch(() => undefined);
    void nc.closed().then(() => {
      if (this.nc === nc) {
        this.nc = undefined;
        this.connected = false;
        this.wake();
      }
    });
  }
}
