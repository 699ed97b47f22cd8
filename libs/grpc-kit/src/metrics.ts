/**
 * The kit's OpenTelemetry instruments, recorded through the global meter provider that
 * @rlhf/telemetry installs (this library cannot import it: it would load gRPC before the
 * instrumentation). Names, units and attributes are those of @rlhf/telemetry's instrument
 * registry (libs/telemetry/src/instruments.ts), which checks them against a real scrape.
 *
 * - `rpc.server.duration` (histogram, ms; rpc.system, rpc.service, rpc.method,
 *   rpc.grpc.status_code): every call through the handler wrappers, streams included.
 * - `rlhf.queue.depth` (observable gauge, {call}; rlhf.queue): waiting + running per SerialQueue.
 * - `rlhf.queue.rejected` (counter, {call}; rlhf.queue): calls refused because a queue was full.
 *
 * The metrics API has no proxy provider: an instrument made before the SDK is installed stays a
 * no-op forever. Instruments are therefore made on first use and remade if the global provider
 * changed, so a process that starts telemetry first (every service's main.ts) records them all.
 */
import { metrics, type Counter, type Histogram, type MeterProvider, type ObservableGauge } from "@opentelemetry/api";

/** Meter (instrumentation scope) name of the kit's instruments. */
export const GRPC_KIT_METER = "@rlhf/grpc-kit";

/**
 * Bucket bounds of `rpc.server.duration`, ms: from a 1 ms GetInfo to a 10-minute SFT stream.
 * The OpenTelemetry default stops at 10 s, too short for training calls.
 */
export const RPC_DURATION_BUCKETS_MS: readonly number[] = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000];

interface KitInstruments {
  rpcDuration: Histogram;
  queueRejected: Counter;
  queueDepth: ObservableGauge;
}

/** Depth of each live queue; weak, so a dropped queue is not kept alive by its gauge. */
const queues = new Set<WeakRef<{ name: string; depth: number }>>();

let made: { provider: MeterProvider; inst: KitInstruments } | undefined;

function instruments(): KitInstruments {
  const provider = metrics.getMeterProvider();
  if (made?.provider === provider) return made.inst;
  const meter = provider.getMeter(GRPC_KIT_METER);
  const queueDepth = meter.createObservableGauge("rlhf.queue.depth", { unit: "{call}", description: "Calls waiting on a compute queue plus the one running" });
  queueDepth.addCallback((result) => {
    const byName = new Map<string, number>();
    for (const ref of queues) {
      const q = ref.deref();
      if (!q) {
        queues.delete(ref);
        continue;
      }
      byName.set(q.name, (byName.get(q.name) ?? 0) + q.depth);
    }
    for (const [name, depth] of byName) result.observe(depth, { "rlhf.queue": name });
  });
  const inst: KitInstruments = {
    rpcDuration: meter.createHistogram("rpc.server.duration", {
      unit: "ms",
      description: "Duration of inbound RPCs, from the handler's start to its status (streams included)",
      advice: { explicitBucketBoundaries: [...RPC_DURATION_BUCKETS_MS] },
    }),
    queueRejected: meter.createCounter("rlhf.queue.rejected", { unit: "{call}", description: "Calls refused with RESOURCE_EXHAUSTED because a compute queue was full" }),
    queueDepth,
  };
  made = { provider, inst };
  return inst;
}

/**
 * Records one finished call: `path` is the full method path
 * (`/rlhf.reference_model.v1.ReferenceModelService/LogProbs`), `code` its gRPC status code.
 */
export function recordRpc(path: string, code: number, durationMs: number): void {
  const slash = path.lastIndexOf("/");
  instruments().rpcDuration.record(durationMs, {
    "rpc.system": "grpc",
    "rpc.service": path.slice(1, slash),
    "rpc.method": path.slice(slash + 1),
    "rpc.grpc.status_code": code,
  });
}

/** Makes `queue`'s depth observable as `rlhf.queue.depth{rlhf.queue=<name>}`. */
export function observeQueue(queue: { name: string; depth: number }): void {
  instruments();
  queues.add(new WeakRef(queue));
}

/** Counts one call refused by the full queue `name`. */
export function recordQueueRejected(name: string): void {
  instruments().queueRejected.add(1, { "rlhf.queue": name });
}
