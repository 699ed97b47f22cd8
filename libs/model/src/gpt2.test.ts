import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { FailedPreconditionError, InvalidArgumentError } from "@rlhf/errors";
import { initBackend, type NamedHostTensors } from "@rlhf/compute";
import { GPT2_PRESETS, type GPT2Config } from "./config";
import { GPT2, gpt2InitTensors, gpt2ParameterCount, gpt2ParameterShapes } from "./gpt2";
import { randomTestWeights, referenceTokenLogProbs } from "./testing/reference-gpt2";

before(async () => {
  await initBackend();
});

/** Deliberately non-square: V != P != C, 3 heads of 8. */
const cfg: GPT2Config = { vocabSize: 61, nPositions: 24, nEmbd: 24, nLayer: 2, nHead: 3, layerNormEpsilon: 1e-5 };

function rejects(fn: () => unknown, field: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    assert.equal(e.field, field);
    if (message) assert.match(e.message, message);
    return true;
  });
}

/** Deterministic token sequences packed end to end. */
function packed(lengths: number[], vocab: number, seed: number): { tokens: Int32Array; lengths: number[]; seqs: number[][] } {
  let s = seed;
  const seqs = lengths.map((L) =>
    Array.from({ length: L }, () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s % vocab;
    }),
  );
  return { tokens: Int32Array.from(seqs.flat()), lengths, seqs };
}

test("parameter names and shapes are GPT-2's; gpt2-124m has 124,439,808 parameters", () => {
  const c = GPT2_PRESETS["gpt2-124m"];
  const expected: [string, number[]][] = [
    ["wte.weight", [50257, 768]],
    ["wpe.weight", [1024, 768]],
  ];
  for (let i = 0; i < 12; i++) {
    expected.push(
      [`h.${i}.ln_1.weight`, [768]],
      [`h.${i}.ln_1.bias`, [768]],
      [`h.${i}.attn.c_attn.weight`, [768, 2304]],
      [`h.${i}.attn.c_attn.bias`, [2304]],
      [`h.${i}.attn.c_proj.weight`, [768, 768]],
      [`h.${i}.attn.c_proj.bias`, [768]],
      [`h.${i}.ln_2.weight`, [768]],
      [`h.${i}.ln_2.bias`, [768]],
      [`h.${i}.mlp.c_fc.weight`, [768, 3072]],
      [`h.${i}.mlp.c_fc.bias`, [3072]],
      [`h.${i}.mlp.c_proj.weight`, [3072, 768]],
      [`h.${i}.mlp.c_proj.bias`, [768]],
    );
  }
  expected.push(["ln_f.weight", [768]], ["ln_f.bias", [768]]);
  assert.deepEqual([...gpt2ParameterShapes(c)], expected);
  assert.equal(expected.length, 148);
  assert.equal(gpt2ParameterCount(c), 124_439_808);
  assert.equal(GPT2.parameterCount(c), 124_439_808);

  const m = GPT2.random(cfg, 0);
  try {
    assert.deepEqual(m.parameterNames(), [...gpt2ParameterShapes(cfg).keys()]);
    for (const [name, t] of m.toHostTensors()) assert.deepEqual(t.shape, gpt2ParameterShapes(cfg).get(name), name);
  } finally {
    m.dispose();
  }
});

test("forward, hiddenStates and targetLogProbs shapes", () => {
  const m = GPT2.random(cfg, 1);
  try {
    const tokens = tf.tensor2d([[1, 2, 3, 4, 5], [6, 7, 8, 9, 60]], [2, 5], "int32");
    const logits = m.forward(tokens);
    const hidden = m.hiddenStates(tokens);
    const lp = m.targetLogProbs(tokens, 0.7);
    assert.deepEqual(logits.shape, [2, 5, 61]);
    assert.deepEqual(hidden.shape, [2, 5, 24]);
    assert.deepEqual(lp.shape, [2, 4]);
    const one = m.forward(tf.tensor2d([[3]], [1, 1], "int32"));
    assert.deepEqual(one.shape, [1, 1, 61]);
    tf.dispose([tokens, logits, hidden, lp, one]);
  } finally {
    m.dispose();
  }
});

test("tokenLogProbs matches an independent float64 forward pass (mixed lengths, T=1 and 0.7)", () => {
  const weights = randomTestWeights(gpt2ParameterShapes(cfg), 7);
  const m = GPT2.fromHostTensors(cfg, weights);
  try {
    const { tokens, lengths, seqs } = packed([7, 1, 13, 24, 2, 5], cfg.vocabSize, 3);
    for (const temperature of [1, 0.7]) {
      const want = seqs.map((s) => referenceTokenLogProbs(cfg, weights, s, temperature));
      // Default chunking (one batch) and a tiny budget (one sequence per chunk).
      for (const maxLogitsElements of [undefined, cfg.vocabSize * 24]) {
        const got = m.tokenLogProbs({ tokens, lengths }, temperature, { maxLogitsElements });
        assert.equal(got.length, lengths.length);
        let maxErr = 0;
        for (let i = 0; i < lengths.length; i++) {
          assert.equal(got[i].length, lengths[i] - 1);
          for (let t = 0; t < want[i].length; t++) maxErr = Math.max(maxErr, Math.abs(got[i][t] - want[i][t]));
        }
        assert.ok(maxErr <= 1e-5, `max |error| ${maxErr} at temperature ${temperature}`);
      }
      // The weights make the distribution far from uniform, so the comparison has teeth.
      const all = want.flat();
      assert.ok(Math.max(...all) - Math.min(...all) > 3, "reference log-probs nearly uniform");
    }
  } finally {
    m.dispose();
  }
});

test("tokenLogProbs with GPT-2 initialisation also matches the reference", () => {
  const m = GPT2.random(cfg, 11);
  try {
    const weights = m.toHostTensors();
    const { tokens, lengths, seqs } = packed([9, 4], cfg.vocabSize, 5);
    const got = m.tokenLogProbs({ tokens, lengths });
    seqs.forEach((s, i) => {
      const want = referenceTokenLogProbs(cfg, weights, s);
      want.forEach((v, t) => assert.ok(Math.abs(got[i][t] - v) <= 1e-5, `seq ${i} t ${t}: ${got[i][t]} vs ${v}`));
    });
  } finally {
    m.dispose();
  }
});

test("seeded initialisation: same seed identical, different seed different, GPT-2 scheme", () => {
  const a = gpt2InitTensors(cfg, 42);
  const b = gpt2InitTensors(cfg, 42);
  const c = gpt2InitTensors(cfg, 43);
  const bits = (t: NamedHostTensors, name: string): Buffer => Buffer.from((t.get(name)?.data as Float32Array).buffer);
  for (const name of a.keys()) assert.ok(bits(a, name).equals(bits(b, name)), name);
  assert.ok(!bits(a, "wte.weight").equals(bits(c, "wte.weight")));
  assert.ok(!bits(a, "h.0.attn.c_attn.weight").equals(bits(c, "h.0.attn.c_attn.weight")));
  // Different tensors draw different numbers.
  assert.notEqual(a.get("h.0.mlp.c_fc.weight")?.data[0], a.get("h.1.mlp.c_fc.weight")?.data[0]);

  const std = (x: ArrayLike<number>): number => {
    let s = 0;
    for (let i = 0; i < x.length; i++) s += x[i] * x[i];
    return Math.sqrt(s / x.length);
  };
  const big = gpt2InitTensors({ ...cfg, vocabSize: 4000, nLayer: 8 }, 1);
  const d = (n: string): Float32Array => big.get(n)?.data as Float32Array;
  assert.ok(Math.abs(std(d("wte.weight")) - 0.02) < 0.0005);
  assert.ok(Math.abs(std(d("h.0.mlp.c_fc.weight")) - 0.02) < 0.001);
  assert.ok(Math.abs(std(d("h.0.mlp.c_proj.weight")) - 0.02 / 4) < 0.0003);
  assert.ok(Math.abs(std(d("h.3.attn.c_proj.weight")) - 0.02 / 4) < 0.0005);
  assert.ok(d("h.2.ln_1.weight").every((v) => v === 1) && d("ln_f.weight").every((v) => v === 1));
  assert.ok(d("h.2.ln_2.bias").every((v) => v === 0) && d("h.2.attn.c_attn.bias").every((v) => v === 0));

  // Pinned values: the generator must not drift between releases (weights bit-identical across runs).
  const wte = a.get("wte.weight")?.data as Float32Array;
  assert.deepEqual(Array.from(wte.subarray(0, 3)), [0.015235718339681625, -0.016187213361263275, 0.014552022330462933]);
  const proj = a.get("h.1.mlp.c_proj.weight")?.data as Float32Array;
  assert.deepEqual(Array.from(proj.subarray(100, 102)), [-0.017907939851284027, 0.0052801999263465405]);

  // The model built from a seed holds exactly those values.
  const m = GPT2.random(cfg, 42);
  try {
    for (const [name, t] of m.toHostTensors()) assert.ok(Buffer.from(t.data.buffer).equals(bits(a, name)), name);
  } finally {
    m.dispose();
  }
});

test("tokenLogProbs validates its input, naming the field", () => {
  const m = GPT2.random(cfg, 2);
  try {
    const ids = (n: number): Int32Array => new Int32Array(n).fill(1);
    rejects(() => m.tokenLogProbs({ tokens: Int32Array.from([1, 2, 61]), lengths: [3] }), "seqs.tokens[2]", /out of range 0\.\.60/);
    rejects(() => m.tokenLogProbs({ tokens: Int32Array.from([1, -1]), lengths: [2] }), "seqs.tokens[1]");
    rejects(() => m.tokenLogProbs({ tokens: ids(3), lengths: [3, 0] }), "seqs.lengths[1]", /1\.\.24/);
    rejects(() => m.tokenLogProbs({ tokens: ids(25), lengths: [25] }), "seqs.lengths[0]", /1\.\.24 \(nPositions\), got 25/);
    rejects(() => m.tokenLogProbs({ tokens: ids(5), lengths: [2, 2] }), "seqs.lengths", /sum of lengths \(4\).*\(5\)/);
    rejects(() => m.tokenLogProbs({ tokens: ids(2), lengths: [1.5, 0.5] }), "seqs.lengths[0]");
    rejects(() => m.tokenLogProbs({ tokens: ids(2), lengths: [2] }, 0), "temperature");
    rejects(() => m.tokenLogProbs({ tokens: ids(2), lengths: [2] }, Number.NaN), "temperature");
    rejects(() => m.tokenLogProbs({ tokens: [1, 2] as unknown as Int32Array, lengths: [2] }), "seqs.tokens");
    assert.deepEqual(m.tokenLogProbs({ tokens: ids(1), lengths: [1] }), [new Float32Array(0)]);
    assert.deepEqual(m.tokenLogProbs({ tokens: ids(0), lengths: [] }), []);

    const floats = tf.tensor2d([[1, 2]], [1, 2], "float32");
    const long = tf.zeros([1, 25], "int32") as tf.Tensor2D;
    rejects(() => m.forward(floats), "tokens", /int32/);
    rejects(() => m.forward(long), "tokens", /1\.\.24, got 25/);
    rejects(() => m.targetLogProbs(tf.tensor2d([[1]], [1, 1], "int32")), "tokens", /at least 2/);
    tf.dispose([floats, long]);
  } finally {
    m.dispose();
  }
  assert.throws(() => m.tokenLogProbs({ tokens: Int32Array.from([1, 2]), lengths: [2] }), FailedPreconditionError);
});

test("fromHostTensors rejects missing, misshapen, mistyped and unknown tensors", () => {
  const good = gpt2InitTensors(cfg, 0);
  const without = new Map(good);
  without.delete("h.1.ln_2.bias");
  rejects(() => GPT2.fromHostTensors(cfg, without), "h.1.ln_2.bias", /missing tensor, expected shape \[24\]/);

  const transposed = new Map(good);
  const w = good.get("h.0.attn.c_attn.weight");
  assert.ok(w);
  transposed.set("h.0.attn.c_attn.weight", { ...w, shape: [72, 24] });
  rejects(() => GPT2.fromHostTensors(cfg, transposed), "h.0.attn.c_attn.weight", /expected shape \[24, 72\], got \[72, 24\]/);

  const shortData = new Map(good);
  shortData.set("ln_f.bias", { dtype: "float32", shape: [24], data: new Float32Array(23) });
  rejects(() => GPT2.fromHostTensors(cfg, shortData), "ln_f.bias", /23 values/);

  const ints = new Map(good);
  ints.set("ln_f.bias", { dtype: "int32", shape: [24], data: new Int32Array(24) });
  rejects(() => GPT2.fromHostTensors(cfg, ints), "ln_f.bias", /float32/);

  const extra = new Map(good);
  extra.set("h.2.ln_1.weight", { dtype: "float32", shape: [24], data: new Float32Array(24) });
  rejects(() => GPT2.fromHostTensors(cfg, extra), "h.2.ln_1.weight", /unexpected tensor/);

  rejects(() => GPT2.fromHostTensors({ ...cfg, nHead: 5 }, good), "nEmbd");
  rejects(() => GPT2.random(cfg, 0.5), "seed");
});

test("fromHostTensors and toHostTensors copy by default: editing host arrays leaves the model alone", () => {
  const host = gpt2InitTensors(cfg, 3);
  const m = GPT2.fromHostTensors(cfg, host);
  try {
    const before = m.tokenLogProbs({ tokens: Int32Array.from([1, 2, 3]), lengths: [3] });
    (host.get("wte.weight")?.data as Float32Array).fill(1);
    (m.toHostTensors().get("wte.weight")?.data as Float32Array).fill(1);
    assert.deepEqual(m.tokenLogProbs({ tokens: Int32Array.from([1, 2, 3]), lengths: [3] }), before);
  } finally {
    m.dispose();
  }
});

test("no leaked tensors around forward / tokenLogProbs / targetLogProbs; dispose frees the weights", () => {
  const start = tf.memory().numTensors;
  const m = GPT2.random(cfg, 5);
  assert.equal(tf.memory().numTensors, start + m.parameterNames().length);
  const baseline = tf.memory().numTensors;
  const { tokens, lengths } = packed([5, 9, 1, 3], cfg.vocabSize, 9);
  for (let i = 0; i < 3; i++) {
    const x = tf.tensor2d(Array.from(tokens.subarray(0, 8)), [2, 4], "int32");
    tf.dispose([m.forward(x), m.hiddenStates(x), m.targetLogProbs(x, 0.5), x]);
    m.tokenLogProbs({ tokens, lengths }, 0.9);
    m.tokenLogProbs({ tokens, lengths }, 1, { maxLogitsElements: 1 });
    assert.throws(() => m.tokenLogProbs({ tokens, lengths: [5, 9, 1, 2] }));
    assert.equal(tf.memory().numTensors, baseline, `after round ${i}`);
  }
  m.dispose();
  m.dispose();
  assert.equal(tf.memory().numTensors, start);
});

test("gradients flow to every parameter (forward is differentiable)", () => {
  const m = GPT2.random(cfg, 6);
  try {
    const x = tf.tensor2d([[1, 5, 9, 2]], [1, 4], "int32");
    const { value, grads } = tf.variableGrads(() => tf.neg(tf.mean(m.targetLogProbs(x))) as tf.Scalar, [...m.parameters().values()]);
    assert.ok(Number.isFinite(value.dataSync()[0]));
    const names = new Map([...m.parameters()].map(([n, v]) => [v.name, n]));
    assert.equal(Object.keys(grads).length, m.parameterNames().length);
    for (const [vname, g] of Object.entries(grads)) {
      const norm = tf.norm(g).dataSync()[0];
      assert.ok(norm > 0 && Number.isFinite(norm), `${names.get(vname)} grad norm ${norm}`);
    }
    tf.dispose([x, value, ...Object.values(grads)]);
  } finally {
    m.dispose();
  }
});
