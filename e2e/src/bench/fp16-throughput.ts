/**
 * Benchmark: float32 <-> float16 conversion of the tensor transport (`float32ToFloat16`,
 * `float16ToFloat32`) on 4M elements, against a plain copy of the same float32 array (`slice`) in
 * the same run. Prints ns per element and the ratio to the copy, median of BENCH_REPEATS runs
 * (default 5). Asserts nothing about time (the unit test checks the conversion itself).
 *
 *   pnpm bench:fp16            (BENCH_ELEMENTS=... BENCH_REPEATS=... to change the size / runs)
 */
import { float16ToFloat32, float32ToFloat16 } from "@rlhf/tensor-transport";

const n = Number(process.env.BENCH_ELEMENTS ?? 4_000_000);
const repeats = Number(process.env.BENCH_REPEATS ?? 5);

function nsPerElement(fn: () => unknown): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const src = new Float32Array(n);
for (let i = 0; i < n; i++) src[i] = (i % 1000) * 0.37 - 150;
const half = float32ToFloat16(src);
const runs = { copy: [] as number[], encode: [] as number[], decode: [] as number[] };
for (let r = 0; r < repeats; r++) {
  runs.copy.push(nsPerElement(() => src.slice()));
  runs.encode.push(nsPerElement(() => float32ToFloat16(src)));
  runs.decode.push(nsPerElement(() => float16ToFloat32(half)));
}
const copy = median(runs.copy);
console.log(`float16 conversion, ${n} elements, median of ${repeats} runs (Node ${process.versions.node}):`);
for (const [name, xs] of Object.entries(runs)) {
  const ns = median(xs);
  console.log(`  ${name.padEnd(7)} ${ns.toFixed(2).padStart(7)} ns/element  ${(ns / copy).toFixed(1).padStart(6)}x a plain copy`);
}
