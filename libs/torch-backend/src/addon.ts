/**
 * Loads the native addon (native/build/Release/rlhf_torch.node, built by scripts/build-addon.mjs)
 * and describes its functions. When it is absent, says why in one line: the reason the build
 * script recorded (libtorch or a compiler missing, a compile error), or that it was never built.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chooseKernels, type KernelChoice, type KernelSet } from "./kernel-set";

/** dtype codes shared with native/addon.cc. */
export const DTYPE_CODE = { float32: 0, int32: 1, bool: 2 } as const;

/** The addon's functions (see native/addon.cc for each one's contract). */
export interface TorchAddon {
  init(meta: Int32Array, threads: number, device: string): { threads: number; device: string; openblasThreads: boolean; openblasCore: string; torchVersion: string };
  write(values: Float32Array | Int32Array | Uint8Array, shape: readonly number[], dtype: number): number;
  read(id: number): Float32Array | Int32Array | Uint8Array;
  free(id: number): void;
  stats(): { tensors: number; slots: number };
  alias(id: number): number;
  unary(op: number, id: number, alpha?: number): number;
  binary(op: number, a: number, b: number): number;
  cast(id: number, dtype: number): number;
  clip(id: number, min: number, max: number): number;
  select(cond: number, a: number, b: number): number;
  addN(ids: readonly number[]): number;
  reduce(op: number, id: number, axes: readonly number[], keepDims: boolean): number;
  argReduce(isMax: boolean, id: number, axis: number): number;
  softmax(id: number, dim: number): number;
  cumulative(isProd: boolean, id: number, axis: number, exclusive: boolean, reverse: boolean): number;
  matmul(a: number, b: number, transposeA: boolean, transposeB: boolean): number;
  reshape(id: number, shape: readonly number[]): number;
  transpose(id: number, perm: readonly number[]): number;
  slice(id: number, begin: readonly number[], size: readonly number[]): number;
  stridedSlice(id: number, begin: readonly number[], end: readonly number[], strides: readonly number[]): number;
  concat(ids: readonly number[], axis: number): number;
  stack(ids: readonly number[], axis: number): number;
  unstack(id: number, axis: number): number;
  split(id: number, sizes: readonly number[], axis: number): number;
  tile(id: number, reps: readonly number[]): number;
  broadcastTo(id: number, shape: readonly number[]): number;
  pad(id: number, paddings: readonly number[], value: number): number;
  reverse(id: number, dims: readonly number[]): number;
  gather(x: number, indices: number, batch: number, outer: number, dim: number, slice: number, outShape: readonly number[]): number;
  gatherNd(params: number, indices: number): number;
  scatterNd(indices: number, updates: number, shape: readonly number[]): number;
  unsortedSegmentSum(x: number, ids: number, numSegments: number): number;
  oneHot(indices: number, depth: number, on: number, off: number, dtype: number): number;
  fill(shape: readonly number[], value: number, dtype: number): number;
  topk(x: number, k: number, sorted: boolean): number;
  gelu(x: number): number;
  geluGrad(dy: number, x: number): number;
  softmaxGrad(dy: number, y: number, dim: number): number;
  sumSquares(ids: readonly number[]): number;
  targetLogProbs(logits: number, targets: number, temperature: number): number;
  targetLogProbsGrad(dy: number, logits: number, targets: number, temperature: number): number;
  layerNorm(x: number, gamma: number, beta: number, eps: number): number;
  layerNormGrad(dy: number, x: number, gamma: number, beta: number, eps: number): number;
  causalAttention(qkv: number, nHead: number): number;
  causalAttentionGrad(dy: number, qkv: number, probs: number, nHead: number): number;
  adamw(p: number, m: number, v: number, g: number, lr: number, beta1: number, beta2: number, eps: number, decay: number, bc1: number, bc2: number, gradScale: number): number;
}

/** Where the build puts the addon. */
export const ADDON_PATH = join(__dirname, "..", "native", "build", "Release", "rlhf_torch.node");
const SKIPPED_PATH = join(__dirname, "..", "native", "build", "skipped.json");

/**
 * Environment variable naming another addon file to load instead of {@link ADDON_PATH} (e.g. one
 * built against a CUDA libtorch elsewhere); a path that does not exist makes the backend
 * unavailable, which is how tests exercise the fallback to wasm.
 */
export const ADDON_ENV_VAR = "RLHF_TORCH_ADDON";

export type AddonLoad = { ok: true; addon: TorchAddon; path: string; kernels: KernelChoice } | { ok: false; reason: string };

let loaded: AddonLoad | undefined;

/**
 * Loads the addon once per process; never throws. `kernels` (default portable) is applied to the
 * environment first (./kernel-set.ts): OpenBLAS reads its core type when it is loaded, with the
 * addon, and ATen its vector width at its first kernel. A later call gets the first call's result.
 */
export function loadAddon(kernels: KernelSet = "portable"): AddonLoad {
  if (loaded !== undefined) return loaded;
  const override = process.env[ADDON_ENV_VAR]?.trim();
  const path = override || ADDON_PATH;
  if (!existsSync(path)) {
    let reason = override ? `native addon not found: ${ADDON_ENV_VAR}=${override} does not exist` : `native addon not built (no ${ADDON_PATH}; run pnpm build)`;
    try {
      const s = JSON.parse(readFileSync(SKIPPED_PATH, "utf8")) as { reason?: string };
      if (!override && typeof s.reason === "string") reason = `native addon not built: ${s.reason}`;
    } catch {
      // no record: the plain reason above
    }
    loaded = { ok: false, reason };
    return loaded;
  }
  try {
    const choice = chooseKernels(kernels);
    const addon = createRequire(__filename)(path) as TorchAddon;
    loaded = { ok: true, addon, path, kernels: choice };
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    loaded = { ok: false, reason: `native addon failed to load (${path}): ${msg}` };
  }
  return loaded;
}
