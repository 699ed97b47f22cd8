import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { GPT2, loadCheckpoint, presetConfig, saveCheckpoint } from "@rlhf/model";
import { UsageError, parseArgs } from "../args";
import { generate, init, logprobs } from "./model";

process.env.RLHF_BACKEND ??= "cpu";
const tmp = mkdtempSync(join(tmpdir(), "rlhf-cli-model-"));
const dir = join(tmp, "tiny");

async function run(fn: typeof init, ...argv: string[]): Promise<Record<string, unknown>> {
  const lines: string[] = [];
  await fn(parseArgs(argv, new Set(["no-cache"])), (l) => lines.push(l));
  assert.equal(lines.length, 1);
  return JSON.parse(lines[0]) as Record<string, unknown>;
}

test("init writes a seeded tiny checkpoint that records the byte tokenizer", async () => {
  const r = await run(init, "init", "--size", "tiny", "--out", dir, "--seed", "3");
  assert.equal(r.tokenizer, "byte");
  assert.ok(existsSync(join(dir, "model.safetensors")));
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  assert.equal(cfg.rlhf_tokenizer, "byte");
  assert.equal(cfg.n_embd, 32);
  // Same seed, same bytes.
  await run(init, "init", "--size", "tiny", "--out", join(tmp, "again"), "--seed", "3");
  assert.deepEqual(readFileSync(join(tmp, "again", "model.safetensors")), readFileSync(join(dir, "model.safetensors")));
});

test("generate prints tokens and log-probs that logprobs reproduces; cached and uncached agree", async () => {
  const g = await run(generate, "generate", "--checkpoint", dir, "--prompt", "Hello", "--max-new-tokens", "8", "--seed", "2", "--temperature", "0.7");
  assert.deepEqual(g.promptTokens, [72, 101, 108, 108, 111]);
  const tokens = g.tokens as number[];
  assert.ok(tokens.length >= 1 && tokens.length <= 8);
  assert.equal(typeof g.text, "string");
  const g2 = await run(generate, "generate", "--checkpoint", dir, "--prompt", "Hello", "--max-new-tokens", "8", "--seed", "2", "--temperature", "0.7", "--no-cache");
  assert.deepEqual(g2.tokens, g.tokens);
  const all = [...(g.promptTokens as number[]), ...tokens];
  const l = await run(logprobs, "logprobs", "--checkpoint", dir, "--tokens", all.join(","), "--temperature", "0.7");
  const lp = l.logprobs as number[];
  assert.equal(lp.length, all.length - 1);
  (g.logprobs as number[]).forEach((x, i) => assert.ok(Math.abs(x - lp[4 + i]) < 1e-4, `${x} vs ${lp[4 + i]}`));
  const t = await run(logprobs, "logprobs", "--checkpoint", dir, "--text", "Hello");
  assert.deepEqual(t.tokens, [72, 101, 108, 108, 111]);
  assert.equal((t.logprobs as number[]).length, 4);
});

test("bad usage is a UsageError", async () => {
  const bad = (fn: typeof init, ...argv: string[]) => assert.rejects(fn(parseArgs(argv), () => {}), UsageError);
  await bad(generate, "generate", "--checkpoint", dir, "--prompt", "x", "--bogus", "1");
  await bad(generate, "generate", "--prompt", "x");
  await bad(logprobs, "logprobs", "--checkpoint", dir, "--text", "a", "--tokens", "1");
  await bad(logprobs, "logprobs", "--checkpoint", dir, "--tokens", "1,x");
  await bad(init, "init", "--size", "huge", "--out", join(tmp, "x"));
  await bad(generate, "generate", "--checkpoint", dir, "--prompt", "x", "--temperature", "hot");
});

test("--checkpoint takes a run's checkpoint folder (its model is in policy/); a folder without a model says where models live", async () => {
  // A run folder as the coordinator leaves it: checkpoints/<name>/policy/{config.json, model.safetensors}.
  const runDir = join(tmp, "runs", "demo-1");
  mkdirSync(join(runDir, "checkpoints", "sft"), { recursive: true });
  cpSync(dir, join(runDir, "checkpoints", "sft", "policy"), { recursive: true });
  mkdirSync(join(runDir, "checkpoints", "base"), { recursive: true });
  cpSync(dir, join(runDir, "checkpoints", "base", "policy"), { recursive: true });
  const g = await run(generate, "generate", "--checkpoint", join(runDir, "checkpoints", "sft"), "--prompt", "Hi", "--max-new-tokens", "3");
  const direct = await run(generate, "generate", "--checkpoint", join(runDir, "checkpoints", "sft", "policy"), "--prompt", "Hi", "--max-new-tokens", "3");
  assert.deepEqual(g, direct);
  const l = await run(logprobs, "logprobs", "--checkpoint", join(runDir, "checkpoints", "sft"), "--text", "Hi");
  assert.equal((l.logprobs as number[]).length, 1);
  const noModel = (arg: string, message: string) =>
    assert.rejects(
      generate(parseArgs(["generate", "--checkpoint", arg, "--prompt", "x"]), () => {}),
      (e: unknown) => e instanceof UsageError && e.message.startsWith(message) && e.message.includes("runs/<run id>/checkpoints/<name>"),
      arg,
    );
  await noModel(runDir, `--checkpoint ${runDir} holds no model (no config.json in it or in its policy/ folder); models under it: ${join(runDir, "checkpoints", "base")}, ${join(runDir, "checkpoints", "sft")}. A model folder holds config.json`);
  await noModel(join(runDir, "checkpoints"), `--checkpoint ${join(runDir, "checkpoints")} holds no model (no config.json in it or in its policy/ folder); models under it: ${join(runDir, "checkpoints", "base")}, ${join(runDir, "checkpoints", "sft")}.`);
  await assert.rejects(generate(parseArgs(["generate", "--checkpoint", join(tmp, "nowhere"), "--prompt", "x"]), () => {}), (e: unknown) => e instanceof UsageError && e.message === `--checkpoint ${join(tmp, "nowhere")} does not exist`);
});

test("generate --temperature 0 is greedy: the most likely token at every step, whatever the seed", async () => {
  const a = await run(generate, "generate", "--checkpoint", dir, "--prompt", "Hello", "--max-new-tokens", "6", "--temperature", "0", "--seed", "1");
  const b = await run(generate, "generate", "--checkpoint", dir, "--prompt", "Hello", "--max-new-tokens", "6", "--temperature", "0", "--seed", "2", "--top-k", "5");
  assert.deepEqual(a.tokens, b.tokens);
  const prompt = a.promptTokens as number[];
  const tokens = a.tokens as number[];
  // Independently: the argmax of the model's logits at each generated position.
  const lm = await loadCheckpoint(dir, { trainable: false });
  try {
    const all = [...prompt, ...tokens];
    const logits = tf.tidy(() => lm.forward(tf.tensor2d(all, [1, all.length], "int32"))); // [1, T, V]
    const best = tf.tidy(() => tf.argMax(logits, -1)); // [1, T]
    const argmax = Array.from(best.dataSync());
    tf.dispose([logits, best]);
    tokens.forEach((t, i) => assert.equal(t, argmax[prompt.length - 1 + i], `token ${i}`));
  } finally {
    lm.dispose();
  }
  await assert.rejects(generate(parseArgs(["generate", "--checkpoint", dir, "--prompt", "x", "--temperature", "-1"]), () => {}), (e: unknown) => e instanceof UsageError && e.message === "--temperature must be >= 0 (0 is greedy), got -1");
  await assert.rejects(logprobs(parseArgs(["logprobs", "--checkpoint", dir, "--tokens", "1,2", "--temperature", "0"]), () => {}), (e: unknown) => e instanceof UsageError && /--temperature must be > 0, got 0/.test(e.message));
});

test("logprobs --tokens needs no tokenizer: a GPT-2-layout checkpoint with a 300-id vocabulary", async () => {
  const small = join(tmp, "gpt2-vocab-300");
  const { initBackend } = await import("@rlhf/compute");
  await initBackend();
  const lm = GPT2.random(presetConfig("tiny", { vocabSize: 300 }), 7, { trainable: false });
  try {
    await saveCheckpoint(lm, small); // no tokenizer recorded: GPT-2's by default, which needs 50257 ids
  } finally {
    lm.dispose();
  }
  const r = await run(logprobs, "logprobs", "--checkpoint", small, "--tokens", "0,17,299,42");
  assert.deepEqual(r.tokens, [0, 17, 299, 42]);
  const lp = r.logprobs as number[];
  assert.equal(lp.length, 3);
  for (const x of lp) assert.ok(Number.isFinite(x) && x < 0, String(x));
  assert.equal(r.tokenizer, undefined);
  await assert.rejects(logprobs(parseArgs(["logprobs", "--checkpoint", small, "--tokens", "1,300"]), () => {}), (e: unknown) => e instanceof UsageError && e.message === "--tokens: id 300 is out of the model's vocabulary (0..299)");
  // text still needs the tokenizer, which this vocabulary cannot hold
  await assert.rejects(logprobs(parseArgs(["logprobs", "--checkpoint", small, "--text", "hi"]), () => {}), /vocab_size: 300 is too small for the gpt2 tokenizer/);
});
