/**
 * Which CPU kernels libtorch and OpenBLAS use, chosen before the addon (and with it OpenBLAS) is
 * loaded. Both libraries pick kernels for the CPU they find: OpenBLAS a GEMM kernel and blocking
 * per core type (Haswell, SkylakeX, Cooperlake, Zen, ...), ATen a vector width (AVX2 or AVX-512).
 * Different kernels add in a different order, so the same seed gave different bits on two
 * machines, and after thousands of optimizer steps different figures (docs/compute-backends.md).
 *
 * - `portable` (the default): on x86-64 with AVX2 and FMA, OpenBLAS' Haswell kernels
 *   (`OPENBLAS_CORETYPE=Haswell`) and ATen's AVX2 kernels (`ATEN_CPU_CAPABILITY=avx2`): the same
 *   code, hence the same bits, on every such machine. Where the CPU lacks AVX2 or FMA (or is not
 *   x86-64) nothing is pinned and the choice says why.
 * - `native`: whatever the libraries pick for this CPU.
 * Either library's variable set by the operator is left alone (and reported).
 */
import { readFileSync } from "node:fs";

/** The kernel sets {@link chooseKernels} knows. */
export type KernelSet = "portable" | "native";

/** Every {@link KernelSet}. */
export const KERNEL_SETS: readonly KernelSet[] = ["portable", "native"];

/** Environment variable with the kernel set: `portable` (default) or `native`. */
export const KERNELS_ENV_VAR = "RLHF_TORCH_KERNELS";

/** What the portable set pins, variable by variable. */
export const PORTABLE_PINS: Readonly<Record<string, string>> = { OPENBLAS_CORETYPE: "Haswell", ATEN_CPU_CAPABILITY: "avx2" };

/** The outcome of {@link chooseKernels}. */
export interface KernelChoice {
  /** The set asked for. */
  requested: KernelSet;
  /** True when the portable pins are in effect (set now, or already set to the same values). */
  portable: boolean;
  /** The pinning variables as they are now in the environment (absent: the library's own choice). */
  pins: Record<string, string>;
  /** Why `portable` was asked for but is not in effect; absent otherwise. */
  reason?: string;
  /** The pinning variables the operator set to other values (kept as they are). */
  overridden?: string[];
}

/** The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read, e.g. not Linux). */
export function cpuFlags(cpuinfo?: string): Set<string> {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return new Set();
    }
  }
  const line = text.split("\n").find((l) => /^flags\s*:/.test(l));
  return new Set(line === undefined ? [] : line.replace(/^flags\s*:/, "").trim().split(/\s+/));
}

/**
 * Applies `set` to `env` (process.env by default; it must run before the addon is loaded) and says
 * what is in effect. `arch` and `flags` default to this machine's (for tests).
 */
export function chooseKernels(
  set: KernelSet,
  env: Record<string, string | undefined> = process.env,
  machine: { arch?: string; flags?: Set<string> } = {},
): KernelChoice {
  const current = (): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const k of Object.keys(PORTABLE_PINS)) {
      const v = env[k]?.trim();
      if (v) out[k] = v;
    }
    return out;
  };
  if (set === "native") return { requested: set, portable: false, pins: current() };
  const arch = machine.arch ?? process.arch;
  const flags = machine.flags ?? cpuFlags();
  const missing = ["avx2", "fma"].filter((f) => !flags.has(f));
  if (arch !== "x64" || missing.length > 0) {
    const why = arch !== "x64" ? `the CPU is ${arch}, not x86-64` : `the CPU lacks ${missing.join(" and ")}`;
    return { requested: set, portable: false, pins: current(), reason: `portable kernels need x86-64 with AVX2 and FMA; ${why}: this machine's own kernels are used, and its figures may differ from other machines'` };
  }
  const overridden: string[] = [];
  for (const [k, v] of Object.entries(PORTABLE_PINS)) {
    const have = env[k]?.trim();
    if (!have) env[k] = v;
    else if (have.toLowerCase() !== v.toLowerCase()) overridden.push(`${k}=${have}`);
  }
  const pins = current();
  if (overridden.length > 0) return { requested: set, portable: false, pins, reason: `set in the environment: ${overridden.join(", ")}`, overridden };
  return { requested: set, portable: true, pins };
}

/** Parses a kernel-set name; undefined for an unknown one. */
export function parseKernelSet(raw: string): KernelSet | undefined {
  const v = raw.trim().toLowerCase();
  return (KERNEL_SETS as readonly string[]).includes(v) ? (v as KernelSet) : undefined;
}
