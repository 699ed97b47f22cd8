import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import { InvalidArgumentError } from "@rlhf/errors";
import type { GPT2Config } from "./config";
import { type GeneratedSequence, generate, sampleToken } from "./generate";
import { Xoshiro128ss } from "@rlhf/random";
import { sharpRandomModel } from "./testing/sharp-model";

before(async () => {
  await initBackend();
});

/** Small vocabulary so EOS (id 3) is sampled now and then; peaked weights (see sharpRandomModel). */
const cfg: GPT2Config = { vocabSize: 23, nPositions: 40, nEmbd: 24, nLayer: 2, nHead: 3, layerNormEpsilon: 1e-5 };
const EOS = 3;
const prompts = [[5, 6, 7], [1, 2, 9, 10, 11, 12, 13], [4], [8, 8, 20, 21, 22]];

function assertClose(a: Float32Array, b: Float32Array, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

function assertSameGeneration(a: GeneratedSequence[], b: GeneratedSequence[], what: string): void {
  assert.equal(a.length, b.length);
  a.forEach((s, i) => {
    assert.deepEqual([...s.tokens], [...b[i].tokens], `${what}: tokens of row ${i}`);
    assert.equal(s.finishReason, b[i].finishReason, `${what}: finishReason of row ${i}`);
    assert.equal(s.endIndex, b[i].endIndex, `${what}: endIndex of row ${i}`);
    assertClose(s.logProbs, b[i].logProbs, 1e-4, `${what}: logProbs of row ${i}`);
  });
}

test("cache and no-cache generation agree (tokens, log-probs within 1e-4) on a batch of mixed prompt lengths", () => {
  const m = sharpRandomModel(cfg, 7);
  try {
    for (const opts of [
      { temperature: 1 },
      { temperature: 0.7 },
      { temperature: 1.3, topK: 5 },
      { temperature: 0.9, topP: 0.8 },
    ]) {
      const o = { maxNewTokens: 20, eosId: EOS, seed: 11, ...opts };
      const cached = generate(m, prompts, { ...o, useCache: true });
      const plain = generate(m, prompts, { ...o, useCache: false });
      assertSameGeneration(cached, plain, JSON.stringify(opts));
      // The comparison must have covered both ways of ending and rows that ran long.
      if (opts.temperature === 1 && !opts.topK && !opts.topP) {
        assert.ok(cached.some((s) => s.finishReason === "eos"), "some row should stop at EOS");
        assert.ok(cached.some((s) => s.finishReason === "length"), "some row should reach maxNewTokens");
      }
    }
  } finally {
    m.dispose();
  }
});

test("a prompt generates the same alone as left-padded in a mixed batch (positions and padding mask are right)", () => {
  const m = sharpRandomModel(cfg, 8);
  try {
    const o = { maxNewTokens: 15, temperature: 1, seed: 5 };
    const batch = generate(m, [prompts[0], prompts[1], prompts[3]], o); // row 0 is padded by 4
    const alone = generate(m, [prompts[0]], o);
    assert.deepEqual([...batch[0].tokens], [...alone[0].tokens]);
    assertClose(batch[0].logProbs, alone[0].logProbs, 1e-4, "row 0");
  } finally {
    m.dispose();
  }
});

test("teacher-forced log-probs of generated sequences equal the ones returned while sampling (T = 1 and 0.7)", () => {
  const m = sharpRandomModel(cfg, 9);
  try {
    for (const temperature of [1, 0.7]) {
      for (const useCache of [true, false]) {
        const gen = generate(m, prompts, { maxNewTokens: 16, eosId: EOS, temperature, seed: 3, useCache });
        const full = gen.map((g, b) => [...prompts[b], ...g.tokens]);
        const tf_ = m.tokenLogProbs({ tokens: Int32Array.from(full.flat()), lengths: full.map((s) => s.length) }, temperature);
        gen.forEach((g, b) => {
          const P = prompts[b].length;
          assertClose(tf_[b].subarray(P - 1), g.logProbs, 1e-4, `T=${temperature} cache=${useCache} row ${b}`);
          assert.equal(g.endIndex, full[b].length - 1);
        });
      }
    }
  } finally {
    m.dispose();
  }
});

test("stops at EOS per sequence; seeded: same seed same output, another seed another", () => {
  const m = sharpRandomModel(cfg, 7);
  try {
    const o = { maxNewTokens: 20, eosId: EOS, seed: 11 };
    const a = generate(m, prompts, o);
    for (const s of a) {
      const eosAt = [...s.tokens].indexOf(EOS);
      if (s.finishReason === "eos") assert.equal(eosAt, s.tokens.length - 1, "EOS is the last token");
      else {
        assert.equal(eosAt, -1);
        assert.equal(s.tokens.length, 20);
      }
    }
    assertSameGeneration(a, generate(m, prompts, o), "same seed");
    const c = generate(m, prompts, { ...o, seed: 12 });
    assert.notDeepEqual(
      a.map((s) => [...s.tokens]),
      c.map((s) => [...s.tokens]),
    );
  } finally {
    m.dispose();
  }
});

test("sampleToken: log-prob is the tempered full distribution's; top-k / top-p restrict the draw", () => {
  const logits = Float32Array.from([2, 1, 0.5, -1, 3]);
  const T = 0.5;
  const z = [...logits].map((x) => x / T);
  const lse = Math.log(z.reduce((s, x) => s + Math.exp(x), 0));
  const rng = new Xoshiro128ss(1);
  const counts = new Map<number, number>();
  for (let i = 0; i < 400; i++) {
    const { id, logProb } = sampleToken(logits, 0, 5, { temperature: T, topK: 2, topP: 1 }, rng);
    assert.ok(Math.abs(logProb - (z[id] - lse)) < 1e-12);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  assert.deepEqual([...counts.keys()].sort(), [0, 4], "top-2 draws only ids 4 and 0");
  // top-p 0.5: p(4) = e^6 / sum ~ 0.86 alone covers it.
  for (let i = 0; i < 50; i++) assert.equal(sampleToken(logits, 0, 5, { temperature: T, topK: 0, topP: 0.5 }, rng).id, 4);
  // Untruncated: frequencies follow the probabilities (4: ~0.86, 0: ~0.12).
  let n4 = 0;
  for (let i = 0; i < 2000; i++) if (sampleToken(logits, 0, 5, { temperature: T, topK: 0, topP: 1 }, rng).id === 4) n4++;
  const p4 = Math.exp(z[4] - lse);
  assert.ok(Math.abs(n4 / 2000 - p4) < 0.03, `${n4 / 2000} vs ${p4}`);
});

test("no tensors leak across repeated generate calls, with and without the cache", () => {
  const m = sharpRandomModel(cfg, 7);
  try {
    generate(m, prompts, { maxNewTokens: 4 }); // warm-up
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      generate(m, prompts, { maxNewTokens: 6, eosId: EOS, seed: i });
      generate(m, prompts, { maxNewTokens: 6, eosId: EOS, seed: i, useCache: false });
    }
    assert.equal(tf.memory().numTensors, before);
  } finally {
    m.dispose();
  }
});

test("rejects bad options and prompts with InvalidArgumentError naming the field", () => {
  const m = sharpRandomModel(cfg, 7);
  try {
    const bad = (p: number[][], o: Record<string, unknown>, field: string) =>
      assert.throws(
        () => generate(m, p, { maxNewTokens: 4, ...o }),
        (e: unknown) => e instanceof InvalidArgumentError && e.field === field,
      );
    bad([[1, 2]], { maxNewTokens: 39 }, "prompts[0]");
    bad([[1], []], {}, "prompts[1]");
    bad([[1, 23]], {}, "prompts[0][1]");
    bad([[1]], { temperature: 0 }, "temperature");
    bad([[1]], { topP: 0 }, "topP");
    bad([[1]], { eosId: 23 }, "eosId");
    bad([], {}, "prompts");
  } finally {
    m.dispose();
  }
});
