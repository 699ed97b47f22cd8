import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError, parseArgs } from "../args";
import { data } from "./data";

const tmp = mkdtempSync(join(tmpdir(), "rlhf-cli-data-"));

/** Runs `rlhf data ...` and returns its output lines and exit code, leaving process.exitCode as it was. */
async function run(...argv: string[]): Promise<{ lines: string[]; exitCode: number }> {
  const lines: string[] = [];
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    await data(parseArgs(["data", ...argv]), (l) => lines.push(l));
    return { lines, exitCode: Number(process.exitCode ?? 0) };
  } finally {
    process.exitCode = before;
  }
}

test("check prints each problem as file:line: field: message, a summary, and exits 1", async () => {
  const path = join(tmp, "bad.jsonl");
  writeFileSync(path, [`{"prompt":"p","completion":" c"}`, `{"prompt":"p"}`, `{oops`, `{"prompt":"p","completion":""}`].join("\n") + "\n");
  const r = await run("check", path);
  assert.equal(r.exitCode, 1);
  assert.deepEqual(r.lines.slice(0, 3), [`${path}:2: completion: missing field`, `${path}:3: json: invalid JSON: ${jsonError("{oops")}`, `${path}:4: completion: empty text`]);
  assert.match(r.lines[3], /3 errors on 3 bad lines; sft \(inferred\), 1 valid records in 4 lines/);
});

function jsonError(s: string): string {
  try {
    JSON.parse(s);
  } catch (e) {
    return (e as Error).message;
  }
  return "";
}

test("check of a good file says ok and exits 0; --kind overrides inference", async () => {
  const path = join(tmp, "good.jsonl");
  writeFileSync(path, `{"prompt":"p","responses":["a","b"],"ranking":[1,0]}\n`);
  const r = await run("check", path);
  assert.equal(r.exitCode, 0);
  assert.deepEqual(r.lines, [`${path}: ok: rankings (inferred), 1 records in 1 lines`]);
  const forced = await run("check", path, "--kind", "pairs");
  assert.equal(forced.exitCode, 1);
  assert.ok(forced.lines.includes(`${path}:1: chosen: missing field`), forced.lines.join("\n"));
});

test("export writes the built-in datasets, and they pass check", async () => {
  const out = join(tmp, "export");
  const r = await run("export", out, "--sft", "20", "--rm", "10", "--ppo", "5", "--eval", "5", "--seed", "3");
  assert.equal(r.exitCode, 0);
  assert.match(r.lines[r.lines.length - 1], /^wrote .*export in [\d.]+ s \(seed 3, K = 4, 4 labelers at 0.73 agreement/);
  for (const f of ["sft.jsonl", "rankings.jsonl", "pairs.jsonl", "ppo-prompts.jsonl", "eval-prompts.jsonl", "pretrain-train.txt", "pretrain-valid.txt", "manifest.json", "README.md"]) {
    assert.ok(existsSync(join(out, f)), f);
  }
  assert.ok(r.lines.some((l) => /sft\.jsonl\s+20 records \(sft\)/.test(l)), r.lines.join("\n"));
  for (const f of ["sft.jsonl", "rankings.jsonl", "pairs.jsonl", "eval-prompts.jsonl", "pretrain-valid.txt"]) {
    const c = await run("check", join(out, f));
    assert.equal(c.exitCode, 0, c.lines.join("\n"));
  }
});

test("usage errors", async () => {
  await assert.rejects(run(), UsageError);
  await assert.rejects(run("frobnicate"), /unknown data command/);
  await assert.rejects(run("check"), /needs a file/);
  await assert.rejects(run("check", join(tmp, "missing.jsonl")), /no such file/);
  await assert.rejects(run("check", tmp), /not a file/);
  await assert.rejects(run("check", join(tmp, "good.jsonl"), "--kind", "csv"), /--kind must be one of/);
  await assert.rejects(run("export"), /needs a folder/);
  await assert.rejects(run("export", join(tmp, "x"), "--seed", "-1"), /--seed/);
  await assert.rejects(run("export", join(tmp, "x"), "--k", "1"), /--k must be an integer >= 2/);
  await assert.rejects(run("export", join(tmp, "x"), "--bogus", "1"), /unknown option --bogus/);
});

test("bpe learns the built-in vocabulary from the corpus: the shipped merges are its output", async () => {
  const out = join(tmp, "bpe.json");
  const { lines } = await run("bpe", "--vocab-size", "2048", "--out", out);
  assert.match(lines[0], /^learned 1790 merges \(vocabulary 2048\) from 475 documents in [\d.]+ s; 3\.\d\d characters per token on the validation split$/);
  const shipped = readFileSync(join(__dirname, "..", "..", "..", "libs", "model", "src", "vocab", "brown-bpe-2048.json"), "utf8");
  assert.equal(readFileSync(out, "utf8"), shipped, "run `rlhf data bpe --vocab-size 2048 --out libs/model/src/vocab/brown-bpe-2048.json` after changing the learner");
  await assert.rejects(run("bpe", "--vocab-size", "12"), /--vocab-size must be an integer >= 259/);
});
