// run-tests: own process (the compute backend is chosen once per process)
// Gradients of a small GPT-2 style decoder (forward, LM loss, logprob picking, PPO-style and
// value losses) on wasm, compared with the cpu backend's stock kernels. Any kernel wasm lacks
// throws "Kernel 'X' not registered for backend 'wasm'" here: that is how the fallback list in
// kernels.ts was found.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { initBackend } from "./backend";
import { WASM_FALLBACK_KERNELS, logSigmoid } from "./kernels";

const B = 2; // batch
const T = 6; // context
const V = 11; // vocabulary
const C = 8; // width
const H = 2; // heads
const D = C / H; // head width
const EPS = 1e-5;

/** Deterministic uniform [-scale, scale) values (mulberry32). */
function randomValues(n: number, seed: number, scale = 0.5): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

const PARAM_SHAPES: Record<string, number[]> = {
  wte: [V, C],
  wpe: [T, C],
  "h.0.ln_1.weight": [C],
  "h.0.ln_1.bias": [C],
  "h.0.attn.c_attn.weight": [C, 3 * C],
  "h.0.attn.c_attn.bias": [3 * C],
  "h.0.attn.c_proj.weight": [C, C],
  "h.0.attn.c_proj.bias": [C],
  "h.0.ln_2.weight": [C],
  "h.0.ln_2.bias": [C],
  "h.0.mlp.c_fc.weight": [C, 4 * C],
  "h.0.mlp.c_fc.bias": [4 * C],
  "h.0.mlp.c_proj.weight": [4 * C, C],
  "h.0.mlp.c_proj.bias": [C],
  "ln_f.weight": [C],
  "ln_f.bias": [C],
  "v_head.weight": [C, 1],
};

const TOKENS = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8];
const RESPONSE_MASK = [0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1]; // int32 0/1, [B, T]

type Params = Record<string, tf.Tensor>;

function layerNormMoments(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, EPS))), g), b);
}

/** Same maths, written with mean/sub/square/sqrt/div instead of moments/rsqrt. */
function layerNormSqrt(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), -1, true);
  return tf.add(tf.mul(tf.div(centred, tf.sqrt(tf.add(variance, EPS))), g), b);
}

function gelu(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

/** Scalar objective mixing every op a GPT-2 decoder and the RLHF losses use. */
function objective(p: Params): tf.Scalar {
  const tokens = tf.tensor2d(TOKENS, [B, T], "int32");
  const positions = tf.range(0, T, 1, "int32");
  let x = tf.add(tf.gather(p.wte, tokens), tf.gather(p.wpe, positions)); // [B, T, C]

  // Attention with a causal mask built two ways (bandPart, and greater/less on index grids).
  const a = layerNormMoments(x, p["h.0.ln_1.weight"], p["h.0.ln_1.bias"]);
  const qkv = tf.reshape(tf.add(tf.matMul(tf.reshape(a, [B * T, C]), p["h.0.attn.c_attn.weight"]), p["h.0.attn.c_attn.bias"]), [B, T, 3 * C]);
  const [q, k, v] = tf.split(qkv, 3, -1).map((t) => tf.transpose(tf.reshape(t, [B, T, H, D]), [0, 2, 1, 3])); // [B, H, T, D]
  const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D)); // [B, H, T, T]
  const band = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
  const row = tf.reshape(tf.range(0, T, 1, "int32"), [T, 1]);
  const col = tf.reshape(tf.range(0, T, 1, "int32"), [1, T]);
  const causal = tf.logicalAnd(tf.greater(band, 0.5), tf.less(col, tf.add(row, 1)));
  // bandPart on the data path too (a no-op on an already causal softmax, but differentiated).
  const att = tf.linalg.bandPart(tf.softmax(tf.where(causal, scores, tf.fill([B, H, T, T], -1e9))), -1, 0);
  const y = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [B * T, C]); // [B*T, C]
  x = tf.add(x, tf.reshape(tf.add(tf.matMul(y, p["h.0.attn.c_proj.weight"]), p["h.0.attn.c_proj.bias"]), [B, T, C]));

  // MLP; the GELU runs on two halves split and concatenated back.
  const m = tf.reshape(layerNormSqrt(x, p["h.0.ln_2.weight"], p["h.0.ln_2.bias"]), [B * T, C]);
  const fc = tf.add(tf.matMul(m, p["h.0.mlp.c_fc.weight"]), p["h.0.mlp.c_fc.bias"]); // [B*T, 4C]
  const [f1, f2] = tf.split(fc, [C, 3 * C], -1);
  const act = tf.concat([gelu(f1), gelu(f2)], -1);
  x = tf.add(x, tf.reshape(tf.add(tf.matMul(act, p["h.0.mlp.c_proj.weight"]), p["h.0.mlp.c_proj.bias"]), [B, T, C]));

  const hidden = layerNormMoments(x, p["ln_f.weight"], p["ln_f.bias"]); // [B, T, C]
  const flat = tf.reshape(hidden, [B * T, C]);
  const logits = tf.div(tf.reshape(tf.matMul(flat, p.wte, false, true), [B, T, V]), 0.7); // tied unembedding, temperature
  // logits[:, :-1] predict tokens[:, 1:]
  const N = B * (T - 1);
  const logp = tf.reshape(tf.logSoftmax(tf.slice(logits, [0, 0, 0], [B, T - 1, V])), [N, V]);
  const targets = tf.reshape(tf.slice(tokens, [0, 1], [B, T - 1]), [N]);
  const viaOneHot = tf.sum(tf.mul(logp, tf.oneHot(targets, V)), -1); // [N]
  const viaBatchGather = tf.reshape(tf.gather(logp, tf.reshape(targets, [N, 1]), 1, 1), [N]);
  const viaGatherNd = tf.gatherND(logp, tf.stack([tf.range(0, N, 1, "int32"), targets], 1));
  const picked = tf.add(tf.add(tf.mul(0.5, viaOneHot), tf.mul(0.3, viaBatchGather)), tf.mul(0.2, viaGatherNd));

  // PPO clipped surrogate on the response mask.
  const mask = tf.cast(tf.greater(tf.reshape(tf.slice(tf.tensor2d(RESPONSE_MASK, [B, T], "int32"), [0, 1], [B, T - 1]), [N]), 0), "float32");
  const oldLogp = tf.sub(tf.tensor1d(randomValues(N, 7, 0.2)), 2.4);
  const adv = tf.tensor1d(randomValues(N, 8, 1));
  const ratio = tf.exp(tf.sub(picked, oldLogp));
  const pg = tf.maximum(tf.neg(tf.mul(adv, ratio)), tf.neg(tf.mul(adv, tf.clipByValue(ratio, 0.8, 1.2))));
  const policyLoss = tf.div(tf.sum(tf.mul(pg, mask)), tf.sum(mask));

  // Entropy, a log of a probability, a value head and a pairwise reward-model term.
  const probs = tf.softmax(tf.reshape(logits, [B * T, V]));
  const entropy = tf.neg(tf.mean(tf.sum(tf.mul(probs, tf.log(tf.add(probs, 1e-9))), -1)));
  const values = tf.reshape(tf.matMul(flat, p["v_head.weight"]), [B, T]);
  const valueLoss = tf.mean(tf.pow(tf.sub(values, tf.tensor2d(randomValues(B * T, 9, 1), [B, T])), 2));
  const last = tf.reshape(tf.slice(values, [0, T - 1], [B, 1]), [B]);
  const [rw, rl] = tf.unstack(last);
  const rmLoss = tf.neg(logSigmoid(tf.sub(rw, rl)));
  const gram = tf.mean(tf.matMul(flat, flat, true, false)); // transposeA

  return tf.addN([
    policyLoss,
    tf.mul(-0.01, entropy),
    tf.mul(0.5, valueLoss),
    rmLoss,
    tf.mul(0.01, gram),
    tf.mul(-0.1, tf.mean(picked)),
  ]) as tf.Scalar;
}

interface Run {
  loss: number;
  grads: Map<string, Float32Array>;
  kernels: Set<string>;
}

async function runOn(backend: string): Promise<Run> {
  assert.ok(await tf.setBackend(backend));
  const names = Object.keys(PARAM_SHAPES);
  const vars = names.map((n, i) =>
    tf.tidy(() => tf.variable(tf.tensor(randomValues(tf.util.sizeFromShape(PARAM_SHAPES[n]), 100 + i), PARAM_SHAPES[n]), true, `${backend}/${n}`)),
  );
  const params: Params = Object.fromEntries(names.map((n, i) => [n, vars[i]]));
  const grads = new Map<string, Float32Array>();
  const kernels = recordKernels(backend);
  let loss: number;
  try {
    const r = tf.variableGrads(() => objective(params), vars);
    loss = r.value.dataSync()[0];
    for (const n of names) grads.set(n, r.grads[`${backend}/${n}`].dataSync() as Float32Array);
    tf.dispose([r.value, ...Object.values(r.grads)]);
  } finally {
    kernels.restore();
    tf.dispose(vars);
  }
  return { loss, grads, kernels: kernels.names };
}

/** Wraps every kernel of `backend` to record which ones run (tf.profile breaks inside gradients). */
function recordKernels(backend: string): { names: Set<string>; restore: () => void } {
  const names = new Set<string>();
  const originals = tf.getKernelsForBackend(backend);
  for (const config of originals) {
    tf.unregisterKernel(config.kernelName, backend);
    tf.registerKernel({
      ...config,
      kernelFunc: (args) => {
        names.add(config.kernelName);
        return config.kernelFunc(args);
      },
    });
  }
  return {
    names,
    restore: () => {
      for (const config of originals) {
        tf.unregisterKernel(config.kernelName, backend);
        tf.registerKernel(config);
      }
    },
  };
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

test("every gradient of a GPT-2 style decoder and the RLHF losses matches between wasm and cpu", async () => {
  const info = await initBackend({ backend: "wasm" });
  assert.equal(info.tfBackend, "wasm");
  const cpu = await runOn("cpu");
  const wasm = await runOn("wasm");

  assert.ok(Number.isFinite(cpu.loss));
  assert.ok(Math.abs(wasm.loss - cpu.loss) <= 1e-4 * Math.abs(cpu.loss), `loss wasm ${wasm.loss} vs cpu ${cpu.loss}`);
  for (const [name, ref] of cpu.grads) {
    const got = wasm.grads.get(name);
    assert.ok(got, name);
    assert.equal(got.length, ref.length, name);
    const scale = maxAbs(ref);
    assert.ok(scale > 0, `${name}: zero gradient: the objective does not reach it`);
    let err = 0;
    for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(got[i] - ref[i]));
    // Relative to the tensor's largest entry: entries near zero make per-element ratios meaningless.
    assert.ok(err <= 1e-4 * scale, `${name}: max |wasm - cpu| = ${err} vs max |cpu| = ${scale}`);
  }
  // The embedding gradient goes through UnsortedSegmentSum, the fallback under test.
  assert.ok(wasm.kernels.has(tf.UnsortedSegmentSum));
  for (const k of ["GatherV2", "GatherNd", "BatchMatMul", "Softmax", "Pow", "Rsqrt", "Select", "OneHot", "ClipByValue", "SplitV"]) {
    assert.ok(wasm.kernels.has(k), `objective did not exercise ${k}`);
  }
  // Every kernel the forward and backward passes dispatched has a wasm implementation.
  const wasmKernels = new Set(tf.getKernelsForBackend("wasm").map((k) => k.kernelName));
  const missing = [...wasm.kernels].filter((k) => !wasmKernels.has(k));
  assert.deepEqual(missing, []);
  const fallbacksUsed = [...wasm.kernels].filter((k) => WASM_FALLBACK_KERNELS.includes(k));
  assert.deepEqual(fallbacksUsed.sort(), [...WASM_FALLBACK_KERNELS].sort());
});

test("no tensors leak from a gradient step on wasm", async () => {
  await initBackend({ backend: "wasm" });
  await tf.setBackend("wasm");
  const before = tf.memory().numTensors;
  await runOn("wasm");
  assert.equal(tf.memory().numTensors, before);
});
