/**
 * Batched sampling from a GPT2, with or without a key/value cache.
 *
 * Prompts of different lengths share one batch by left padding: every prompt's last token sits
 * in the same column, so each step appends one column for the whole batch. Position ids are per
 * row (a prompt of length P numbers its tokens 0..P-1 whatever its padding) and an additive mask
 * hides the pad columns, so a padded row computes what it would alone.
 *
 * The no-cache path is an independent computation: at every step it runs the plain `forward`
 * over each unfinished sequence so far (no padding, no mask, no cache; rows of equal length are
 * batched together) and reads the last position's logits.
 *
 * Sampling happens on the host in float64 with the seeded {@link Xoshiro128ss} (one stream per batch row),
 * not `tf.multinomial`, so it is reproducible on every backend.
 *
 * Log-probabilities: each returned value is log p(token | sequence so far) under
 * softmax(logits / temperature) over the FULL vocabulary, i.e. exactly what
 * `GPT2.targetLogProbs(tokens, temperature)` computes when teacher-forcing the sequence. top-k and
 * top-p only restrict which tokens can be drawn (from the renormalised remainder); they do not
 * change the reported values, so generation and training agree. (With top-k/top-p the draw is
 * therefore not from the distribution the values describe; PPO treats the tempered full
 * distribution as the policy.)
 */
import * as tf from "@tensorflow/tfjs-core";
import { InvalidArgumentError, check } from "@rlhf/errors";
import type { GPT2, LayerKV } from "./gpt2";
import { Xoshiro128ss } from "@rlhf/random";

/** Options of {@link generate}. */
export interface GenerateOptions {
  /** Largest number of new tokens per sequence (>= 1). Prompt length + this must fit nPositions. */
  maxNewTokens: number;
  /** Logits are divided by this (> 0). Default 1. */
  temperature?: number;
  /** Draw only among the k most likely tokens; 0 (default) = no limit. */
  topK?: number;
  /** Draw only among the smallest set of most likely tokens with total probability >= p; 1 (default) = no limit. */
  topP?: number;
  /** A sequence stops right after sampling this id (kept in its tokens). Default: none. */
  eosId?: number;
  /** Seed of the sampling streams (row b uses stream `sample/b`). Default 0. */
  seed?: number;
  /** Use the key/value cache (default true); false recomputes the whole sequence every step. */
  useCache?: boolean;
  /**
   * Row b draws from stream `sample/(b + rowOffset)` (default 0): a caller that splits one big
   * batch into chunks passes each chunk's first row so that every row's draws stay the same.
   */
  rowOffset?: number;
}

/** One generated sequence. */
export interface GeneratedSequence {
  /** The new tokens (EOS included when it was sampled). */
  tokens: Int32Array;
  /** log p(tokens[i] | prompt, tokens[<i]) under softmax(logits / temperature), full vocabulary. */
  logProbs: Float32Array;
  /** "eos": stopped on `eosId` (the last token); "length": reached `maxNewTokens`. */
  finishReason: "eos" | "length";
  /** Index in the full sequence (prompt + tokens) of the last token: prompt length + tokens.length - 1. */
  endIndex: number;
}

/** Validated copy of the options with defaults applied. */
interface Resolved {
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  eosId: number | undefined;
  seed: number;
  useCache: boolean;
}

function resolve(model: GPT2, prompts: readonly ArrayLike<number>[], o: GenerateOptions): Resolved {
  const { vocabSize: V, nPositions: P } = model.config;
  const r: Resolved = {
    maxNewTokens: o.maxNewTokens,
    temperature: o.temperature ?? 1,
    topK: o.topK ?? 0,
    topP: o.topP ?? 1,
    eosId: o.eosId,
    seed: o.seed ?? 0,
    useCache: o.useCache ?? true,
  };
  check(Number.isInteger(r.maxNewTokens) && r.maxNewTokens >= 1, "maxNewTokens", `must be an integer >= 1, got ${r.maxNewTokens}`);
  check(Number.isFinite(r.temperature) && r.temperature > 0, "temperature", `must be a finite number > 0, got ${r.temperature}`);
  check(Number.isInteger(r.topK) && r.topK >= 0, "topK", `must be an integer >= 0, got ${r.topK}`);
  check(r.topP > 0 && r.topP <= 1, "topP", `must be in (0, 1], got ${r.topP}`);
  check(r.eosId === undefined || (Number.isInteger(r.eosId) && r.eosId >= 0 && r.eosId < V), "eosId", `must be an id in 0..${V - 1}, got ${r.eosId}`);
  check(Number.isSafeInteger(r.seed), "seed", `must be a safe integer, got ${r.seed}`);
  check(prompts.length >= 1, "prompts", "must not be empty");
  prompts.forEach((p, b) => {
    check(p.length >= 1, `prompts[${b}]`, "must have at least one token");
    check(p.length + r.maxNewTokens <= P, `prompts[${b}]`, `length ${p.length} + maxNewTokens ${r.maxNewTokens} exceeds nPositions ${P}`);
    for (let j = 0; j < p.length; j++) {
      const id = p[j];
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new InvalidArgumentError(`prompts[${b}][${j}]`, `id ${id} is out of range 0..${V - 1}`);
    }
  });
  return r;
}

/**
 * Draws one token from row `row` of `logits` ([N, V] flattened) and returns it with its
 * log-probability under softmax(logits / temperature) (full vocabulary; see the file comment).
 */
export function sampleToken(
  logits: Float32Array,
  row: number,
  V: number,
  opts: { temperature: number; topK: number; topP: number },
  rng: Xoshiro128ss,
): { id: number; logProb: number } {
  const off = row * V;
  const z = new Float64Array(V);
  let m = -Infinity;
  for (let i = 0; i < V; i++) {
    z[i] = logits[off + i] / opts.temperature;
    if (z[i] > m) m = z[i];
  }
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(z[i] - m);
  const lse = m + Math.log(sum);
  const u = rng.uniform();
  const limited = (opts.topK > 0 && opts.topK < V) || opts.topP < 1;
  let id = V - 1;
  if (!limited) {
    let acc = 0;
    const target = u * sum;
    for (let i = 0; i < V; i++) {
      acc += Math.exp(z[i] - m);
      if (acc >= target) {
        id = i;
        break;
      }
    }
  } else {
    // Most likely first (ties by id), cut to top-k, then to the top-p nucleus, renormalise, draw.
    const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => z[b] - z[a] || a - b);
    let n = opts.topK > 0 ? Math.min(opts.topK, V) : V;
    if (opts.topP < 1) {
      let acc = 0;
      for (let j = 0; j < n; j++) {
        acc += Math.exp(z[order[j]] - lse);
        if (acc >= opts.topP) {
          n = j + 1;
          break;
        }
      }
    }
    let mass = 0;
    for (let j = 0; j < n; j++) mass += Math.exp(z[order[j]] - m);
    const target = u * mass;
    let acc = 0;
    id = order[n - 1];
    for (let j = 0; j < n; j++) {
      acc += Math.exp(z[order[j]] - m);
      if (acc >= target) {
        id = order[j];
        break;
      }
    }
  }
  return { id, logProb: z[id] - lse };
}

/**
 * Samples continuations of a batch of prompts (token ids, different lengths allowed). Seeded and
 * reproducible: the same model, prompts and options give the same result, with or without the
 * cache (up to float rounding of the logits). Leaves no tensors behind.
 */
export function generate(model: GPT2, prompts: readonly ArrayLike<number>[], options: GenerateOptions): GeneratedSequence[] {
  const r = resolve(model, prompts, options);
  const offset = options.rowOffset ?? 0;
  check(Number.isSafeInteger(offset) && offset >= 0, "rowOffset", `must be an integer >= 0, got ${offset}`);
  const rngs = prompts.map((_, b) => new Xoshiro128ss(r.seed, `sample/${b + offset}`));
  const seqs = prompts.map((p) => Array.from(p));
  const out = prompts.map(() => ({ tokens: [] as number[], logProbs: [] as number[], done: false, eos: false }));
  const next = r.useCache ? cachedStepper(model, seqs) : uncachedStepper(model, seqs);
  try {
    for (let t = 0; t < r.maxNewTokens; t++) {
      const live = out.map((o, b) => (o.done ? -1 : b)).filter((b) => b >= 0);
      if (live.length === 0) break;
      const logits = next.logits(live); // [live, V] on host
      live.forEach((b, row) => {
        const { id, logProb } = sampleToken(logits, row, model.config.vocabSize, r, rngs[b]);
        const o = out[b];
        o.tokens.push(id);
        o.logProbs.push(logProb);
        seqs[b].push(id);
        if (r.eosId !== undefined && id === r.eosId) o.done = o.eos = true;
        else if (o.tokens.length >= r.maxNewTokens) o.done = true;
      });
      if (out.every((o) => o.done)) break;
      next.advance(seqs.map((s, b) => (out[b].eos ? (r.eosId ?? 0) : s[s.length - 1])));
    }
  } finally {
    next.dispose();
  }
  return out.map((o, b) => ({
    tokens: Int32Array.from(o.tokens),
    logProbs: Float32Array.from(o.logProbs),
    finishReason: o.eos ? "eos" : "length",
    endIndex: prompts[b].length + o.tokens.length - 1,
  }));
}

interface Stepper {
  /** Next-token logits of the last position of each listed row, [rows.length * V] on the host. */
  logits(rows: number[]): Float32Array;
  /** Appends one token per row (every row, finished or not) for the next `logits` call. */
  advance(tokens: number[]): void;
  dispose(): void;
}

/** Full forward over each unfinished sequence at every step (the reference path). */
function uncachedStepper(model: GPT2, seqs: number[][]): Stepper {
  const { nEmbd: C } = model.config;
  const V = model.config.vocabSize;
  return {
    logits(rows) {
      const out = new Float32Array(rows.length * V);
      const byLength = new Map<number, number[]>();
      rows.forEach((b, i) => {
        const L = seqs[b].length;
        byLength.set(L, [...(byLength.get(L) ?? []), i]);
      });
      for (const [L, idx] of byLength) {
        const flat = Int32Array.from(idx.flatMap((i) => seqs[rows[i]]));
        const last = tf.tidy(() => {
          const h = model.hiddenStates(tf.tensor2d(flat, [idx.length, L], "int32")); // [n, L, C]
          const hLast = tf.reshape(tf.slice(h, [0, L - 1, 0], [idx.length, 1, C]), [idx.length, C]); // [n, C]
          return tf.matMul(hLast, tf.transpose(model.parameters().get("wte.weight") as tf.Tensor2D)); // [n, V]
        });
        const values = last.dataSync() as Float32Array;
        last.dispose();
        idx.forEach((i, j) => out.set(values.subarray(j * V, (j + 1) * V), i * V));
      }
      return out;
    },
    advance() {
      // seqs already hold the new tokens
    },
    dispose() {},
  };
}

/** Left-padded batch with a key/value cache: a prefill over the prompts, then one column per step. */
function cachedStepper(model: GPT2, seqs: number[][]): Stepper {
  const B = seqs.length;
  const { nEmbd: C } = model.config;
  const lengths = seqs.map((s) => s.length);
  const maxP = Math.max(...lengths);
  const pad = lengths.map((L) => maxP - L); // left padding of each row
  const wteT = tf.transpose(model.parameters().get("wte.weight") as tf.Tensor2D); // [C, V]
  let cache: LayerKV[] | undefined;
  let hidden: tf.Tensor2D | undefined; // [B, C]: last column's final hidden state
  let columns = 0; // columns in the cache
  let steps = 0; // tokens appended after the prompts

  /** Runs S new columns; `mask[b][q][k]` allowed-ness is built from the padding. */
  const run = (tokens: Int32Array, positions: Int32Array, S: number): void => {
    const Tk = columns + S;
    const mask = new Float32Array(B * S * Tk);
    for (let b = 0; b < B; b++) {
      for (let q = 0; q < S; q++) {
        const qc = columns + q; // absolute column of this query
        for (let k = 0; k < Tk; k++) if (k > qc || k < pad[b]) mask[(b * S + q) * Tk + k] = -1e9;
      }
    }
    const res = tf.tidy(() => {
      const r = model.forwardCached(
        tf.tensor2d(tokens, [B, S], "int32"),
        tf.tensor2d(positions, [B, S], "int32"),
        tf.tensor4d(mask, [B, 1, S, Tk]),
        cache,
      );
      const last = tf.reshape(tf.slice(r.hidden, [0, S - 1, 0], [B, 1, C]), [B, C]) as tf.Tensor2D; // [B, C]
      return { last, cache: r.cache } as unknown as tf.TensorContainer;
    }) as unknown as { last: tf.Tensor2D; cache: LayerKV[] };
    disposeCache();
    cache = res.cache;
    hidden = res.last;
    columns = Tk;
  };
  const disposeCache = (): void => {
    for (const l of cache ?? []) tf.dispose([l.kT, l.v]);
    hidden?.dispose();
    cache = undefined;
    hidden = undefined;
  };

  // Prefill: prompts left-padded (pad columns hold id 0, never attended to); positions 0..P-1.
  const tokens = new Int32Array(B * maxP);
  const positions = new Int32Array(B * maxP);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < lengths[b]; j++) {
      tokens[b * maxP + pad[b] + j] = seqs[b][j];
      positions[b * maxP + pad[b] + j] = j;
    }
  }
  try {
    run(tokens, positions, maxP);
  } catch (e) {
    wteT.dispose();
    throw e;
  }

  return {
    logits(rows) {
      const V = model.config.vocabSize;
      const all = tf.tidy(() => tf.matMul(hidden as tf.Tensor2D, wteT)); // [B, V]
      const values = all.dataSync() as Float32Array;
      all.dispose();
      const out = new Float32Array(rows.length * V);
      rows.forEach((b, i) => out.set(values.subarray(b * V, (b + 1) * V), i * V));
      return out;
    },
    advance(next) {
      const pos = Int32Array.from(lengths.map((L) => L + steps));
      run(Int32Array.from(next), pos, 1);
      steps++;
    },
    dispose() {
      disposeCache();
      wteT.dispose();
    },
  };
}
