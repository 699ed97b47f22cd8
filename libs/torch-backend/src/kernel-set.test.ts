// The kernel-set choice as a pure function of the environment, the architecture and the CPU's
// flags (the addon's own report of OpenBLAS' core is checked in libs/compute's backend-torch test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { chooseKernels, cpuFlags, parseKernelSet } from "./kernel-set";

const AVX2 = new Set(["sse2", "avx", "avx2", "fma", "avx512f"]);

test("portable pins OpenBLAS' Haswell kernels and ATen's AVX2 ones on x86-64 with AVX2 and FMA", () => {
  const env: Record<string, string | undefined> = { PATH: "/bin" };
  const c = chooseKernels("portable", env, { arch: "x64", flags: AVX2 });
  assert.deepEqual(c, { requested: "portable", portable: true, pins: { OPENBLAS_CORETYPE: "Haswell", ATEN_CPU_CAPABILITY: "avx2" } });
  assert.deepEqual(env, { PATH: "/bin", OPENBLAS_CORETYPE: "Haswell", ATEN_CPU_CAPABILITY: "avx2" });
  // The same values set by the operator (in any case) are still portable.
  assert.equal(chooseKernels("portable", { OPENBLAS_CORETYPE: "HASWELL" }, { arch: "x64", flags: AVX2 }).portable, true);
});

test("portable is not possible without AVX2 and FMA, or off x86-64: nothing is pinned, and it says why", () => {
  const env: Record<string, string | undefined> = {};
  const old = chooseKernels("portable", env, { arch: "x64", flags: new Set(["sse2", "avx"]) });
  assert.equal(old.portable, false);
  assert.match(old.reason ?? "", /^portable kernels need x86-64 with AVX2 and FMA; the CPU lacks avx2 and fma: /);
  assert.deepEqual(env, {});
  const arm = chooseKernels("portable", env, { arch: "arm64", flags: new Set(["asimd"]) });
  assert.match(arm.reason ?? "", /the CPU is arm64, not x86-64/);
  assert.deepEqual(env, {});
});

test("an operator's own OPENBLAS_CORETYPE or ATEN_CPU_CAPABILITY is kept and reported", () => {
  const env: Record<string, string | undefined> = { OPENBLAS_CORETYPE: "SkylakeX" };
  const c = chooseKernels("portable", env, { arch: "x64", flags: AVX2 });
  assert.equal(c.portable, false);
  assert.equal(c.reason, "set in the environment: OPENBLAS_CORETYPE=SkylakeX");
  assert.deepEqual(c.overridden, ["OPENBLAS_CORETYPE=SkylakeX"]);
  assert.deepEqual(env, { OPENBLAS_CORETYPE: "SkylakeX", ATEN_CPU_CAPABILITY: "avx2" });
});

test("native leaves the environment alone", () => {
  const env: Record<string, string | undefined> = {};
  assert.deepEqual(chooseKernels("native", env, { arch: "x64", flags: AVX2 }), { requested: "native", portable: false, pins: {} });
  assert.deepEqual(env, {});
});

test("cpuFlags reads the flags line of /proc/cpuinfo; parseKernelSet knows two names", () => {
  assert.deepEqual(cpuFlags("processor\t: 0\nflags\t\t: fpu avx2 fma\nbugs\t: x\n"), new Set(["fpu", "avx2", "fma"]));
  assert.deepEqual(cpuFlags("no flags here"), new Set());
  assert.equal(parseKernelSet(" Portable "), "portable");
  assert.equal(parseKernelSet("native"), "native");
  assert.equal(parseKernelSet("fast"), undefined);
});
