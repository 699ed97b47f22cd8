/**
 * Metrics across the compute worker's boundary. The worker has no metrics SDK: its global meter
 * provider is {@link relayMeterProvider}, whose instruments post every operation (a counter's add,
 * a histogram's record) and, once a second, every observable's readings to the main thread, where
 * {@link RelayedMetrics} applies them to instruments of the same meter, name and kind in the
 * process's real provider. The code that records (tokens, queue depth, tensor memory) is the
 * same in both threads.
 */
import {
  metrics,
  type Attributes,
  type BatchObservableCallback,
  type Meter,
  type MeterProvider,
  type Observable,
  type ObservableCallback,
  type ObservableGauge,
  type ObservableResult,
} from "@opentelemetry/api";
import type { WireInstrument } from "./protocol";

type Point = { instrument: WireInstrument; value: number; attrs?: Attributes };

/** How often the worker reads its observable instruments. */
export const OBSERVE_EVERY_MS = 1000;

/** The worker's provider: `post` sends one operation, `observed` the readings of all observables. */
export function relayMeterProvider(post: (instrument: WireInstrument, value: number, attrs?: Attributes) => void, observed: (points: Point[]) => void): MeterProvider & { collect(): void; stop(): void } {
  const callbacks = new Map<Observable, { instrument: WireInstrument; fns: Set<ObservableCallback> }>();
  const batches = new Set<{ fn: BatchObservableCallback; of: Observable[] }>();
  const collect = () => {
    const points: Point[] = [];
    const observe = (inst: Observable, value: number, attrs?: Attributes) => {
      const entry = callbacks.get(inst);
      if (entry) points.push({ instrument: entry.instrument, value, attrs });
    };
    for (const [inst, { fns }] of callbacks) {
      const result: ObservableResult = { observe: (value, attrs) => observe(inst, value, attrs) };
      for (const fn of fns) settle(() => fn(result));
    }
    for (const b of batches) settle(() => b.fn({ observe: (inst, value, attrs) => observe(inst, value, attrs) }));
    observed(points);
  };
  const timer = setInterval(collect, OBSERVE_EVERY_MS);
  timer.unref();
  const meter = (name: string): Meter => {
    const sync = (kind: WireInstrument["kind"], instName: string, options?: WireInstrument["options"]) => {
      const instrument: WireInstrument = { meter: name, name: instName, kind, options: plainOptions(options) };
      const op = (value: number, attrs?: Attributes) => post(instrument, value, attrs);
      return { add: op, record: op };
    };
    const observable = (kind: WireInstrument["kind"], instName: string, options?: WireInstrument["options"]): ObservableGauge => {
      const entry = { instrument: { meter: name, name: instName, kind, options: plainOptions(options) }, fns: new Set<ObservableCallback>() };
      const inst: ObservableGauge = {
        addCallback: (fn) => void entry.fns.add(fn),
        removeCallback: (fn) => void entry.fns.delete(fn),
      };
      callbacks.set(inst, entry);
      return inst;
    };
    return {
      createCounter: (n, o) => sync("counter", n, o),
      createUpDownCounter: (n, o) => sync("upDownCounter", n, o),
      createHistogram: (n, o) => sync("histogram", n, o),
      createGauge: (n, o) => sync("gauge", n, o),
      createObservableGauge: (n, o) => observable("observableGauge", n, o),
      createObservableCounter: (n, o) => observable("observableCounter", n, o),
      createObservableUpDownCounter: (n, o) => observable("observableUpDownCounter", n, o),
      addBatchObservableCallback: (fn, of) => void batches.add({ fn, of }),
      removeBatchObservableCallback: (fn) => {
        for (const b of batches) if (b.fn === fn) batches.delete(b);
      },
    } as Meter;
  };
  return { getMeter: meter, collect, stop: () => clearInterval(timer) };
}

/** Runs an observable's callback; a failing one (sync or async) costs its readings, not the worker. */
function settle(fn: () => void | Promise<void>): void {
  try {
    void Promise.resolve(fn()).catch(() => undefined);
  } catch {
    // its readings are missing this time
  }
}

function plainOptions(o?: { unit?: string; description?: string }): WireInstrument["options"] {
  return o ? { unit: o.unit, description: o.description } : undefined;
}

const key = (i: WireInstrument) => `${i.meter}\u0000${i.kind}\u0000${i.name}`;
const attrsKey = (a?: Attributes) => JSON.stringify(Object.entries(a ?? {}).sort(([x], [y]) => (x < y ? -1 : 1)));

/** The main thread's side: the worker's operations and readings, on the process's instruments. */
export class RelayedMetrics {
  private provider?: MeterProvider;
  private sync = new Map<string, { add?(v: number, a?: Attributes): void; record?(v: number, a?: Attributes): void }>();
  private latest = new Map<string, Map<string, { value: number; attrs?: Attributes }>>();
  private observables = new Set<string>();

  /** Made anew when the global provider changed (an instrument made before the SDK stays a no-op). */
  private check(): MeterProvider {
    const provider = metrics.getMeterProvider();
    if (provider !== this.provider) {
      this.provider = provider;
      this.sync.clear();
      this.observables.clear();
    }
    return provider;
  }

  apply(instrument: WireInstrument, value: number, attrs?: Attributes): void {
    const provider = this.check();
    let inst = this.sync.get(key(instrument));
    if (!inst) {
      const m = provider.getMeter(instrument.meter);
      const o = instrument.options;
      inst = instrument.kind === "counter" ? m.createCounter(instrument.name, o) : instrument.kind === "upDownCounter" ? m.createUpDownCounter(instrument.name, o) : instrument.kind === "histogram" ? m.createHistogram(instrument.name, o) : m.createGauge(instrument.name, o);
      this.sync.set(key(instrument), inst);
    }
    if (inst.add) inst.add(value, attrs);
    else inst.record?.(value, attrs);
  }

  /** One reading of all the worker's observables: each reports these values until the next. */
  observed(points: Point[]): void {
    const provider = this.check();
    const fresh = new Map<string, Map<string, { value: number; attrs?: Attributes }>>();
    for (const p of points) {
      const k = key(p.instrument);
      if (!fresh.has(k)) fresh.set(k, new Map());
      fresh.get(k)!.set(attrsKey(p.attrs), { value: p.value, attrs: p.attrs });
      if (!this.observables.has(k)) {
        this.observables.add(k);
        const m = provider.getMeter(p.instrument.meter);
        const o = p.instrument.options;
        const inst = p.instrument.kind === "observableCounter" ? m.createObservableCounter(p.instrument.name, o) : p.instrument.kind === "observableUpDownCounter" ? m.createObservableUpDownCounter(p.instrument.name, o) : m.createObservableGauge(p.instrument.name, o);
        inst.addCallback((result) => {
          for (const v of this.latest.get(k)?.values() ?? []) result.observe(v.value, v.attrs);
        });
      }
    }
    for (const [k, v] of fresh) this.latest.set(k, v);
  }
}
