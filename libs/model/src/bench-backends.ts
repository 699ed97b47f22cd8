/**
 * `node libs/model/dist/bench.js --backends`: training (forward + backward + AdamW, the Trainer's
 * own step with clipping) and KV-cache generation on the native torch backend and on wasm, for the
 * demo policy, `small` and a 256-wide 6-layer model, plus the same training step in PyTorch (the
 * reference: ./scripts/pytorch-train-step.py, one thread) where `python3 -c 'import torch'` works.
 *
 * Each measurement runs in a child process of its own (one tfjs backend per process), one thread
 * each (RLHF_TORCH_THREADS=1, OPENBLAS_NUM_THREADS=1), and the three engines take turns for
 * `--rounds` rounds (default 2) so that a slow spell of a shared machine hits them alike; each
 * figure is the best round. Ends with one line per model:
 * `train <model>: native=<tok/s> wasm=<tok/s> pytorch=<tok/s or n/a> native/wasm=<x> native/pytorch=<x>`.
 * `--models demo,small,256x6` picks models; `--no-generate` skips generation.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import type { GPT2Config } from "./config";
import { presetConfig } from "./config";
import { GPT2 } from "./gpt2";
import { generate } from "./generate";
import { Trainer, lmLoss, makeLmBatch } from "./train";

interface BenchModel {
  /** Name in the output. */
  name: string;
  config: GPT2Config;
  /** Training batch [B, T]. */
  B: number;
  T: number;
  /** Timed training steps per engine (after one warm-up step). */
  steps: { torch: number; wasm: number; pytorch: number };
  /** Generation: prompts x new tokens. */
  gen: { prompts: number; newTokens: number };
}

const MODELS: readonly BenchModel[] = [
  {
    // The default demo's policy: 64 wide, 4 layers, the Brown BPE (2048 ids), 128 positions.
    name: "demo-policy",
    config: presetConfig("small", { vocabSize: 2048, nEmbd: 64, nPositions: 128 }),
    B: 16,
    T: 128,
    steps: { torch: 12, wasm: 3, pytorch: 12 },
    gen: { prompts: 16, newTokens: 24 },
  },
  {
    name: "small",
    config: presetConfig("small"),
    B: 8,
    T: 128,
    steps: { torch: 4, wasm: 2, pytorch: 4 },
    gen: { prompts: 4, newTokens: 48 },
  },
  {
    name: "256x6",
    config: { vocabSize: 258, nPositions: 256, nEmbd: 256, nLayer: 6, nHead: 8, layerNormEpsilon: 1e-5 },
    B: 16,
    T: 128,
    steps: { torch: 3, wasm: 1, pytorch: 3 },
    gen: { prompts: 8, newTokens: 48 },
  },
];

/** One timed measurement (a child process's answer). */
interface Measured {
  tokens: number;
  seconds: number;
  cpuSeconds: number;
}

function cpuNow(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
}

/** Runs in the child: one measurement on the backend RLHF_BACKEND names. */
export async function benchWorker(modelName: string, what: "train" | "generate"): Promise<Measured> {
  const model = MODELS.find((m) => m.name === modelName);
  if (model === undefined) throw new Error(`unknown bench model ${modelName}`);
  const info = await initBackend();
  const m = GPT2.random(model.config, 0);
  try {
    if (what === "generate") {
      const prompts = Array.from({ length: model.gen.prompts }, (_, b) => Array.from({ length: 16 }, (_, i) => (b * 31 + i * 7) % model.config.vocabSize));
      generate(m, prompts, { maxNewTokens: 2 }); // warm-up
      const t0 = performance.now();
      const c0 = cpuNow();
      const out = generate(m, prompts, { maxNewTokens: model.gen.newTokens, seed: 1 });
      const tokens = out.reduce((a, s) => a + s.tokens.length, 0);
      return { tokens, seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuNow() - c0 };
    }
    const { B, T } = model;
    const steps = info.name === "torch" ? model.steps.torch : model.steps.wasm;
    const seqs = Array.from({ length: B }, (_, b) => ({ tokens: Array.from({ length: T }, (_, i) => (b * 131 + i * 7) % model.config.vocabSize) }));
    const batch = makeLmBatch(seqs);
    const trainer = new Trainer(m.parameters(), { schedule: { kind: "constant", lr: 1e-4 } });
    try {
      trainer.accumulate(() => lmLoss(m, batch.tokens, batch.lossMask)); // warm-up
      trainer.update();
      const t0 = performance.now();
      const c0 = cpuNow();
      for (let i = 0; i < steps; i++) {
        trainer.accumulate(() => lmLoss(m, batch.tokens, batch.lossMask));
        trainer.update();
      }
      return { tokens: B * T * steps, seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuNow() - c0 };
    } finally {
      tf.dispose([batch.tokens, batch.lossMask]);
      trainer.dispose();
    }
  } finally {
    m.dispose();
  }
}

const ONE_THREAD = { RLHF_TORCH_THREADS: "1", OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1" };

function child(backend: "torch" | "wasm", model: string, what: "train" | "generate", env: Record<string, string> = {}): Measured | string {
  const r = spawnSync(process.execPath, [process.argv[1], "--bench-worker", model, what], {
    env: { ...process.env, ...ONE_THREAD, RLHF_BACKEND: backend, ...env },
    encoding: "utf8",
    maxBuffer: 16 << 20,
  });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  if (r.status !== 0 || !line.startsWith("{")) return `failed (${(r.stderr || r.stdout).trim().split("\n").pop()})`;
  return JSON.parse(line) as Measured;
}

/** The python with torch: RLHF_PYTHON, else python3 on PATH, else Debian's /usr/bin/python3. */
function findTorchPython(): string | undefined {
  const candidates = [process.env.RLHF_PYTHON, "python3", "/usr/bin/python3"].filter((p): p is string => !!p);
  for (const py of candidates) {
    if (spawnSync(py, ["-c", "import torch"], { stdio: "ignore" }).status === 0) return py;
  }
  return undefined;
}

function pytorch(py: string, model: BenchModel): Measured | string {
  const script = join(__dirname, "..", "scripts", "pytorch-train-step.py");
  if (!existsSync(script)) return `failed (${script} is missing)`;
  const c = model.config;
  const args = [script, c.vocabSize, c.nEmbd, c.nLayer, c.nHead, c.nPositions, model.B, model.T, model.steps.pytorch].map(String);
  const r = spawnSync(py, args, { env: { ...process.env, ...ONE_THREAD }, encoding: "utf8" });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  if (r.status !== 0 || !line.startsWith("{")) return `failed (${(r.stderr || r.stdout).trim().split("\n").pop()})`;
  const j = JSON.parse(line) as { tokens: number; seconds: number; cpu_seconds: number };
  return { tokens: j.tokens, seconds: j.seconds, cpuSeconds: j.cpu_seconds };
}

function best(ms: (Measured | string)[]): Measured | undefined {
  const ok = ms.filter((m): m is Measured => typeof m !== "string");
  if (ok.length === 0) return undefined;
  return ok.reduce((a, b) => (b.tokens / b.seconds > a.tokens / a.seconds ? b : a));
}

const rate = (m: Measured | undefined): string => (m ? (m.tokens / m.seconds).toFixed(0) : "n/a");
const perCpu = (m: Measured | undefined): string => (m ? (m.tokens / m.cpuSeconds).toFixed(0) : "n/a");
const ratio = (a: Measured | undefined, b: Measured | undefined): string => (a && b ? (a.tokens / a.seconds / (b.tokens / b.seconds)).toFixed(2) : "n/a");

/** `--rounds N` (default 2) and `--models a,b` (default all) of the command line, checked. */
function roundsAndModels(argv: readonly string[]): { rounds: number; models: BenchModel[] } {
  const roundsArg = argv.indexOf("--rounds");
  const rounds = roundsArg >= 0 ? Number(argv[roundsArg + 1]) : 2;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be an integer >= 1`);
  const modelsArg = argv.indexOf("--models");
  const wanted = modelsArg >= 0 ? argv[modelsArg + 1].split(",") : MODELS.map((m) => m.name);
  const models = MODELS.filter((m) => wanted.includes(m.name));
  if (models.length !== wanted.length) throw new Error(`--models takes a comma-separated list of ${MODELS.map((m) => m.name).join(", ")}`);
  return { rounds, models };
}

/** The parent: every measurement, the table, then one summary line per model. */
export function benchBackends(argv: readonly string[]): void {
  const { rounds, models } = roundsAndModels(argv);
  const withGen = !argv.includes("--no-generate");
  const py = findTorchPython();
  console.log(`bench --backends: node ${process.version}, one thread per engine, ${rounds} round(s), best round kept; pytorch: ${py ?? "n/a (no python3 with torch)"}`);
  const rows: string[] = [];
  const summary: string[] = [];
  for (const model of models) {
    const train: Record<"torch" | "wasm" | "pytorch", (Measured | string)[]> = { torch: [], wasm: [], pytorch: [] };
    const gen: Record<"torch" | "wasm", (Measured | string)[]> = { torch: [], wasm: [] };
    for (let r = 0; r < rounds; r++) {
      train.torch.push(child("torch", model.name, "train"));
      train.wasm.push(child("wasm", model.name, "train"));
      if (py) train.pytorch.push(pytorch(py, model));
      if (withGen) {
        gen.torch.push(child("torch", model.name, "generate"));
        gen.wasm.push(child("wasm", model.name, "generate"));
      }
      console.error(`${model.name} round ${r + 1}: train native ${rate(best(train.torch))} wasm ${rate(best(train.wasm))} pytorch ${rate(best(train.pytorch))} tok/s`);
    }
    for (const [engine, ms] of Object.entries(train)) {
      const b = best(ms);
      const failed = ms.find((m) => typeof m === "string");
      if (engine === "pytorch" && !py) continue;
      rows.push(`| ${model.name} | train B=${model.B} T=${model.T} | ${engine === "torch" ? "native (torch)" : engine} | ${rate(b)} | ${perCpu(b)} |${b ? "" : ` ${failed}`}`);
    }
    if (withGen) {
      for (const [engine, ms] of Object.entries(gen)) {
        const b = best(ms);
        rows.push(`| ${model.name} | generate, KV cache, ${model.gen.prompts} x ${model.gen.newTokens} new | ${engine === "torch" ? "native (torch)" : engine} | ${rate(b)} | ${perCpu(b)} |`);
      }
    }
    const [t, w, p] = [best(train.torch), best(train.wasm), best(train.pytorch)];
    summary.push(`train ${model.name}: native=${rate(t)} wasm=${rate(w)} pytorch=${rate(p)} native/wasm=${ratio(t, w)} native/pytorch=${ratio(t, p)}`);
  }
  console.log("| model | measurement | engine | tokens/s | tokens/CPU-s |");
  console.log("|---|---|---|---:|---:|");
  for (const r of rows) console.log(r);
  for (const s of summary) console.log(s);
}

/**
 * `node libs/model/dist/bench.js --kernels`: the torch backend's portable CPU kernels (the default,
 * the same bits on every x86-64 machine with AVX2) against this CPU's own (`RLHF_TORCH_KERNELS=native`),
 * training and generation, taking turns for `--rounds` rounds, best round kept. Ends with one line
 * per model: `kernels <model>: train portable=<tok/s> native=<tok/s> portable/native=<x>; generate ...`.
 */
export function benchKernels(argv: readonly string[]): void {
  const { rounds, models } = roundsAndModels(argv);
  console.log(`bench --kernels: node ${process.version}, torch backend, one thread, ${rounds} round(s), best round kept`);
  const summary: string[] = [];
  for (const model of models) {
    const runs: Record<string, (Measured | string)[]> = {};
    for (let r = 0; r < rounds; r++) {
      for (const what of ["train", "generate"] as const) {
        for (const kernels of ["portable", "native"]) {
          (runs[`${what} ${kernels}`] ??= []).push(child("torch", model.name, what, { RLHF_TORCH_KERNELS: kernels }));
        }
      }
    }
    const parts = (["train", "generate"] as const).map((what) => {
      const [p, n] = [best(runs[`${what} portable`]), best(runs[`${what} native`])];
      const failed = [...runs[`${what} portable`], ...runs[`${what} native`]].find((m) => typeof m === "string");
      return `${what} portable=${rate(p)} native=${rate(n)} portable/native=${ratio(p, n)}${failed ? ` (${failed})` : ""}`;
    });
    summary.push(`kernels ${model.name}: ${parts.join("; ")}`);
  }
  for (const s of summary) console.log(s);
}
