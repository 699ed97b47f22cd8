/**
 * Host fallbacks: every kernel that tfjs' cpu backend has and this backend does not run natively
 * (./kernels.ts) is registered for the torch backend as "copy the inputs to a private cpu backend,
 * run the cpu kernel there, copy the outputs back". Rarely used ops (StridedSlice, TopK,
 * Multinomial, Einsum, convolutions...) thus work, with tfjs' exact semantics, at host speed.
 *
 * The training, generation and evaluation paths of libs/model never reach a fallback: a test
 * (kernels-coverage.test.ts) records the kernels they dispatch and fails if one is not native.
 */
import * as tf from "@tensorflow/tfjs-core";
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import { TORCH_BACKEND_NAME, type TorchBackend } from "./backend";

const fallbackNames = new Set<string>();
/** Times each fallback kernel ran in this process (for logs and tests). */
const fallbackCalls = new Map<string, number>();

/** Kernel names the torch backend runs through the host fallback. */
export function fallbackKernels(): ReadonlySet<string> {
  return fallbackNames;
}

/** How often each fallback kernel ran in this process so far. */
export function fallbackKernelCalls(): ReadonlyMap<string, number> {
  return fallbackCalls;
}

function makeHost(): tf.KernelBackend {
  const cpu = new MathBackendCPU();
  // Its first write prints tfjs' "install the node backend" banner; it is not ours to print.
  (cpu as unknown as { firstUse: boolean }).firstUse = false;
  return cpu;
}

function hostKernel(config: tf.KernelConfig): tf.KernelFunc {
  const name = config.kernelName;
  return ({ inputs, backend, attrs }) => {
    fallbackCalls.set(name, (fallbackCalls.get(name) ?? 0) + 1);
    const torch = backend as TorchBackend;
    const host = torch.hostBackend(makeHost);
    const temps: tf.DataId[] = [];
    const toHost = (t: tf.TensorInfo): tf.TensorInfo => {
      const dataId = host.write(torch.readSync(t.dataId), t.shape, t.dtype);
      temps.push(dataId);
      return { dataId, shape: t.shape, dtype: t.dtype };
    };
    const list = Array.isArray(inputs);
    const hostInputs: Record<string, tf.TensorInfo> | tf.TensorInfo[] = list ? [] : {};
    for (const [k, t] of Object.entries(inputs)) {
      if (t != null) (hostInputs as Record<string, tf.TensorInfo>)[k] = toHost(t as tf.TensorInfo);
    }
    try {
      const out = config.kernelFunc({ inputs: hostInputs as unknown as tf.NamedTensorInfoMap, backend: host, attrs });
      const outs = Array.isArray(out) ? out : [out];
      for (const o of outs) temps.push(o.dataId);
      const back = outs.map((o) => ({ dataId: torch.write(host.readSync(o.dataId), o.shape, o.dtype), shape: o.shape, dtype: o.dtype }));
      return Array.isArray(out) ? back : back[0];
    } finally {
      for (const id of new Set(temps)) host.disposeData(id, true);
    }
  };
}

/**
 * Registers a host fallback for every cpu kernel the torch backend lacks. Call after the native
 * kernels are registered and after @tensorflow/tfjs-backend-cpu has registered its kernels.
 */
export function registerFallbackKernels(): string[] {
  const added: string[] = [];
  for (const config of tf.getKernelsForBackend("cpu")) {
    if (tf.getKernel(config.kernelName, TORCH_BACKEND_NAME) !== undefined) continue;
    tf.registerKernel({ kernelName: config.kernelName, backendName: TORCH_BACKEND_NAME, kernelFunc: hostKernel(config) });
    fallbackNames.add(config.kernelName);
    added.push(config.kernelName);
  }
  return added;
}
