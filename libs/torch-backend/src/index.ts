/**
 * @rlhf/torch-backend: a TensorFlow.js backend ("torch") whose kernels run on libtorch (ATen)
 * through this package's N-API addon. `registerTorchBackend()` loads the addon, registers the
 * native kernels, host fallbacks for the rest and the backend itself; `tf.setBackend("torch")`
 * then selects it (libs/compute's `initBackend` does both).
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { loadAddon, type TorchAddon } from "./addon";
import { TORCH_BACKEND_NAME, TorchBackend, type TorchBackendInfo } from "./backend";
import { registerFallbackKernels } from "./fallback";
import { NATIVE_KERNELS, registerNativeKernels } from "./kernels";

export { ADDON_ENV_VAR, ADDON_PATH, loadAddon, type TorchAddon } from "./addon";
export { TORCH_BACKEND_NAME, TorchBackend, type TorchBackendInfo } from "./backend";
export { fallbackKernelCalls, fallbackKernels } from "./fallback";
export { NATIVE_KERNELS } from "./kernels";
export { FUSED_KERNELS } from "./names";

/** Options of {@link registerTorchBackend}. */
export interface TorchBackendOptions {
  /** Intra-op threads (ATen and OpenBLAS). Default 1. */
  threads?: number;
  /** ATen device: "cpu" (default), or "cuda" / "cuda:N" with a CUDA build of libtorch. */
  device?: string;
}

/** Thrown when the backend cannot be registered (addon missing, bad options, device unusable). */
export class TorchBackendError extends Error {
  override name = "TorchBackendError";
}

let registered: { addon: TorchAddon; options: Required<TorchBackendOptions> } | undefined;

/**
 * Registers the "torch" backend with tfjs (idempotent for the same options). Throws
 * {@link TorchBackendError} with a one-line reason when the addon is absent or fails to start.
 * The backend object itself (and the addon's thread settings) is created by `tf.setBackend`.
 */
export function registerTorchBackend(options: TorchBackendOptions = {}): { kernels: number; fallbacks: number } {
  const threads = options.threads ?? 1;
  const device = options.device ?? "cpu";
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) throw new TorchBackendError(`threads must be an integer in 1..1024, got ${threads}`);
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new TorchBackendError(`device must be cpu, cuda or cuda:N, got ${JSON.stringify(device)}`);
  if (registered !== undefined) {
    if (registered.options.threads !== threads || registered.options.device !== device) {
      throw new TorchBackendError(`torch backend already registered with threads=${registered.options.threads} device=${registered.options.device}`);
    }
  } else {
    const load = loadAddon();
    if (!load.ok) throw new TorchBackendError(load.reason);
    registered = { addon: load.addon, options: { threads, device } };
    registerNativeKernels(load.addon);
    registerFallbackKernels();
    const { addon } = registered;
    tf.registerBackend(TORCH_BACKEND_NAME, () => new TorchBackend(addon, { threads, device }), 3);
  }
  return { kernels: NATIVE_KERNELS.length, fallbacks: tf.getKernelsForBackend(TORCH_BACKEND_NAME).length - NATIVE_KERNELS.length };
}

/** What the active torch backend was started with, or undefined when it is not the active backend. */
export function torchBackendInfo(): TorchBackendInfo | undefined {
  if (tf.getBackend() !== TORCH_BACKEND_NAME) return undefined;
  return (tf.backend() as TorchBackend).info;
}

/** Tensors the addon holds now (its own count, beside `tf.memory().numTensors`), or 0 when not loaded. */
export function nativeTensorCount(): number {
  const load = loadAddon();
  return load.ok ? load.addon.stats().tensors : 0;
}

/**
 * The kernels `fn` dispatches (forward and backward), recorded with `tf.profile`, and those of them
 * that do not run natively on the torch backend (host fallbacks or not registered at all). For
 * tests that keep the hot paths native.
 */
export async function kernelCoverage(fn: () => void): Promise<{ dispatched: string[]; notNative: string[] }> {
  const info = await tf.profile(() => {
    fn();
    return [];
  });
  const dispatched = [...new Set(info.kernelNames)].sort();
  const native = new Set(NATIVE_KERNELS);
  return { dispatched, notNative: dispatched.filter((k) => !native.has(k)) };
}
