/**
 * Compute backend selection: one TensorFlow.js backend per process, chosen once at start.
 *
 * Order: `@tensorflow/tfjs-node-gpu` (CUDA nodes), `@tensorflow/tfjs-node`, then this project's
 * `torch` backend (@rlhf/torch-backend: kernels on libtorch through an N-API addon), then
 * `@tensorflow/tfjs-backend-wasm`, then the pure-JS `@tensorflow/tfjs-backend-cpu`. The tfjs-node
 * packages are optional dependencies whose install script downloads libtensorflow; where that did
 * not happen, requiring them throws. The torch addon is built by `pnpm build` where libtorch and a
 * compiler exist (Debian: `apt-get install libtorch-dev`); where it was not built, the selection
 * says why and falls through to wasm.
 */
import { existsSync, realpathSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, sep } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type * as TfWasm from "@tensorflow/tfjs-backend-wasm";
import type * as TorchBackendModule from "@rlhf/torch-backend";
import { KERNELS_ENV_VAR, parseKernelSet, type KernelSet } from "@rlhf/torch-backend/dist/kernel-set";
import { registerFallbackKernels, registerMissingGradients, registerWasmFallbacks } from "./kernels";
import { observeTensorMemory } from "./metrics";

/** Our names for the compute backends, in order of preference. */
export type BackendName = "tensorflow-gpu" | "tensorflow" | "torch" | "wasm" | "cpu";

/** Every {@link BackendName}, in the order `initBackend` tries them. */
export const BACKEND_ORDER: readonly BackendName[] = ["tensorflow-gpu", "tensorflow", "torch", "wasm", "cpu"];

/** Environment variable that forces one backend: one of {@link BACKEND_ORDER}. */
export const BACKEND_ENV_VAR = "RLHF_BACKEND";

/**
 * Environment variable with the number of intra-op threads of the torch backend (ATen and
 * OpenBLAS) in this process. Default 1: the local demo runs five services on one machine, and on
 * the 2-core build machine one thread per process trained faster than two (docs/compute-backends.md).
 */
export const THREADS_ENV_VAR = "RLHF_TORCH_THREADS";

/** Environment variable with the torch backend's device: `cpu` (default), `cuda`, `cuda:N` (a CUDA build of libtorch). */
export const DEVICE_ENV_VAR = "RLHF_TORCH_DEVICE";

export { KERNELS_ENV_VAR };

/** Structured log sink, e.g. `(msg, fields) => logger.info(fields, msg)` for pino. */
export type BackendLog = (msg: string, fields?: Record<string, unknown>) => void;

/** Options of {@link initBackend}. */
export interface InitBackendOptions {
  /** Force this backend (takes precedence over `RLHF_BACKEND`). Default: `RLHF_BACKEND`, else the first that loads. */
  backend?: BackendName;
  /** Receives one line for the backend chosen and one per backend skipped. Default: no logging. */
  log?: BackendLog;
  /** Where `RLHF_BACKEND`, `RLHF_TORCH_THREADS`, `RLHF_TORCH_DEVICE` and `RLHF_TORCH_KERNELS` are read from. Default: `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Intra-op threads of the torch backend (takes precedence over `RLHF_TORCH_THREADS`). Default 1. */
  threads?: number;
}

/** The backend `initBackend` settled on. */
export interface BackendInfo {
  /** Our name for it. */
  name: BackendName;
  /** The tfjs backend name now active (`tf.getBackend()`): "tensorflow", "torch", "wasm" or "cpu". */
  tfBackend: string;
  /** Intra-op threads of the torch backend (only for it). */
  threads?: number;
  /**
   * One line that says what the figures depend on: the backend and, for torch, libtorch's version,
   * threads, device and CPU kernels (e.g. "torch 1.13.1, 1 thread, cpu, portable kernels (OpenBLAS
   * Haswell, ATen avx2)"); for wasm, SIMD and threads.
   */
  detail: string;
}

/** A backend could not be initialised (forced one unavailable, bad `RLHF_BACKEND`, conflicting calls). */
export class BackendInitError extends Error {
  override name = "BackendInitError";
}

const PACKAGES: Readonly<Record<BackendName, string>> = {
  "tensorflow-gpu": "@tensorflow/tfjs-node-gpu",
  tensorflow: "@tensorflow/tfjs-node",
  torch: "@rlhf/torch-backend",
  wasm: "@tensorflow/tfjs-backend-wasm",
  cpu: "@tensorflow/tfjs-backend-cpu",
};

// createRequire keeps CommonJS loading (and its try/catch semantics) explicit and lint-clean.
const load = createRequire(__filename);

let selected: Promise<BackendInfo> | undefined;
let selectedInfo: BackendInfo | undefined;

/**
 * Makes tfjs-core able to train: registers every gradient (and the chained tensor methods such
 * as `t.reshape()`, which some of tfjs' own gradients call) by loading the `@tensorflow/tfjs` union
 * package. tfjs-core's published bundles register neither, so with tfjs-core and a backend alone
 * `tf.grad` fails with "gradient function not found for Sum". The union package inlines them from
 * tfjs-core and registers them in tfjs-core's global registries (checked below). Idempotent.
 * Called by {@link initBackend}; call it directly only in code that skips `initBackend`.
 */
export function ensureGradients(): void {
  if (tf.getGradient(tf.Sum) !== undefined && tf.getGradient(tf.GatherV2) !== undefined) return;
  const ours = realpathSync(load.resolve("@tensorflow/tfjs-core/package.json"));
  const union = createRequire(load.resolve("@tensorflow/tfjs/package.json"));
  const theirs = realpathSync(union.resolve("@tensorflow/tfjs-core/package.json"));
  if (theirs !== ours) {
    throw new BackendInitError(`@tensorflow/tfjs uses another copy of @tensorflow/tfjs-core (${dirname(theirs)}, ours: ${dirname(ours)})`);
  }
  quietly(() => load("@tensorflow/tfjs"));
  if (tf.getGradient(tf.Sum) === undefined) {
    throw new BackendInitError("@tensorflow/tfjs loaded but registered no gradients with our @tensorflow/tfjs-core");
  }
}

/** Type guard for {@link BackendName}. */
export function isBackendName(v: unknown): v is BackendName {
  return typeof v === "string" && (BACKEND_ORDER as readonly string[]).includes(v);
}

/**
 * Chooses and initialises the TensorFlow.js backend for this process.
 *
 * Without a forced backend it tries, in order, tensorflow-gpu, tensorflow, torch, wasm, cpu and
 * keeps the first that loads and computes `1 + 2` correctly, logging one line that names it and
 * says why each one before it was not taken (also as the `skipped` field). A forced backend (`opts.backend`, else the `RLHF_BACKEND`
 * environment variable) is the only one tried; if it cannot load, this rejects with one
 * {@link BackendInitError} line saying why. An unknown `RLHF_BACKEND` value is rejected, naming
 * the allowed values.
 *
 * Also, before any backend: registers tfjs' gradients ({@link ensureGradients}) and the ones tfjs
 * lacks or that dispatch fused kernels (`registerMissingGradients`: GatherNd, the fused ops of
 * ./fused.ts). The torch backend runs with `opts.threads`, else `RLHF_TORCH_THREADS`, else 1
 * intra-op threads, on `RLHF_TORCH_DEVICE` (default cpu), with the CPU kernels of
 * `RLHF_TORCH_KERNELS` (default portable: the same bits on every x86-64 machine with AVX2). Per backend: checks that its package uses the same
 * copy of `@tensorflow/tfjs-core` as this library; points wasm at its own `.wasm` files (works from
 * any cwd, bundled or not) and removes the process listeners emscripten adds; registers the kernel
 * fallbacks of `./kernels` (wasm: UnsortedSegmentSum, GatherV2 with batchDims; cpu: a fast
 * UnsortedSegmentSum); mutes tfjs' Node.js "install our node backend" banner on cpu.
 *
 * Once chosen, the backend's tensor memory is exported as the `rlhf.tensor.count` and
 * `rlhf.tensor.memory` gauges (./metrics.ts; no-ops unless @rlhf/telemetry started).
 *
 * Idempotent: later (and concurrent) calls return the first call's result; a later call that
 * forces a different backend is rejected. A failed call leaves tfjs-core usable and may be retried.
 */
export function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  if (opts.backend !== undefined && !isBackendName(opts.backend)) {
    return Promise.reject(new BackendInitError(`options.backend=${JSON.stringify(opts.backend)} is not a compute backend; allowed: ${BACKEND_ORDER.join(", ")}`));
  }
  if (selected === undefined) {
    const attempt = select(opts);
    selected = attempt;
    attempt.then(
      (info) => {
        selectedInfo = info;
        // rlhf.tensor.count / rlhf.tensor.memory of this process, from now on.
        observeTensorMemory(info.name);
      },
      () => {
        if (selected === attempt) selected = undefined;
      },
    );
    return attempt;
  }
  const wanted = opts.backend;
  return selected.then((info) => {
    if (wanted !== undefined && wanted !== info.name) {
      throw new BackendInitError(`compute backend already initialised as ${info.name}; cannot switch to ${wanted}`);
    }
    return info;
  });
}

/** The backend chosen by a completed {@link initBackend}, or undefined before that. */
export function getBackendInfo(): BackendInfo | undefined {
  return selectedInfo;
}

async function select(opts: InitBackendOptions): Promise<BackendInfo> {
  const log = opts.log ?? (() => undefined);
  const env = opts.env ?? process.env;
  let forced: BackendName | undefined = opts.backend;
  let selectedBy = "options.backend";
  if (forced === undefined) {
    const raw = env[BACKEND_ENV_VAR];
    if (raw !== undefined && raw.trim() !== "") {
      const v = raw.trim();
      if (!isBackendName(v)) {
        throw new BackendInitError(`${BACKEND_ENV_VAR}=${JSON.stringify(raw)} is not a compute backend; allowed: ${BACKEND_ORDER.join(", ")}`);
      }
      forced = v;
      selectedBy = BACKEND_ENV_VAR;
    }
  }

  ensureGradients();
  registerMissingGradients();

  const torch = torchOptions(opts, env);
  if (forced !== undefined) {
    const r = await tryBackend(forced, torch);
    if (!r.ok) {
      throw new BackendInitError(`${selectedBy}=${forced}: cannot use ${PACKAGES[forced]}: ${r.reason}`);
    }
    const chosen = info(forced, r.fields);
    log(`compute backend ${forced} (forced by ${selectedBy}): ${chosen.detail}${kernelsNote(r.fields)}`, { backend: forced, selectedBy, detail: chosen.detail, ...r.fields });
    return chosen;
  }

  // One line in the end: the backend chosen, and why each one before it was not.
  const skipped: Record<string, string> = {};
  for (const name of BACKEND_ORDER) {
    const r = await tryBackend(name, torch);
    if (r.ok) {
      const why = Object.entries(skipped).map(([n, reason]) => `${n}: ${reason}`);
      const chosen = info(name, r.fields);
      const msg = why.length > 0 ? `compute backend ${name} (not ${why.join("; not ")})` : `compute backend ${name}`;
      log(`${msg}: ${chosen.detail}${kernelsNote(r.fields)}`, { backend: name, selectedBy: "auto", detail: chosen.detail, ...r.fields, ...(why.length > 0 ? { skipped } : {}) });
      return chosen;
    }
    skipped[name] = r.reason;
  }
  throw new BackendInitError(`no compute backend could be loaded (${Object.entries(skipped).map(([n, r]) => `${n}: ${r}`).join("; ")})`);
}

function info(name: BackendName, fields: Record<string, unknown>): BackendInfo {
  const out: BackendInfo = { name, tfBackend: tf.getBackend(), detail: describe(name, fields) };
  if (name === "torch" && typeof fields.threads === "number") out.threads = fields.threads;
  return out;
}

/** Why portable kernels were asked for and not used, as a sentence for the log line; "" otherwise. */
function kernelsNote(fields: Record<string, unknown>): string {
  const k = fields.kernels as TorchBackendModule.KernelChoice | undefined;
  return k !== undefined && k.reason !== undefined ? `; ${k.reason}` : "";
}

/** {@link BackendInfo.detail} from the fields a backend reported. */
function describe(name: BackendName, f: Record<string, unknown>): string {
  const threads = (n: unknown) => `${String(n)} thread${n === 1 ? "" : "s"}`;
  if (name === "torch") {
    const k = f.kernels as TorchBackendModule.KernelChoice | undefined;
    const core = typeof f.openblasCore === "string" && f.openblasCore !== "" ? `OpenBLAS ${f.openblasCore}` : "no OpenBLAS";
    const aten = `ATen ${k?.pins.ATEN_CPU_CAPABILITY ?? "best for this CPU"}`;
    const set =
      k === undefined ? "" : k.portable ? "portable kernels" : k.requested === "native" ? "native kernels" : k.overridden ? "kernels set in the environment" : "native kernels, portable not possible";
    return `torch ${String(f.torchVersion)}, ${threads(f.threads)}, ${String(f.device)}, ${set} (${core}, ${aten})`;
  }
  if (name === "wasm") return `wasm, ${f.simd === true ? "SIMD" : "no SIMD"}, ${threads(f.threads)}`;
  if (name === "tensorflow-gpu" || name === "tensorflow") return f.gpuDevice === true ? `${name} (GPU device)` : name;
  return name;
}

interface TorchSettings {
  threads: number;
  device: string;
  kernels: KernelSet;
}

/** The torch backend's threads and device from the options and environment (validated). */
function torchOptions(opts: InitBackendOptions, env: Readonly<Record<string, string | undefined>>): TorchSettings {
  let threads = opts.threads;
  if (threads === undefined) {
    const raw = env[THREADS_ENV_VAR];
    if (raw !== undefined && raw.trim() !== "") {
      threads = Number(raw.trim());
      if (!Number.isInteger(threads) || threads < 1 || threads > 1024) {
        throw new BackendInitError(`${THREADS_ENV_VAR}=${JSON.stringify(raw)} must be an integer in 1..1024`);
      }
    }
  }
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > 1024)) {
    throw new BackendInitError(`options.threads=${threads} must be an integer in 1..1024`);
  }
  const device = (env[DEVICE_ENV_VAR] ?? "").trim() || "cpu";
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new BackendInitError(`${DEVICE_ENV_VAR}=${JSON.stringify(device)} must be cpu, cuda or cuda:N`);
  const rawKernels = (env[KERNELS_ENV_VAR] ?? "").trim();
  const kernels = rawKernels === "" ? "portable" : parseKernelSet(rawKernels);
  if (kernels === undefined) throw new BackendInitError(`${KERNELS_ENV_VAR}=${JSON.stringify(rawKernels)} must be portable or native`);
  return { threads: threads ?? 1, device, kernels };
}

type Attempt = { ok: true; fields: Record<string, unknown> } | { ok: false; reason: string };

async function tryBackend(name: BackendName, torch: TorchSettings): Promise<Attempt> {
  const pkg = PACKAGES[name];
  try {
    checkSingleCore(name);
    let fields: Record<string, unknown>;
    if (name === "tensorflow-gpu" || name === "tensorflow") fields = await useNative(pkg);
    else if (name === "torch") fields = await useTorch(torch);
    else if (name === "wasm") fields = await useWasm();
    else fields = await useCpu();
    return { ok: true, fields: { package: pkg, tfBackend: tf.getBackend(), ...fields } };
  } catch (err) {
    return { ok: false, reason: oneLine(err) };
  }
}

/** First non-empty line of an error's message: skip reasons are one line, never a stack. */
function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const line = msg.split("\n").map((l) => l.trim()).find((l) => l !== "");
  return line ?? (err instanceof Error ? err.name : "unknown error");
}

/**
 * Throws unless `pkg` resolves the very `@tensorflow/tfjs-core` file this library uses: a second
 * copy would have its own Tensor class and kernel registrations that ours never sees.
 */
function checkSingleCore(name: BackendName): void {
  const pkg = PACKAGES[name];
  const ours = realpathSync(load.resolve("@tensorflow/tfjs-core/package.json"));
  let pkgJson: string;
  try {
    pkgJson = load.resolve(`${pkg}/package.json`);
  } catch {
    throw new Error(`${pkg} is not installed`);
  }
  let from = createRequire(pkgJson);
  // The native packages reach tfjs-core through the @tensorflow/tfjs union package.
  if (name === "tensorflow-gpu" || name === "tensorflow") from = createRequire(from.resolve("@tensorflow/tfjs/package.json"));
  const theirs = realpathSync(from.resolve("@tensorflow/tfjs-core/package.json"));
  if (theirs !== ours) {
    throw new Error(`${pkg} uses another copy of @tensorflow/tfjs-core (${dirname(theirs)}, ours: ${dirname(ours)}); pin every @tensorflow package to ${tf.version_core}`);
  }
}

/** Runs `f` with tfjs' own console warnings muted (they are not ours to print). */
function quietly<T>(f: () => T): T {
  const prod = tf.env().getBool("PROD");
  tf.env().set("PROD", true);
  try {
    return f();
  } finally {
    tf.env().set("PROD", prod);
  }
}

/** `tf.setBackend` plus a smoke test (which also takes the cpu backend's one-off Node.js hint). */
async function activate(tfBackend: string): Promise<void> {
  if (!(await tf.setBackend(tfBackend))) throw new Error(`tf.setBackend("${tfBackend}") failed`);
  await tf.ready();
  const sum = quietly(() => tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0]));
  if (sum !== 3) throw new Error(`backend ${tfBackend} computed 1 + 2 = ${sum}`);
}

async function useNative(pkg: string): Promise<Record<string, unknown>> {
  const pkgDir = dirname(realpathSync(load.resolve(`${pkg}/package.json`)));
  const kernelsBefore = new Set(tf.getKernelsForBackend("tensorflow").map((k) => k.kernelName));
  const hadFactory = tf.findBackendFactory("tensorflow") != null;
  try {
    // Loading registers ~150 kernels for "tensorflow" before it looks for its native binding.
    quietly(() => load(pkg));
  } catch (err) {
    // Undo what the failed load left behind, so the next candidate (tfjs-node after tfjs-node-gpu,
    // or wasm) starts from a clean registry and a retry in this process loads it afresh.
    for (const k of tf.getKernelsForBackend("tensorflow")) {
      if (!kernelsBefore.has(k.kernelName)) tf.unregisterKernel(k.kernelName, "tensorflow");
    }
    if (!hadFactory && tf.findBackendFactory("tensorflow") != null) tf.removeBackend("tensorflow");
    for (const key of Object.keys(load.cache)) {
      if (key.startsWith(pkgDir + sep)) delete load.cache[key];
    }
    throw new Error(nativeReason(err));
  }
  await activate("tensorflow");
  // libtensorflow falls back to its CPU device when CUDA is absent; say so instead of guessing.
  const gpu = (tf.backend() as unknown as { isUsingGpuDevice?: unknown }).isUsingGpuDevice;
  return typeof gpu === "boolean" ? { gpuDevice: gpu } : {};
}

/** Says why a native package did not load, in one line, with the usual cause when we know it. */
function nativeReason(err: unknown): string {
  const line = oneLine(err);
  const m = /native addon module \(tfjs_binding\.node\) can not be found at path: (\S+?)\.?$/.exec(line);
  if (m) return `native addon not built (${m[1]} is missing: the package's install script, which downloads libtensorflow, did not run or failed)`;
  return line;
}

async function useTorch(settings: TorchSettings): Promise<Record<string, unknown>> {
  const torch = load("@rlhf/torch-backend") as typeof TorchBackendModule;
  const { kernels, fallbacks } = torch.registerTorchBackend(settings);
  await activate("torch");
  const info = torch.torchBackendInfo();
  return { ...info, nativeKernels: kernels, hostFallbackKernels: fallbacks };
}

async function useWasm(): Promise<Record<string, unknown>> {
  const wasm = load("@tensorflow/tfjs-backend-wasm") as typeof TfWasm;
  // The package's Node entry (dist/tf-backend-wasm.node.js) sits beside the .wasm files and finds
  // them through __dirname; we still give the absolute folder explicitly so that this keeps
  // working when the code is bundled (where __dirname is the bundle's) and from any cwd.
  const distDir = dirname(realpathSync(load.resolve("@tensorflow/tfjs-backend-wasm")));
  const missing = ["tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm"].filter((f) => !existsSync(join(distDir, f)));
  if (missing.length > 0) throw new Error(`missing ${missing.join(", ")} in ${distDir}`);
  // setWasmPaths throws once the wasm module is initialised (e.g. tf.setBackend("wasm") ran before).
  if (!("wasm" in tf.engine().registry)) wasm.setWasmPaths(distDir + sep);
  const fallbackKernels = registerWasmFallbacks();
  // Emscripten's Node glue adds process listeners that rethrow every uncaught exception and
  // unhandled rejection, which would run before (and defeat) a service's own shutdown handlers.
  // Node's default behaviour without them is the same crash, so drop them.
  const uncaught = process.listeners("uncaughtException");
  const unhandled = process.listeners("unhandledRejection");
  try {
    await activate("wasm");
  } finally {
    for (const l of process.listeners("uncaughtException")) {
      if (!uncaught.includes(l)) process.removeListener("uncaughtException", l);
    }
    for (const l of process.listeners("unhandledRejection")) {
      if (!unhandled.includes(l)) process.removeListener("unhandledRejection", l);
    }
  }
  const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
  return { simd, threads: wasm.getThreadsCount(), fallbackKernels, wasmDir: distDir };
}

async function useCpu(): Promise<Record<string, unknown>> {
  load("@tensorflow/tfjs-backend-cpu");
  // The stock cpu UnsortedSegmentSum loops over every segment (vocabulary entry): replace it.
  const fallbackKernels = registerFallbackKernels("cpu", [tf.UnsortedSegmentSum]);
  await activate("cpu");
  return { fallbackKernels };
}
