/**
 * `rlhf generate`, `rlhf logprobs` and `rlhf init`: the model library from the command line,
 * printing JSON on stdout. No gRPC.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { type ParsedArgs, UsageError, allowFlags, flagString } from "../args";
import { shown } from "../run-folder";

export const MODEL_USAGE = `rlhf generate --checkpoint DIR --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed N] [--no-cache]
rlhf logprobs --checkpoint DIR (--text TEXT | --tokens 1,2,3) [--temperature T]
rlhf init --size tiny|small|gpt2-124m --out DIR [--seed N] [--tokenizer byte|bpe|gpt2]
  generate          sample a continuation (stops at EOS); prints {prompt, promptTokens, tokens, logprobs, text, finishReason}
                    logprobs are under softmax(logits / T) over the full vocabulary (top-k/top-p only limit the draw)
  logprobs          prints {tokens, logprobs}: logprobs[i] = log p(tokens[i+1] | tokens[0..i]) (length n-1);
                    with --tokens no tokenizer is needed (any vocabulary size), with --text it also prints the tokenizer
  init              writes a seeded random checkpoint (tokenizer default: byte for tiny, gpt2 otherwise)
  --checkpoint      a model folder (config.json, model.safetensors), e.g. from rlhf init, or a run's
                    checkpoint runs/<run id>/checkpoints/<name> (its model is in <name>/policy)
  --max-new-tokens  default 64 (capped by the model's nPositions)
  --temperature     default 1; generate: 0 is greedy (the most likely token each step, as the
                    evaluation samples; logprobs then under T = 1)
  --top-k / --top-p default 0 / 1 (off)
  --seed            default 0
Backend: RLHF_BACKEND (tensorflow-gpu, tensorflow, torch, wasm, cpu); default: the first that loads.`;

type Print = (line: string) => void;

function num(args: ParsedArgs, name: string, def: number, integer = false): number {
  const v = flagString(args, name);
  if (v === undefined) {
    if (args.flags.has(name)) throw new UsageError(`--${name} needs a value`);
    return def;
  }
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new UsageError(`--${name} must be ${integer ? "an integer" : "a number"}, got ${JSON.stringify(v)}`);
  return n;
}

function required(args: ParsedArgs, name: string, command: string): string {
  const v = flagString(args, name);
  if (v === undefined || v === "") throw new UsageError(`${command}: --${name} is required\n${MODEL_USAGE}`);
  return v;
}

function noPositional(args: ParsedArgs, command: string): void {
  if (args.positional.length > 1) throw new UsageError(`${command} takes no positional arguments, got: ${args.positional.slice(1).join(" ")}`);
}

const hasModel = (dir: string) => existsSync(join(dir, "config.json"));

/**
 * The model folder `--checkpoint DIR` names: DIR itself when it holds config.json, else its
 * policy/ folder (a run's checkpoint, runs/<run id>/checkpoints/<name>, keeps its model there).
 * UsageError otherwise, naming the model folders found in or under DIR and where models live.
 */
export function modelFolder(dir: string): string {
  if (!existsSync(dir)) throw new UsageError(`--checkpoint ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`--checkpoint ${dir} is not a folder`);
  if (hasModel(dir)) return dir;
  if (hasModel(join(dir, "policy"))) return join(dir, "policy");
  // A run folder or its checkpoints/ folder: say which of its checkpoints hold a model.
  const found: string[] = [];
  for (const parent of [dir, join(dir, "checkpoints")]) {
    if (!existsSync(parent) || !statSync(parent).isDirectory()) continue;
    for (const name of readdirSync(parent).sort()) {
      const c = join(parent, name);
      if (hasModel(join(c, "policy")) || hasModel(c)) found.push(shown(c));
    }
  }
  const here = found.length > 0 ? `; models under it: ${found.slice(0, 8).join(", ")}${found.length > 8 ? ", ..." : ""}` : "";
  throw new UsageError(
    `--checkpoint ${dir} holds no model (no config.json in it or in its policy/ folder)${here}. A model folder holds config.json and model.safetensors: what rlhf init --out writes, or a run's checkpoint runs/<run id>/checkpoints/<name> (base, sft, ppo_ptx-<iteration>, ppo-<iteration>)`,
  );
}

/** The model of `--checkpoint`, without a tokenizer (token ids need none: any vocabulary size will do). */
async function loadWeights(arg: string) {
  const dir = modelFolder(arg);
  const { initBackend } = await import("@rlhf/compute");
  await initBackend();
  const model = await import("@rlhf/model");
  return { model, dir, lm: await model.loadCheckpoint(dir, { trainable: false }) };
}

/** The model of `--checkpoint` and the tokenizer its config.json names. */
async function loadModel(arg: string) {
  const w = await loadWeights(arg);
  try {
    return { ...w, tok: await w.model.loadCheckpointTokenizer(w.dir) };
  } catch (e) {
    w.lm.dispose();
    throw e;
  }
}

/** `rlhf generate`. */
export async function generate(args: ParsedArgs, print: Print = (l) => console.log(l)): Promise<void> {
  allowFlags(args, ["checkpoint", "prompt", "max-new-tokens", "temperature", "top-k", "top-p", "seed", "no-cache"], "rlhf generate");
  noPositional(args, "rlhf generate");
  const dir = required(args, "checkpoint", "rlhf generate");
  const prompt = flagString(args, "prompt");
  if (prompt === undefined) throw new UsageError(`rlhf generate: --prompt is required\n${MODEL_USAGE}`);
  const maxNew = num(args, "max-new-tokens", 64, true);
  const temperature = num(args, "temperature", 1);
  if (temperature < 0) throw new UsageError(`--temperature must be >= 0 (0 is greedy), got ${temperature}`);
  const topK = num(args, "top-k", 0, true);
  const topP = num(args, "top-p", 1);
  const seed = num(args, "seed", 0, true);
  const { model, lm, tok } = await loadModel(dir);
  try {
    // An empty prompt starts from EOS, GPT-2's document separator.
    const promptTokens = prompt === "" ? [tok.eosId] : tok.encode(prompt);
    const room = lm.config.nPositions - promptTokens.length;
    if (room < 1) throw new UsageError(`the prompt has ${promptTokens.length} tokens; the model takes at most ${lm.config.nPositions - 1} before generating`);
    const [g] = model.generate(lm, [promptTokens], {
      maxNewTokens: Math.min(maxNew, room),
      // Temperature 0 is greedy: top-k 1 at temperature 1, as the evaluation samples.
      temperature: temperature === 0 ? 1 : temperature,
      topK: temperature === 0 ? 1 : topK,
      topP,
      seed,
      eosId: tok.eosId,
      useCache: !args.flags.has("no-cache"),
    });
    print(
      JSON.stringify({
        prompt,
        promptTokens,
        tokens: [...g.tokens],
        logprobs: [...g.logProbs],
        text: tok.decode(g.tokens),
        finishReason: g.finishReason,
        tokenizer: tok.name,
      }),
    );
  } finally {
    lm.dispose();
  }
}

/** `rlhf logprobs`. */
export async function logprobs(args: ParsedArgs, print: Print = (l) => console.log(l)): Promise<void> {
  allowFlags(args, ["checkpoint", "text", "tokens", "temperature"], "rlhf logprobs");
  noPositional(args, "rlhf logprobs");
  const dir = required(args, "checkpoint", "rlhf logprobs");
  const text = flagString(args, "text");
  const list = flagString(args, "tokens");
  if ((text === undefined) === (list === undefined)) throw new UsageError(`rlhf logprobs: give exactly one of --text and --tokens\n${MODEL_USAGE}`);
  let ids: number[] | undefined;
  if (list !== undefined) {
    ids = list.split(",").map((s) => {
      const n = Number(s.trim());
      if (s.trim() === "" || !Number.isInteger(n) || n < 0) throw new UsageError(`--tokens must be comma-separated non-negative integers, got ${JSON.stringify(list)}`);
      return n;
    });
  }
  const temperature = num(args, "temperature", 1);
  if (temperature <= 0) throw new UsageError(`rlhf logprobs: --temperature must be > 0, got ${temperature}`);
  // Only text needs the tokenizer: token ids go to a checkpoint of any vocabulary size.
  const { lm, tok } = ids ? { ...(await loadWeights(dir)), tok: undefined } : await loadModel(dir);
  try {
    const tokens = ids ?? tok?.encode(text as string) ?? [];
    if (tokens.length < 1) throw new UsageError("rlhf logprobs: the text has no tokens");
    const { vocabSize, nPositions } = lm.config;
    const bad = tokens.find((id) => id >= vocabSize);
    if (bad !== undefined) throw new UsageError(`--tokens: id ${bad} is out of the model's vocabulary (0..${vocabSize - 1})`);
    if (tokens.length > nPositions) throw new UsageError(`rlhf logprobs: ${tokens.length} tokens; the model takes at most ${nPositions} (nPositions)`);
    const [lp] = lm.tokenLogProbs({ tokens: Int32Array.from(tokens), lengths: [tokens.length] }, temperature);
    print(JSON.stringify({ tokens, logprobs: [...lp], ...(tok ? { tokenizer: tok.name } : {}) }));
  } finally {
    lm.dispose();
  }
}

/** `rlhf init`. */
export async function init(args: ParsedArgs, print: Print = (l) => console.log(l)): Promise<void> {
  allowFlags(args, ["size", "out", "seed", "tokenizer"], "rlhf init");
  noPositional(args, "rlhf init");
  const size = required(args, "size", "rlhf init");
  const out = required(args, "out", "rlhf init");
  const seed = num(args, "seed", 0, true);
  const model = await import("@rlhf/model");
  if (!Object.prototype.hasOwnProperty.call(model.GPT2_PRESETS, size)) {
    throw new UsageError(`rlhf init: unknown --size ${JSON.stringify(size)}; known: ${Object.keys(model.GPT2_PRESETS).join(", ")}`);
  }
  const tokName = flagString(args, "tokenizer") ?? (size === "tiny" ? "byte" : "gpt2");
  if (tokName !== "byte" && tokName !== "bpe" && tokName !== "gpt2") throw new UsageError(`rlhf init: --tokenizer must be byte, bpe or gpt2, got ${JSON.stringify(tokName)}`);
  const tok = model.getTokenizer(tokName);
  const config = model.presetConfig(size);
  const needed = tok.name === "gpt2" ? tok.eosId + 1 : tok.vocabSize;
  if (config.vocabSize < needed) throw new UsageError(`rlhf init: the ${size} preset's vocabulary (${config.vocabSize}) is too small for the ${tok.name} tokenizer`);
  const { initBackend } = await import("@rlhf/compute");
  await initBackend();
  const lm = model.GPT2.random(config, seed, { trainable: false });
  try {
    await model.saveCheckpoint(lm, out, { ...model.tokenizerConfig(tok), rlhf_init: { preset: size, seed } });
  } finally {
    lm.dispose();
  }
  print(JSON.stringify({ checkpoint: out, size, seed, tokenizer: tok.name, parameters: model.gpt2ParameterCount(config) }));
}
