import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import { presetConfig } from "./config";
import { GPT2 } from "./gpt2";
import { Trainer, lmLoss, makeLmBatch } from "./train";
import { ByteTokenizer } from "./tokenizer";

// The default backend (torch where built, else wasm): both are several times faster than the pure-JS cpu backend for this loop.
before(async () => {
  await initBackend();
});

test("a tiny byte-level model overfits a few sentences to near-zero loss", () => {
  const tok = new ByteTokenizer();
  const sentences = ["The cat sat on the mat.", "Dogs bark at night.", "Rain falls in May."];
  const config = presetConfig("tiny");
  const m = GPT2.random(config, 0);
  const batch = makeLmBatch(sentences.map((s) => ({ tokens: [...tok.encode(s), tok.eosId] })));
  const trainer = new Trainer(m.parameters(), { schedule: { kind: "cosine", lr: 2e-2, warmupSteps: 10, totalSteps: 150, minLr: 1e-3 }, optimizer: { weightDecay: 0 } });
  try {
    let first = 0;
    let loss = 0;
    for (let i = 0; i < 150; i++) {
      loss = trainer.accumulate(() => lmLoss(m, batch.tokens, batch.lossMask));
      if (i === 0) first = loss;
      trainer.update();
    }
    assert.ok(first > 5, `initial loss ${first} should be ~ln(512)`);
    assert.ok(loss < 0.05, `final loss ${loss}`);
  } finally {
    tf.dispose([batch.tokens, batch.lossMask]);
    trainer.dispose();
    m.dispose();
  }
});

