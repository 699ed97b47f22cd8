/**
 * Tensor memory of this process as OpenTelemetry observable gauges, read from `tf.memory()` at
 * each collection (a Prometheus scrape, an OTLP export): `rlhf.tensor.count` ({tensor},
 * numTensors) and `rlhf.tensor.memory` (By, numBytes), with `rlhf.backend` = our backend name.
 * Registered by {@link initBackend} once a backend is chosen; recorded through the global meter
 * provider that @rlhf/telemetry installs (names as in its registry, libs/telemetry/src/instruments.ts).
 */
import * as tf from "@tensorflow/tfjs-core";
import { metrics, type MeterProvider } from "@opentelemetry/api";

/** Meter (instrumentation scope) name of the tensor gauges. */
export const COMPUTE_METER = "@rlhf/compute";

let observedWith: MeterProvider | undefined;
let backendName = "";

/**
 * Starts exporting tensor memory under `backend` (idempotent per meter provider: the metrics API
 * has no proxy, so a call before telemetry started is repeated by the next one after it).
 */
export function observeTensorMemory(backend: string): void {
  backendName = backend;
  const provider = metrics.getMeterProvider();
  if (observedWith === provider) return;
  observedWith = provider;
  const meter = provider.getMeter(COMPUTE_METER);
  const count = meter.createObservableGauge("rlhf.tensor.count", { unit: "{tensor}", description: "Live TensorFlow.js tensors (tf.memory().numTensors)" });
  const bytes = meter.createObservableGauge("rlhf.tensor.memory", { unit: "By", description: "Bytes held by live TensorFlow.js tensors (tf.memory().numBytes)" });
  meter.addBatchObservableCallback(
    (result) => {
      const m = tf.memory();
      const attrs = { "rlhf.backend": backendName };
      result.observe(count, m.numTensors, attrs);
      result.observe(bytes, m.numBytes, attrs);
    },
    [count, bytes],
  );
}
