/**
 * `rlhf data learnability`: how well a model of a given size learns each task family within a
 * budget — the measurement behind the demo's task suite. In this process, on the compute backend
 * initBackend picks: a base model pretrained on the Brown corpus (cached by its settings under
 * --cache), then for each family SFT from that base for --sft-seconds CPU-seconds on its
 * demonstrations (gold, or with --flaw-share of them flawed), then on held-out prompts of the
 * family: exact match and gold helpfulness of the greedy answer, and for K = 4 samples at
 * temperature 1 how often they differ, the gap between the best and the average sample's
 * helpfulness, and how often a calibrated labeler (two agree on 73%) orders a pair of different
 * samples as the gold scorer does. A family is worth ranking when its samples differ and the best
 * of them beats the average: that is what a reward model and PPO can exploit.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type * as Data from "@rlhf/data";
import type * as Model from "@rlhf/model";
import { type ParsedArgs, UsageError, allowFlags, flagString } from "../args";
import { epochPermutation } from "@rlhf/random";

export const LEARNABILITY_USAGE = `rlhf data learnability [--families a,b,...] [--size WxLxH] [--tokenizer bpe|byte]
                       [--pretrain-steps N] [--sft-seconds S] [--flaw-share F] [--eval N] [--seed N] [--cache DIR]
  Pretrains a base model once (cached in --cache by its settings), then fine-tunes it on each
  family alone for S CPU-seconds and measures on held-out prompts: greedy exact match and gold
  helpfulness; of 4 samples at temperature 1, how often they differ, best minus mean
  helpfulness, and how often a calibrated labeler orders a pair of different samples as the gold
  scorer does. Defaults: every short family, 128x4x4, bpe, 1500 pretraining steps of 16 x 128
  tokens, 60 CPU-seconds of SFT, flaw share 0, 100 prompts, seed 0, cache ./runs/pretrain-cache.`;

interface Settings {
  families: Data.TaskFamily[];
  width: number;
  layers: number;
  heads: number;
  tokenizer: string;
  pretrainSteps: number;
  sftSeconds: number;
  flawShare: number;
  evalPrompts: number;
  seed: number;
  cache: string;
}

function num(args: ParsedArgs, name: string, dflt: number, ok: (n: number) => boolean, what: string): number {
  const raw = flagString(args, name);
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || !ok(n)) throw new UsageError(`--${name} must be ${what}, got "${raw}"`);
  return n;
}

function settings(args: ParsedArgs, data: typeof Data): Settings {
  allowFlags(args, ["families", "size", "tokenizer", "pretrain-steps", "sft-seconds", "flaw-share", "eval", "seed", "cache"], "rlhf data learnability");
  const fam = flagString(args, "families");
  const families = (fam ? fam.split(",") : [...data.SHORT_FAMILIES]) as Data.TaskFamily[];
  for (const f of families) if (!data.ALL_TASK_FAMILIES.includes(f)) throw new UsageError(`--families: unknown family "${f}"; known: ${data.ALL_TASK_FAMILIES.join(", ")}`);
  const size = flagString(args, "size") ?? "128x4x4";
  const m = /^(\d+)x(\d+)x(\d+)$/.exec(size);
  if (!m || Number(m[1]) % Number(m[3]) !== 0) throw new UsageError(`--size must be WIDTHxLAYERSxHEADS with WIDTH a multiple of HEADS, got "${size}"`);
  const tokenizer = flagString(args, "tokenizer") ?? "bpe";
  if (tokenizer !== "bpe" && tokenizer !== "byte") throw new UsageError(`--tokenizer must be bpe or byte, got "${tokenizer}"`);
  return {
    families,
    width: Number(m[1]),
    layers: Number(m[2]),
    heads: Number(m[3]),
    tokenizer,
    pretrainSteps: num(args, "pretrain-steps", 1500, (n) => Number.isInteger(n) && n >= 0, "an integer >= 0"),
    sftSeconds: num(args, "sft-seconds", 60, (n) => n > 0, "a number > 0"),
    flawShare: num(args, "flaw-share", 0, (n) => n >= 0 && n <= 1, "in [0, 1]"),
    evalPrompts: num(args, "eval", 100, (n) => Number.isInteger(n) && n >= 4, "an integer >= 4"),
    seed: num(args, "seed", 0, (n) => Number.isInteger(n) && n >= 0, "an integer >= 0"),
    cache: resolve(flagString(args, "cache") ?? join("runs", "pretrain-cache")),
  };
}

function cpuSeconds(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
}

/** One family's figures. */
export interface FamilyResult {
  family: string;
  steps: number;
  exactMatch: number;
  helpfulness: number;
  hallucination: number;
  /** Of 4 samples per prompt: share of prompts whose samples are not all identical. */
  samplesDiffer: number;
  /** Mean over prompts of (best of 4 - mean of 4) gold helpfulness. */
  bestMinusMean: number;
  /** How often a calibrated labeler orders a pair of different samples like the gold scorer (ties in gold left out). */
  labelerAccuracy: number;
  /** Pairs of different samples whose gold scores tie. */
  goldTies: number;
}

export async function learnability(args: ParsedArgs, print: (line: string) => void = console.log): Promise<FamilyResult[]> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const data = require("@rlhf/data") as typeof Data;
  const model = require("@rlhf/model") as typeof Model;
  const { initBackend } = require("@rlhf/compute") as typeof import("@rlhf/compute");
  /* eslint-enable @typescript-eslint/no-require-imports */
  const s = settings(args, data);
  const backend = await initBackend();
  const tok = model.getTokenizer(s.tokenizer);
  const config: Model.GPT2Config = { vocabSize: tok.vocabSize, nPositions: 128, nEmbd: s.width, nLayer: s.layers, nHead: s.heads, layerNormEpsilon: 1e-5 };
  print(`learnability: ${s.width}x${s.layers}x${s.heads} ${s.tokenizer} (vocabulary ${tok.vocabSize}) on ${backend.name}; ${s.pretrainSteps} pretraining steps, ${s.sftSeconds} CPU-s of SFT per family, flaw share ${s.flawShare}`);

  // 1. The base model, cached by everything that determines it.
  const key = createHash("sha256").update(JSON.stringify({ config, tokenizer: s.tokenizer, steps: s.pretrainSteps, seed: s.seed, v: 1 })).digest("hex").slice(0, 16);
  const baseDir = join(s.cache, `learnability-${key}`);
  let base: Model.GPT2;
  if (existsSync(join(baseDir, "config.json"))) {
    base = await model.loadCheckpoint(baseDir);
    print(`base model from the cache: ${baseDir}`);
  } else {
    base = model.GPT2.random(config, s.seed);
    const corpus = data.loadPretrainCorpus();
    const batcher = new data.PretrainBatcher(corpus.train, tok, { seqLen: 128, batchSize: 16, seed: s.seed });
    const trainer = new model.Trainer(base.parameters(), { schedule: { kind: "cosine", lr: 2e-3, warmupSteps: Math.min(50, Math.floor(s.pretrainSteps / 10)), totalSteps: Math.max(s.pretrainSteps, 1), minLr: 2e-4 } });
    const c0 = cpuSeconds();
    let loss = 0;
    for (let i = 0; i < s.pretrainSteps; i++) {
      const b = batcher.next();
      const tokens = tf.tensor2d(b.tokens, [b.batchSize, b.seqLen], "int32");
      const mask = tf.ones([b.batchSize, b.seqLen - 1]) as tf.Tensor2D;
      loss = trainer.accumulate(() => model.lmLoss(base, tokens, mask));
      trainer.update();
      tf.dispose([tokens, mask]);
      if ((i + 1) % 250 === 0) print(`  pretrain step ${i + 1}/${s.pretrainSteps}: loss ${loss.toFixed(3)} (${(cpuSeconds() - c0).toFixed(0)} CPU-s)`);
    }
    trainer.dispose();
    mkdirSync(baseDir, { recursive: true });
    await model.saveCheckpoint(base, baseDir, model.tokenizerConfig(tok));
    print(`pretrained in ${(cpuSeconds() - c0).toFixed(0)} CPU-s, final loss ${loss.toFixed(3)}; cached in ${baseDir}`);
  }

  // 2. Each family alone: SFT from the base, then measure.
  const sizes = { sft: 1500, rm: 0, ppo: 0, eval: s.evalPrompts };
  const results: FamilyResult[] = [];
  for (const family of s.families) {
    const ds = data.buildInstructionDatasets({ seed: s.seed, families: [family], sizes });
    const demos = data.demonstrate(ds.sft, { ...data.DEFAULT_DEMONSTRATORS, flawShare: s.flawShare }, s.seed);
    const examples = ds.sft.map((t, i) => {
      const p = tok.encode(t.prompt);
      const c = tok.encode(demos[i].completion);
      return { tokens: demos[i].eos ? [...p, ...c, tok.eosId] : [...p, ...c], lossStart: p.length };
    });
    const m = model.GPT2.fromHostTensors(config, base.toHostTensors());
    const trainer = new model.Trainer(m.parameters(), { schedule: { kind: "constant", lr: 1e-3, warmupSteps: 10 } });
    const c0 = cpuSeconds();
    let steps = 0;
    for (let epoch = 0; cpuSeconds() - c0 < s.sftSeconds; epoch++) {
      const order = epochPermutation(examples.length, s.seed, epoch);
      for (let i = 0; i + 16 <= order.length && cpuSeconds() - c0 < s.sftSeconds; i += 16) {
        const batch = model.makeLmBatch(order.slice(i, i + 16).map((j) => examples[j]));
        trainer.accumulate(() => model.lmLoss(m, batch.tokens, batch.lossMask));
        trainer.update();
        tf.dispose([batch.tokens, batch.lossMask]);
        steps++;
      }
    }
    trainer.dispose();
    const evalTasks = ds.eval;
    const prompts = evalTasks.map((t) => tok.encode(t.prompt));
    const decode = (g: Model.GeneratedSequence) => tok.decode(Array.from(g.tokens).filter((id) => id !== tok.eosId));
    const greedy = model.generate(m, prompts, { maxNewTokens: 24, topK: 1, eosId: tok.eosId, seed: 1 }).map(decode);
    const report = data.evaluateResponses(evalTasks, greedy);
    const samples = model.generate(m, prompts.flatMap((p) => [p, p, p, p]), { maxNewTokens: 24, eosId: tok.eosId, seed: 2 }).map(decode);
    let differ = 0;
    let gap = 0;
    const groups: Data.ResponseGroup[] = [];
    evalTasks.forEach((t, i) => {
      const four = samples.slice(4 * i, 4 * i + 4);
      if (new Set(four.map(data.canonicalResponse)).size > 1) differ++;
      const h = four.map((r) => data.helpfulness(t, r));
      gap += Math.max(...h) - h.reduce((a, b) => a + b, 0) / 4;
      groups.push({ task: t, responses: four });
    });
    // A calibrated panel (two labelers agree on 73% of these pairs) against the gold order.
    const diffs = data.groupScoreDiffs(groups);
    const scored = diffs.filter((d) => d !== 0);
    let labelerAccuracy = NaN;
    const cal = data.calibrateOnGroups(groups);
    if (cal && scored.length > 0) {
      labelerAccuracy = scored.reduce((a, d) => a + data.normalCdf(Math.abs(d) / cal.noiseStd / Math.SQRT2), 0) / scored.length;
    }
    m.dispose();
    const r: FamilyResult = {
      family,
      steps,
      exactMatch: report.exactMatch,
      helpfulness: report.helpfulness,
      hallucination: report.hallucinationRate,
      samplesDiffer: differ / evalTasks.length,
      bestMinusMean: gap / evalTasks.length,
      labelerAccuracy,
      goldTies: diffs.length ? (diffs.length - scored.length) / diffs.length : 0,
    };
    results.push(r);
    print(
      `${family.padEnd(14)} ${String(steps).padStart(5)} steps  exact ${r.exactMatch.toFixed(2)}  helpful ${r.helpfulness.toFixed(2)}  made-up ${r.hallucination.toFixed(2)}  samples differ ${r.samplesDiffer.toFixed(2)}  best-mean ${r.bestMinusMean.toFixed(2)}  labeler ${Number.isNaN(r.labelerAccuracy) ? " n/a" : r.labelerAccuracy.toFixed(2)}  gold ties ${r.goldTies.toFixed(2)}  e.g. ${JSON.stringify(evalTasks[0].source)} -> ${JSON.stringify(greedy[0])}`,
    );
  }
  base.dispose();
  return results;
}
