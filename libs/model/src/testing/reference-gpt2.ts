/**
 * An independent GPT-2 forward pass for tests: plain JS, float64, one sequence at a time, no
 * batching, no caching, no tfjs. Written from the GPT-2 paper / HF modeling_gpt2 description,
 * not from ../gpt2.ts.
 */
import type { NamedHostTensors } from "@rlhf/compute";
import type { GPT2Config } from "../config";

type Mat = number[][]; // [rows][cols]

function w(weights: NamedHostTensors, name: string): Float32Array {
  const t = weights.get(name);
  if (!t) throw new Error(`reference: missing ${name}`);
  return t.data as Float32Array;
}

/** y[t] = x[t] @ W + b with W stored row-major [inDim, outDim]. */
function linear(x: Mat, W: Float32Array, b: Float32Array, inDim: number, outDim: number): Mat {
  return x.map((row) => {
    const out: number[] = [];
    for (let o = 0; o < outDim; o++) {
      let s = b[o];
      for (let i = 0; i < inDim; i++) s += row[i] * W[i * outDim + o];
      out.push(s);
    }
    return out;
  });
}

function layerNorm(x: Mat, g: Float32Array, b: Float32Array, eps: number): Mat {
  return x.map((row) => {
    const n = row.length;
    let mean = 0;
    for (const v of row) mean += v;
    mean /= n;
    let variance = 0;
    for (const v of row) variance += (v - mean) * (v - mean);
    variance /= n;
    return row.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * g[i] + b[i]);
  });
}

function gelu(v: number): number {
  return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
}

/** Logits [T][V] of one sequence. */
export function referenceLogits(config: GPT2Config, weights: NamedHostTensors, tokens: readonly number[]): Mat {
  const { nEmbd: C, nHead: H, nLayer, vocabSize: V, layerNormEpsilon: eps } = config;
  const D = C / H;
  const T = tokens.length;
  const wte = w(weights, "wte.weight");
  const wpe = w(weights, "wpe.weight");
  let x: Mat = [];
  for (let t = 0; t < T; t++) {
    const row: number[] = [];
    for (let c = 0; c < C; c++) row.push(wte[tokens[t] * C + c] + wpe[t * C + c]);
    x.push(row);
  }
  for (let l = 0; l < nLayer; l++) {
    const p = (n: string): Float32Array => w(weights, `h.${l}.${n}`);
    // attention
    const a = layerNorm(x, p("ln_1.weight"), p("ln_1.bias"), eps);
    const qkv = linear(a, p("attn.c_attn.weight"), p("attn.c_attn.bias"), C, 3 * C);
    const attnOut: Mat = [];
    for (let t = 0; t < T; t++) attnOut.push(new Array<number>(C).fill(0));
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += qkv[t][h * D + d] * qkv[s][C + h * D + d];
          scores.push(dot / Math.sqrt(D));
        }
        const m = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - m));
        const z = e.reduce((acc, v) => acc + v, 0);
        for (let s = 0; s <= t; s++) {
          for (let d = 0; d < D; d++) attnOut[t][h * D + d] += (e[s] / z) * qkv[s][2 * C + h * D + d];
        }
      }
    }
    const proj = linear(attnOut, p("attn.c_proj.weight"), p("attn.c_proj.bias"), C, C);
    x = x.map((row, t) => row.map((v, c) => v + proj[t][c]));
    // MLP
    const m = layerNorm(x, p("ln_2.weight"), p("ln_2.bias"), eps);
    const hidden = linear(m, p("mlp.c_fc.weight"), p("mlp.c_fc.bias"), C, 4 * C).map((row) => row.map(gelu));
    const down = linear(hidden, p("mlp.c_proj.weight"), p("mlp.c_proj.bias"), 4 * C, C);
    x = x.map((row, t) => row.map((v, c) => v + down[t][c]));
  }
  const hf = layerNorm(x, w(weights, "ln_f.weight"), w(weights, "ln_f.bias"), eps);
  return hf.map((row) => {
    const logits: number[] = [];
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += row[c] * wte[v * C + c];
      logits.push(s);
    }
    return logits;
  });
}

/** log p(tok[t] | tok[<t]) for t = 1..T-1, logits divided by temperature. */
export function referenceTokenLogProbs(
  config: GPT2Config,
  weights: NamedHostTensors,
  tokens: readonly number[],
  temperature = 1,
): number[] {
  const logits = referenceLogits(config, weights, tokens);
  const out: number[] = [];
  for (let t = 1; t < tokens.length; t++) {
    const z = logits[t - 1].map((v) => v / temperature);
    const m = Math.max(...z);
    let sum = 0;
    for (const v of z) sum += Math.exp(v - m);
    out.push(z[tokens[t]] - m - Math.log(sum));
  }
  return out;
}

/** Random GPT-2 weights with a large scale and non-trivial LayerNorm/bias values, so every part
 * of the network visibly moves the log-probs (GPT-2's 0.02 init gives near-uniform outputs). */
export function randomTestWeights(shapes: Map<string, number[]>, seed: number): NamedHostTensors {
  let s = seed >>> 0;
  const uniform = (): number => {
    // mulberry32, deliberately a different generator from ../random.ts
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out: NamedHostTensors = new Map();
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isLnWeight = /ln_(1|2|f)\.weight$/.test(name);
    for (let i = 0; i < n; i++) {
      const u = uniform() * 2 - 1;
      data[i] = isLnWeight ? 1 + 0.5 * u : name.endsWith(".bias") ? 0.2 * u : 0.35 * u;
    }
    out.set(name, { dtype: "float32", shape, data });
  }
  return out;
}
