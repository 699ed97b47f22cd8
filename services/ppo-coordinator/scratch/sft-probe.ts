import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "@rlhf/compute";
import { GPT2, Trainer, lmLoss, makeLmBatch, generate, getTokenizer, presetConfig } from "@rlhf/model";
import { buildInstructionDatasets, evaluateResponses, type TaskFamily } from "@rlhf/data";

async function main() {
  const [nEmbd, nLayer, nHead, steps, lr, bs, fam] = process.argv.slice(2);
  await initBackend({});
  const tok = getTokenizer("byte");
  const cfg = presetConfig("tiny", { vocabSize: 258, nPositions: 256, nEmbd: +nEmbd, nLayer: +nLayer, nHead: +nHead });
  const families = fam ? (fam.split(",") as TaskFamily[]) : undefined;
  const ds = buildInstructionDatasets({ seed: 0, sizes: { sft: 2000, rm: 10, ppo: 10, eval: 100 }, families });
  const ex = ds.sft.map((t) => { const p = tok.encode(t.prompt); return { tokens: [...p, ...tok.encode(t.completion), tok.eosId], lossStart: p.length }; });
  const m = GPT2.random(cfg, 0);
  const tr = new Trainer(m.parameters(), { optimizer: { weightDecay: 0 }, schedule: { kind: "cosine", lr: +lr, warmupSteps: 20, totalSteps: +steps, minLr: +lr / 10 }, maxGradNorm: 1 });
  const t0 = Date.now();
  for (let s = 0; s < +steps; s++) {
    const batch = Array.from({ length: +bs }, (_, i) => ex[(s * +bs + i) % ex.length]);
    const b = makeLmBatch(batch);
    const loss = tr.accumulate(() => lmLoss(m, b.tokens, b.lossMask));
    tf.dispose([b.tokens, b.lossMask]);
    tr.update();
    if (s % 100 === 0 || s === +steps - 1) console.log(`step ${s} loss ${loss.toFixed(3)} ${((Date.now() - t0) / 1000).toFixed(0)}s`);
  }
  const prompts = ds.eval.map((t) => tok.encode(t.prompt));
  const g = generate(m, prompts, { maxNewTokens: 48, topK: 1, eosId: tok.eosId, seed: 0 });
  const texts = g.map((x) => tok.decode(x.tokens));
  const r = evaluateResponses(ds.eval, texts);
  console.log(JSON.stringify({ ...r, eos: g.filter((x) => x.finishReason === "eos").length / g.length, secs: (Date.now() - t0) / 1000 }));
  for (let i = 0; i < 6; i++) console.log(JSON.stringify(ds.eval[i].completion), "->", JSON.stringify(texts[i]));
}
main();
