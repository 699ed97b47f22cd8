/**
 * @rlhf/torch-backend: a TensorFlow.js backend ("torch") whose kernels run on libtorch (ATen)
 * through this package's N-API addon. `registerTorchBackend()` loads the addon, registers the
 * native kernels, host fallbacks for the rest and the backend itself; `tf.setBackend("torch")`
 * then selects it (libs/compute's `initBackend` does both).
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { loadAddon, type TorchAddon } from "./addon";
import { KERNEL_SETS, type KernelChoice, type KernelSet } from "./kernel-set";
import { TORCH_BACKEND_NAME, TorchBackend, type TorchBackendInfo } from "./backend";
import { registerFallbackKernels } from "./fallback";
import { NATIVE_KERNELS, registerNativeKernels } from "./kernels";

export { ADDON_ENV_VAR, ADDON_PATH, loadAddon, type TorchAddon } from "./addon";
export { KERNEL_SETS, KERNELS_ENV_VAR, PORTABLE_PINS, chooseKernels, cpuFlags, parseKernelSet, type KernelChoice, type KernelSet } from "./kernel-set";
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
  /** CPU kernels of libtorch and OpenBLAS: "portable" (default; the same bits on every x86-64 with AVX2) or "native" (./kernel-set.ts). */
  kernels?: KernelSet;
}

/** Thrown when the backend cannot be registered (addon missing, bad options, device unusable). */
export class TorchBackendError extends Error {
  override name = "TorchBackendError";
}

let registered: { addon: TorchAddon; options: Required<TorchBackendOptions>; kernels: KernelChoice } | undefined;

/**
 * Registers the "torch" backend with tfjs (idempotent for the same options). Throws
 * {@link TorchBackendError} with a one-line reason when the addon is absent or fails to start.
 * The backend object itself (and the addon's thread settings) is created by `tf.setBackend`.
 */
export function registerTorchBackend(options: TorchBackendOptions = {}): { kernels: number; fallbacks: number } {
  const threads = options.threads ?? 1;
  const device = options.device ?? "cpu";
  const kernels = options.kernels ?? "portable";
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) throw new TorchBackendError(`threads must be an integer in 1..1024, got ${threads}`);
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new TorchBackendError(`device must be cpu, cuda or cuda:N, got ${JSON.stringify(device)}`);
  if (!KERNEL_SETS.includes(kernels)) throw new TorchBackendError(`kernels must be portable or native, got ${JSON.stringify(kernels)}`);
  if (registered !== undefined) {
    const o = registered.options;
    if (o.threads !== threads || o.device !== device || o.kernels !== kernels) {
      throw new TorchBackendError(`torch backend already registered with threads=${o.threads} device=${o.device} kernels=${o.kernels}`);
    }
  } else {
    const load = loadAddon(kernels);
    if (!load.ok) throw new TorchBackendError(load.reason);
    if (load.kernels.requested !== kernels) {
      throw new TorchBackendError(`the addon was already loaded with ${load.kernels.requested} kernels; cannot switch to ${kernels} in this process`);
    }
    registered = { addon: load.addon, options: { threads, device, kernels }, kernels: load.kernels };
    registerNativeKernels(load.addon);
    registerFallbackKernels();
    const { addon } = registered;
    tf.registerBackend(TORCH_BACKEND_NAME, () => new TorchBackend(addon, { threads, device }), 3);
  }
  return { kernels: NATIVE_KERNELS.length, fallbacks: tf.getKernelsForBackend(TORCH_BACKEND_NAME).length - NATIVE_KERNELS.length };
}

/** What the active torch backend was started with, or undefined when it is not the active backend. */
export function torchBackendInfo(): (TorchBackendInfo & { kernels: KernelChoice }) | undefined {
  if (tf.getBackend() !== TORCH_BACKEND_NAME || registered === undefined) return undefined;
  return { ...(tf.backend() as TorchBackend).info, kernels: registered.kernels };
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
