// run-tests: own process (the compute backend is chosen once per process)
// The torch backend computes what the wasm backend computes: with the same seed and weights,
// logits, log-probabilities, hidden states, gradients and one AdamW step agree to 1e-5 relative
// (float32; the norm of the difference over the norm of the wasm result), and sampling with the
// key/value cache draws the same tokens. Both backends run in this one process (tfjs moves a
// variable's data between them on first use). Skipped where the torch addon is not built.
// Own file: it initialises wasm, then registers torch beside it.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import { loadAddon, registerTorchBackend } from "@rlhf/torch-backend";
import type { GPT2Config } from "./config";
import { GPT2 } from "./gpt2";
import { generate } from "./generate";
import { ScalarHeadModel } from "./heads";
import { Trainer, lmLoss, makeLmBatch } from "./train";

const torch = loadAddon();
const skip = torch.ok ? false : `torch addon unavailable: ${torch.reason}`;

before(async () => {
  await initBackend({ backend: "wasm" });
  if (torch.ok) registerTorchBackend();
});

const cfg: GPT2Config = { vocabSize: 61, nPositions: 32, nEmbd: 32, nLayer: 2, nHead: 4, layerNormEpsilon: 1e-5 };
const seqs = [
  { tokens: [1, 5, 7, 9, 11, 2, 40, 33, 12], lossStart: 3 },
  { tokens: [4, 4, 8, 3, 60], lossStart: 1 },
  { tokens: [6, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32], lossStart: 5 },
];

/** ||a - b|| / ||b|| over all elements. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** Runs `f` on each backend (wasm first) and returns both results. */
async function both<T>(f: () => T): Promise<{ wasm: T; torch: T }> {
  await tf.setBackend("wasm");
  const wasm = f();
  await tf.setBackend("torch");
  const t = f();
  await tf.setBackend("wasm");
  return { wasm, torch: t };
}

const TOL = 1e-5;

test("forward: logits, hidden states and log-probabilities (temperature 0.7) agree", { skip }, async () => {
  const m = GPT2.random(cfg, 3);
  const tokens = Int32Array.from(seqs[2].tokens);
  const r = await both(() =>
    tf.tidy(() => {
      const t = tf.tensor2d(tokens, [1, tokens.length], "int32");
      return {
        logits: m.forward(t).dataSync().slice(),
        hidden: m.hiddenStates(t).dataSync().slice(),
        logp: m.targetLogProbs(t, 0.7).dataSync().slice(),
        packed: m.tokenLogProbs({ tokens: Int32Array.from(seqs.flatMap((s) => s.tokens)), lengths: seqs.map((s) => s.tokens.length) }, 1).flatMap((a) => [...a]),
      };
    }),
  );
  for (const k of ["logits", "hidden", "logp", "packed"] as const) {
    const e = relErr(r.torch[k], r.wasm[k]);
    assert.ok(e < TOL, `${k}: relative error ${e}`);
  }
  m.dispose();
});

test("gradients of the LM loss agree, parameter by parameter", { skip }, async () => {
  const m = GPT2.random(cfg, 4);
  const vars = [...m.parameters().values()];
  const names = [...m.parameters().keys()];
  const r = await both(() => {
    const batch = makeLmBatch(seqs);
    const { value, grads } = tf.variableGrads(() => lmLoss(m, batch.tokens, batch.lossMask, { temperature: 0.9 }), vars);
    const out = { loss: value.dataSync()[0], grads: vars.map((v) => grads[v.name].dataSync().slice()) };
    tf.dispose([value, batch.tokens, batch.lossMask, ...Object.values(grads)]);
    return out;
  });
  assert.ok(Math.abs(r.torch.loss - r.wasm.loss) / Math.abs(r.wasm.loss) < TOL, `loss ${r.torch.loss} vs ${r.wasm.loss}`);
  r.wasm.grads.forEach((g, i) => {
    const e = relErr(r.torch.grads[i], g);
    assert.ok(e < TOL, `${names[i]}: relative error ${e}`);
  });
  m.dispose();
});

test("one training step (gradients, clipping, AdamW with weight decay) gives the same weights", { skip }, async () => {
  const run = (): Map<string, Float32Array> => {
    const m = GPT2.random(cfg, 5);
    const trainer = new Trainer(m.parameters(), { schedule: { kind: "constant", lr: 3e-3 }, maxGradNorm: 0.5, optimizer: { weightDecay: 0.1 } });
    const batch = makeLmBatch(seqs);
    for (let i = 0; i < 2; i++) {
      trainer.accumulate(() => lmLoss(m, batch.tokens, batch.lossMask));
      trainer.update();
    }
    const moments = trainer.optimizer.getState().tensors;
    const out = new Map([...m.toHostTensors()].map(([k, v]) => [k, v.data as Float32Array]));
    for (const [k, v] of moments) out.set(k, v.data as Float32Array);
    tf.dispose([batch.tokens, batch.lossMask]);
    trainer.dispose();
    m.dispose();
    return out;
  };
  const r = await both(run);
  assert.equal(r.torch.size, r.wasm.size);
  const C = cfg.nEmbd;
  for (const [k, w] of r.wasm) {
    let a = r.torch.get(k) as Float32Array;
    let b = w;
    if (k.endsWith("attn.c_attn.bias")) {
      // The key bias adds the same number to every score of a query, which softmax ignores: its
      // exact gradient is 0, and each backend's is float rounding noise, which Adam divides by its
      // own square root (a full step of +-lr either way). Compare the query and value biases.
      a = Float32Array.from([...a.subarray(0, C), ...a.subarray(2 * C)]);
      b = Float32Array.from([...b.subarray(0, C), ...b.subarray(2 * C)]);
    }
    const e = relErr(a, b);
    assert.ok(e < TOL, `${k}: relative error ${e}`);
  }
});

test("scalar head: values, scores at positions and their gradients agree", { skip }, async () => {
  const lm = GPT2.random(cfg, 6);
  const sm = ScalarHeadModel.fromLanguageModel(lm, 2);
  lm.dispose();
  const T = 9;
  const flat = new Int32Array(3 * T);
  seqs.forEach((s, b) => flat.set(s.tokens.slice(0, T), b * T));
  const vars = [...sm.parameters().values()];
  const r = await both(() =>
    tf.tidy(() => {
      const tokens = tf.tensor2d(flat, [3, T], "int32");
      const values = sm.values(tokens).dataSync().slice();
      const scores = sm.scoresAt(tokens, [8, 4, 8]).dataSync().slice();
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(sm.scoresAt(tokens, [8, 4, 8]), tf.tensor1d([1, -2, 0.5]))), vars);
      return { values, scores, grads: vars.map((v) => grads[v.name].dataSync().slice()) };
    }),
  );
  assert.ok(relErr(r.torch.values, r.wasm.values) < TOL, `values: relative error ${relErr(r.torch.values, r.wasm.values)}`);
  assert.ok(relErr(r.torch.scores, r.wasm.scores) < TOL, `scores: relative error ${relErr(r.torch.scores, r.wasm.scores)}`);
  r.wasm.grads.forEach((g, i) => assert.ok(relErr(r.torch.grads[i], g) < TOL, `grad ${i}: ${relErr(r.torch.grads[i], g)}`));
  sm.dispose();
});

test("generation with the key/value cache draws the same tokens, with the same log-probabilities", { skip }, async () => {
  const m = GPT2.random(cfg, 7);
  const prompts = [[1, 2, 3], [9], [40, 41, 42, 43, 44]];
  const r = await both(() => generate(m, prompts, { maxNewTokens: 12, temperature: 0.8, seed: 11 }));
  r.wasm.forEach((s, i) => {
    assert.deepEqual(Array.from(r.torch[i].tokens), Array.from(s.tokens), `row ${i}`);
    assert.ok(relErr(r.torch[i].logProbs, s.logProbs) < TOL, `row ${i} logprobs`);
  });
  const noCache = await both(() => generate(m, prompts, { maxNewTokens: 6, seed: 3, useCache: false }));
  noCache.wasm.forEach((s, i) => assert.deepEqual(Array.from(noCache.torch[i].tokens), Array.from(s.tokens)));
  m.dispose();
});
