/**
 * Throughput benchmark: generated tokens/second with and without the key/value cache, and
 * training tokens/second (forward + backward + AdamW), for the `small` and `gpt2-124m` shapes.
 * Run after a build: `node libs/model/dist/bench.js [--quick]` (backend: RLHF_BACKEND, default the
 * first that loads). Random weights; batch of 1 prompt of 16 tokens for generation.
 * GPT-2-124M without the cache is quadratic and slow on wasm: its runs use fewer new tokens
 * (the table's "new" column says how many were actually generated). GPT-2-124M training runs
 * only with `--train-124m` (on wasm it aborts: weights, gradients and Adam moments alone are
 * ~2 GB, past what the wasm module can allocate); `RLHF_BACKEND=cpu ... --train-124m-only`
 * measures just that on the pure-JS cpu backend (one warm-up and one timed step, B=1, T=16).
 * `--124m-no-cache` runs only GPT-2-124M generation without the cache at the full 128 and 512 new
 * tokens (about an hour of one core on wasm).
 *
 * `--matmul-ab` measures only training steps (forward + backward + AdamW) with this project's wasm
 * `BatchMatMul` (transposed products of single matrices run as Transpose + XNNPACK, see
 * @rlhf/compute's kernels.ts) and then with tfjs' stock kernel, on the `small` shape and on the
 * default demo's policy (64 wide, 4 layers, byte vocabulary, B=16, T=128).
 *
 * `--backends` compares the native torch backend, wasm and PyTorch in one run (./bench-backends.ts);
 * `--kernels` the torch backend's portable CPU kernels with this CPU's own (same file).
 *
 * Besides wall seconds, every row gives the process's CPU seconds (user + system): the backends
 * here compute on one thread, so on a busy machine CPU seconds are the figure that does not
 * depend on what else runs.
 */
import * as tf from "@tensorflow/tfjs-core";
import { initBackend, registerFallbackKernels, restoreNativeKernel } from "@rlhf/compute";
import type { GPT2Config } from "./config";
import { presetConfig } from "./config";
import { GPT2 } from "./gpt2";
import { generate } from "./generate";
import { Trainer, lmLoss, makeLmBatch } from "./train";
import { benchBackends, benchKernels, benchWorker } from "./bench-backends";

interface Row {
  config: string;
  what: string;
  tokens: number;
  seconds: number;
  cpuSeconds: number;
}

function time<T>(fn: () => T): { value: T; seconds: number; cpuSeconds: number } {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const value = fn();
  const c = process.cpuUsage(c0);
  return { value, seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: (c.user + c.system) / 1e6 };
}

/** Training-step throughput of `config` at [B, T] over `steps` timed steps (after one warm-up). */
function trainRow(name: string, config: GPT2Config, B: number, T: number, steps: number, what: string): Row {
  const m = GPT2.random(config, 0);
  const seqs = Array.from({ length: B }, (_, b) => ({ tokens: Array.from({ length: T }, (_, i) => (b * 131 + i * 7) % config.vocabSize) }));
  const batch = makeLmBatch(seqs);
  const trainer = new Trainer(m.parameters(), { schedule: { kind: "constant", lr: 1e-4 } });
  try {
    trainer.accumulate(() => lmLoss(m, batch.tokens, batch.lossMask)); // warm-up
    trainer.update();
    const { seconds, cpuSeconds } = time(() => {
      for (let i = 0; i < steps; i++) {
        trainer.accumulate(() => lmLoss(m, batch.tokens, batch.lossMask));
        trainer.update();
      }
    });
    const row = { config: name, what: `${what} B=${B} T=${T}`, tokens: B * T * steps, seconds, cpuSeconds };
    console.error(`${row.config} ${row.what}: ${(row.tokens / cpuSeconds).toFixed(1)} tokens per CPU-second`);
    return row;
  } finally {
    tf.dispose([batch.tokens, batch.lossMask]);
    trainer.dispose();
    m.dispose();
  }
}

/** `--matmul-ab`: training with this project's wasm BatchMatMul, then with the stock one. */
function matmulAb(backend: string): Row[] {
  if (backend !== "wasm") throw new Error(`--matmul-ab compares wasm kernels; the backend is ${backend} (set RLHF_BACKEND=wasm)`);
  const shapes: [string, GPT2Config, number, number, number][] = [
    ["demo policy", presetConfig("small", { vocabSize: 258, nEmbd: 64 }), 16, 128, 4],
    ["small", presetConfig("small", { nPositions: 512 }), 8, 128, 2],
  ];
  const rows: Row[] = [];
  for (const [name, config, B, T, steps] of shapes) {
    registerFallbackKernels("wasm", [tf.BatchMatMul]);
    rows.push(trainRow(name, config, B, T, steps, "train, transposes first (this project)"));
    if (!restoreNativeKernel(tf.BatchMatMul, "wasm")) throw new Error("the wasm BatchMatMul was not wrapped");
    rows.push(trainRow(name, config, B, T, steps, "train, stock tfjs BatchMatMul"));
  }
  registerFallbackKernels("wasm", [tf.BatchMatMul]);
  return rows;
}

async function main(): Promise<void> {
  const worker = process.argv.indexOf("--bench-worker");
  if (worker >= 0) {
    const r = await benchWorker(process.argv[worker + 1], process.argv[worker + 2] as "train" | "generate");
    console.log(JSON.stringify(r));
    return;
  }
  if (process.argv.includes("--backends")) {
    benchBackends(process.argv);
    return;
  }
  if (process.argv.includes("--kernels")) {
    benchKernels(process.argv);
    return;
  }
  const info = await initBackend();
  if (process.argv.includes("--matmul-ab")) {
    printRows(info.name, matmulAb(info.name));
    return;
  }
  const quick = process.argv.includes("--quick");
  // GPT-2-124M training alone, small (B=1, T=16, 1 step): for the pure-JS cpu backend, the only
  // one here whose heap holds weights + gradients + Adam moments (wasm's does not).
  const train124mOnly = process.argv.includes("--train-124m-only");
  const rows: Row[] = [];
  const plan: { name: "small" | "gpt2-124m"; gen: [number, boolean][]; train: [number, number, number] }[] = [
    { name: "small", gen: [[128, true], [128, false], [512 - 16, true], [512 - 16, false]], train: [8, 128, 3] },
    { name: "gpt2-124m", gen: [[128, true], [32, false], [512, true]], train: [1, 128, 1] },
  ];
  if (train124mOnly) {
    plan.splice(0, plan.length, { name: "gpt2-124m", gen: [], train: [1, 16, 1] });
  }
  const noCache124m = process.argv.includes("--124m-no-cache");
  if (noCache124m) {
    plan.splice(0, plan.length, { name: "gpt2-124m", gen: [[128, false], [512, false]], train: [1, 128, 1] });
  }
  for (const p of plan) {
    const config = presetConfig(p.name, p.name === "small" ? { nPositions: 512 } : {});
    const m = GPT2.random(config, 0);
    const prompt = Array.from({ length: 16 }, (_, i) => (i * 37) % 1000);
    if (p.gen.length > 0) generate(m, [prompt], { maxNewTokens: 2 }); // warm-up
    for (const [n0, useCache] of p.gen) {
      const n = quick ? Math.min(n0, 16) : Math.min(n0, config.nPositions - prompt.length);
      const { seconds, cpuSeconds } = time(() => generate(m, [prompt], { maxNewTokens: n, useCache, seed: 1 }));
      rows.push({ config: p.name, what: `generate ${useCache ? "cache" : "no cache"} (${n} new)`, tokens: n, seconds, cpuSeconds });
      console.error(`${p.name} ${useCache ? "cache" : "no-cache"} ${n}: ${(n / seconds).toFixed(1)} tok/s (${cpuSeconds.toFixed(1)} CPU s)`);
    }
    m.dispose();
    // GPT-2-124M training aborts the wasm module (out of its 4 GiB heap: weights, grads, two Adam
    // moments and activations); only with --train-124m, for native backends.
    if (p.name === "gpt2-124m" && ((!process.argv.includes("--train-124m") && !train124mOnly) || noCache124m)) continue;
    const [B, T, steps] = p.train;
    rows.push(trainRow(p.name, config, B, T, quick ? 1 : steps, "train"));
  }
  printRows(info.name, rows);
}

function printRows(backend: string, rows: readonly Row[]): void {
  console.log(`backend: ${backend}, node ${process.version}`);
  console.log("| config | measurement | tokens | seconds | tokens/s | CPU seconds | tokens/CPU-s |");
  console.log("|---|---|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    const cells = [r.config, r.what, r.tokens, r.seconds.toFixed(2), (r.tokens / r.seconds).toFixed(1), r.cpuSeconds.toFixed(2), (r.tokens / r.cpuSeconds).toFixed(2)];
    console.log(`| ${cells.join(" | ")} |`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
