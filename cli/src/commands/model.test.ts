import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
