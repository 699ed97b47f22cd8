/**
 * The publisher's OpenTelemetry instruments, recorded through the global meter provider that
 * @rlhf/telemetry installs (a no-op when none is):
 *
 * - `rlhf.events.published` (counter, {event}): events JetStream stored.
 * - `rlhf.events.dropped` (counter, {event}; rlhf.events.reason = buffer_full, too_large,
 *   rejected, unsent_at_close): events that never reached NATS. Should stay 0.
 * - `rlhf.events.buffered` (observable gauge, {event}): events waiting to be sent.
 *
 * As in @rlhf/grpc-kit's metrics, instruments are made on first use and remade when the global
 * provider changed: one made before the SDK was installed would stay a no-op forever.
 */
import { metrics, type Counter, type MeterProvider, type ObservableGauge } from "@opentelemetry/api";

/** Meter (instrumentation scope) name of these instruments. */
export const EVENTS_METER = "@rlhf/events";

interface Instruments {
  published: Counter;
  dropped: Counter;
  buffered: ObservableGauge;
}

/** Buffer sizes of the live publishers; weak, so a dropped publisher is not kept alive by its gauge. */
const sources = new Set<WeakRef<{ bufferedCount(): number }>>();
let made: { provider: MeterProvider; inst: Instruments } | undefined;

function instruments(): Instruments {
  const provider = metrics.getMeterProvider();
  if (made?.provider === provider) return made.inst;
  const meter = provider.getMeter(EVENTS_METER);
  const buffered = meter.createObservableGauge("rlhf.events.buffered", { unit: "{event}", description: "Run events waiting to be sent to NATS" });
  buffered.addCallback((result) => {
    let n = 0;
    for (const ref of sources) {
      const s = ref.deref();
      if (s) n += s.bufferedCount();
      else sources.delete(ref);
    }
    result.observe(n);
  });
  const inst: Instruments = {
    published: meter.createCounter("rlhf.events.published", { unit: "{event}", description: "Run events stored by NATS JetStream" }),
    dropped: meter.createCounter("rlhf.events.dropped", { unit: "{event}", description: "Run events that never reached NATS (buffer full, too large, rejected, or unsent at shutdown); the run folder's events.jsonl still has them" }),
    buffered,
  };
  made = { provider, inst };
  return inst;
}

/** Makes `source`'s buffer observable as `rlhf.events.buffered`. */
export function observeBuffer(source: { bufferedCount(): number }): void {
  instruments();
  sources.add(new WeakRef(source));
}

/** Counts events JetStream stored. */
export function recordPublished(n: number): void {
  instruments().published.add(n);
}

/** Counts dropped events. */
export function recordDropped(n: number, reason: string): void {
  instruments().dropped.add(n, { "rlhf.events.reason": reason });
}
