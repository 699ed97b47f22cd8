// The run's own data files: read and checked as StartRun does, every problem named by config key,
// file, line and field; the held-out split of a comparisons file; the resume check of data-files.json.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { FailedPreconditionError, InvalidArgumentError } from "@rlhf/errors";
import { filesDigest } from "@rlhf/data";
import { getTokenizer } from "@rlhf/model";
import { mergeRunConfigs, presetRunConfig, resolveConfigPaths, resolveRunConfig, type RunConfig } from "@rlhf/run-config";
import { checkDataUnchanged, heldOutComparisons, loadUserData, writeDataFiles } from "./user-data";

const EXAMPLES = resolve(__dirname, "..", "..", "..", "..", "examples", "user-data");
const tok = getTokenizer("byte");
const tmp = mkdtempSync(join(tmpdir(), "user-data-"));

/** The example config (examples/user-data/run.yaml as JSON), with `files` in place of its data files and `over` on top. */
function config(over: object = {}, files: Record<string, string | null> = {}): RunConfig {
  // The byte tokenizer (as `tok` above counts), with the room for prompts it needs.
  const base = {
    model: { tokenizer: "byte", n_positions: 256 },
    data: {
      max_prompt_tokens: 176,
      source: "files",
      files: { sft: "sft.jsonl", rankings: "rankings.jsonl", prompts: "prompts.jsonl", eval_prompts: "eval-prompts.jsonl", pretrain: "pretrain.txt", ...files },
      pretrain_validation_fraction: 0.2,
    },
    rankings: { source: "file" },
    pretrain: { steps: 30, batch_size: 8, sequence_length: 64, warmup_steps: 3 },
    reward_model: { validation_fraction: 0.2 },
    ppo: { ptx: { sequence_length: 64 } },
    evaluation: { prompts: 12, samples_in_report: 4 },
  };
  return resolveRunConfig(resolveConfigPaths(mergeRunConfigs(presetRunConfig("tiny"), base, over), EXAMPLES));
}

/** A file in the temporary folder with these lines. */
function file(name: string, lines: string[]): string {
  const p = join(tmp, name);
  writeFileSync(p, lines.join("\n") + "\n");
  return p;
}

/** The `key: message` of the InvalidArgumentError loadUserData throws. */
function problem(c: RunConfig): string {
  try {
    loadUserData(c, tok);
  } catch (e) {
    assert.ok(e instanceof InvalidArgumentError, String(e));
    return e.message;
  }
  assert.fail("expected an InvalidArgumentError");
}

test("the example files load: SFT, prompts, the first evaluation.prompts, rankings, the pretraining text", () => {
  const d = loadUserData(config(), tok);
  assert.equal(d.sft?.length, 30);
  assert.equal(d.ppoPrompts?.length, 24);
  assert.equal(d.evalPrompts?.length, 12);
  assert.equal(loadUserData(config({ evaluation: { prompts: 5, samples_in_report: 4 } }), tok).evalPrompts?.length, 5);
  assert.equal(d.rankings?.kind, "rankings");
  assert.equal(d.rankings?.groups.length, 30);
  assert.deepEqual(d.textCorpus, { files: [join(EXAMPLES, "pretrain.txt")], validationFraction: 0.2, contentDigest: filesDigest([join(EXAMPLES, "pretrain.txt")]) });
  assert.deepEqual(d.files.map((f) => f.key), ["data.files.sft", "data.files.prompts", "data.files.eval_prompts", "data.files.rankings", "data.files.pretrain"]);
  assert.ok(d.files.every((f) => f.path.startsWith(EXAMPLES) && /^[0-9a-f]{64}$/.test(f.sha256) && f.bytes > 0));
  // Pairs are rankings of K = 2; rankings.prompts takes the first records.
  const pairs = loadUserData(config({ rankings: { prompts: 10 } }, { rankings: "pairs.jsonl" }), tok);
  assert.equal(pairs.rankings?.kind, "pairs");
  assert.equal(pairs.rankings?.groups.length, 10);
  assert.deepEqual(pairs.rankings?.groups[0].ranking, [0, 1]);
  // Built-in tasks with a rankings file, and built-in everything: only what is asked for is read.
  const builtinWithFile = resolveRunConfig({ rankings: { source: "file" }, data: { files: { rankings: join(EXAMPLES, "rankings.jsonl") } } });
  assert.deepEqual(loadUserData(builtinWithFile, tok).files.map((f) => f.key), ["data.files.rankings"]);
  assert.deepEqual(loadUserData(resolveRunConfig({}), tok), { files: [], warnings: [] });
});

test("a bad line fails with the config key, the file, the line and the field", () => {
  const sft = (name: string, lines: string[]) => problem(config({}, { sft: file(name, lines) }));
  const ok = '{"prompt":"Question: hi?\\nAnswer:","completion":" hello"}';
  assert.equal(sft("s1.jsonl", [ok, '{"prompt":"q"}']), `data.files.sft: ${join(tmp, "s1.jsonl")}:2: completion: missing field`);
  assert.equal(sft("s2.jsonl", [ok, "", '{"prompt":"q","completion":3}']), `data.files.sft: ${join(tmp, "s2.jsonl")}:3: completion: expected a string, got number`);
  assert.equal(sft("s3.jsonl", [ok, "{oops"]).split(": invalid JSON")[0], `data.files.sft: ${join(tmp, "s3.jsonl")}:2: json`);
  assert.equal(sft("s4.jsonl", [ok, JSON.stringify({ prompt: "x".repeat(200), completion: "y" })]), `data.files.sft: ${join(tmp, "s4.jsonl")}:2: prompt: 200 tokens, over data.max_prompt_tokens (176): shorten it, or raise data.max_prompt_tokens (with room for max_new_tokens in model.n_positions)`);
  assert.equal(sft("s5.jsonl", [JSON.stringify({ prompt: "p".repeat(100), completion: "c".repeat(160) })]), `data.files.sft: ${join(tmp, "s5.jsonl")}:1: completion: prompt + completion + EOS are 261 tokens, over model.n_positions (256)`);
  assert.equal(problem(config({}, { sft: join(tmp, "nope.jsonl") })), `data.files.sft: ${join(tmp, "nope.jsonl")}: file: cannot read: ENOENT`);
  assert.equal(problem(config({}, { sft: file("empty.jsonl", [""]) })), `data.files.sft: ${join(tmp, "empty.jsonl")}: file: no sft records`);
  assert.equal(problem(config({}, { prompts: file("p1.jsonl", ['{"prompt":"ok"}', '{"prompt":"  "}']) })), `data.files.prompts: ${join(tmp, "p1.jsonl")}:2: prompt: empty text`);
  assert.equal(problem(config({}, { eval_prompts: file("e1.jsonl", ['{"question":"no prompt"}']) })), `data.files.eval_prompts: ${join(tmp, "e1.jsonl")}:1: prompt: missing field`);
  const r = (name: string, lines: string[]) => problem(config({}, { rankings: file(name, lines) }));
  const group = (i: number) => JSON.stringify({ prompt: `p${i}`, responses: ["a", "b"], ranking: [0, 1] });
  const ten = Array.from({ length: 10 }, (_, i) => group(i));
  assert.equal(r("r1.jsonl", [...ten, '{"prompt":"p","responses":["a","b"],"ranking":[0,0]}']), `data.files.rankings: ${join(tmp, "r1.jsonl")}:11: ranking: all responses are tied: nothing to learn from`);
  const k17 = JSON.stringify({ prompt: "p", responses: Array.from({ length: 17 }, (_, i) => `r${i}`), ranking: Array.from({ length: 17 }, (_, i) => i) });
  assert.equal(r("r2.jsonl", [...ten, k17]), `data.files.rankings: ${join(tmp, "r2.jsonl")}:11: responses: K = 17, over the reward model's limit of 16 responses per prompt`);
  assert.equal(r("r3.jsonl", [...ten, JSON.stringify({ prompt: "p", responses: ["a", "b".repeat(300)], ranking: [1, 0] })]), `data.files.rankings: ${join(tmp, "r3.jsonl")}:11: responses[1]: prompt + response + EOS are 302 tokens, over model.n_positions (256)`);
  assert.equal(r("r4.jsonl", [...ten, JSON.stringify({ prompt: "p", chosen: "a", rejected: "b" })]), `data.files.rankings: ${join(tmp, "r4.jsonl")}:11: responses: missing field (and 1 more on this line)`, "the first record sets the format");
  assert.equal(r("r5.jsonl", [JSON.stringify({ prompt: "p", chosen: "a", rejected: "b".repeat(300) })]), `data.files.rankings: ${join(tmp, "r5.jsonl")}:1: rejected: prompt + response + EOS are 302 tokens, over model.n_positions (256)`);
  assert.equal(r("r6.jsonl", ten.slice(0, 4)), `reward_model.validation_fraction: 0.2 of the 4 comparisons used from ${join(tmp, "r6.jsonl")} holds out 0; needs at least 1 held out and 1 for training (add comparisons, or change the fraction)`);
});

test("pretraining text: bad lines, missing folders and too little text for a window are named", () => {
  const pre = (p: string, over: object = {}) => problem(config(over, { pretrain: p }));
  writeFileSync(join(tmp, "bad.txt"), Buffer.concat([Buffer.from("fine\n\nalso fine\n"), Buffer.from([0xff]), Buffer.from("\n")]));
  assert.equal(pre(join(tmp, "bad.txt")), `data.files.pretrain: ${join(tmp, "bad.txt")}:4: text: not valid UTF-8`);
  const empty = join(tmp, "no-text");
  mkdirSync(empty);
  assert.equal(pre(empty), `data.files.pretrain: ${empty}: file: the folder holds no .txt files`);
  assert.match(pre(file("short.txt", ["a short text", "", "and another"])), /^data\.files\.pretrain: .*short\.txt: the training split \(2 documents\) holds 25 tokens, fewer than one window of 64 \(pretrain\.sequence_length \/ ppo\.ptx\.sequence_length\): add text$/);
  assert.match(pre(join(EXAMPLES, "pretrain.txt"), { data: { pretrain_validation_fraction: 0.01 } }), /the validation split \(0 of 27 documents at data\.pretrain_validation_fraction 0\.01\) holds 0 tokens, fewer than one window of 64 \(ppo\.ptx\.sequence_length\): add text, or raise the fraction$/);
  // A folder: its .txt files in name order.
  const folder = join(tmp, "texts");
  mkdirSync(folder);
  copyFileSync(join(EXAMPLES, "pretrain.txt"), join(folder, "b.txt"));
  copyFileSync(join(EXAMPLES, "pretrain.txt"), join(folder, "a.txt"));
  writeFileSync(join(folder, "notes.md"), "not read");
  const d = loadUserData(config({}, { pretrain: folder }), tok);
  assert.deepEqual(d.textCorpus?.files, [join(folder, "a.txt"), join(folder, "b.txt")]);
  assert.equal(d.files.filter((f) => f.key === "data.files.pretrain").length, 2);
});

test("held-out comparisons are spread evenly through a file", () => {
  const ids = Array.from({ length: 30 }, (_, i) => i);
  const s = heldOutComparisons(ids, 0.2);
  assert.deepEqual(s.validation, [4, 9, 14, 19, 24, 29]);
  assert.equal(s.train.length, 24);
  assert.deepEqual(heldOutComparisons(ids, 0.9).train, [0, 10, 20], "large fractions too");
});

test("a resume refuses data files that changed since the run started", async () => {
  const dir = mkdtempSync(join(tmpdir(), "run-"));
  const sft = file("resume-sft.jsonl", ['{"prompt":"a","completion":"b"}']);
  const c = config({}, { sft });
  const before = loadUserData(c, tok).files;
  await checkDataUnchanged(dir, before); // no data-files.json: nothing to compare
  await writeDataFiles(dir, before);
  await checkDataUnchanged(dir, loadUserData(c, tok).files);
  writeFileSync(sft, '{"prompt":"a","completion":"changed"}\n');
  await assert.rejects(checkDataUnchanged(dir, loadUserData(c, tok).files), (e: unknown) => {
    assert.ok(e instanceof FailedPreconditionError);
    assert.match(e.message, new RegExp(`^data\\.files\\.sft: ${sft.replace(/[.]/g, "\\.")} changed since the run started \\(SHA-256 [0-9a-f]{12}…, now [0-9a-f]{12}…\\): restore it to resume exactly, or start a new run$`));
    return true;
  });
  await assert.rejects(checkDataUnchanged(dir, loadUserData(config({}, { sft: join(EXAMPLES, "sft.jsonl") }), tok).files), /resume-sft\.jsonl was read when the run started and is not part of it now/);
});
