/**
 * `rlhf data`: writes the built-in datasets in the user-facing formats, and checks a user's data
 * file line by line.
 */
import { existsSync, statSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { DATA_KINDS, type DataKind, type DatasetSizes, checkDataFile, exportBuiltinDatasets, formatIssue } from "@rlhf/data";
import { type ParsedArgs, UsageError, allowFlags, flagString } from "../args";

export const DATA_USAGE = `rlhf data export <dir> [--seed N] [--sft N] [--rm N] [--ppo N] [--eval N] [--k K]
  Writes the built-in datasets to <dir>: sft.jsonl, rankings.jsonl, pairs.jsonl,
  ppo-prompts.jsonl, eval-prompts.jsonl, pretrain-train.txt, pretrain-valid.txt, manifest.json,
  README.md. Same options, same bytes.
  --seed N            seed of the splits, responses and labelers (default 0)
  --sft/--rm/--ppo/--eval N   prompts per split (defaults 2000, 2000, 2000, 500)
  --k K               responses per ranking (default 4)

rlhf data bpe [--vocab-size N] [--out FILE]
  Learns the byte-level BPE of the \`bpe\` tokenizer from the pretraining split of the Brown corpus
  and writes its merges as JSON (default: print their count, the characters per token on the
  validation split, and the first and last merges). The built-in vocabulary is this command's
  output at --vocab-size 2048 (libs/model/src/vocab/brown-bpe-2048.json).

rlhf data learnability [options]   see rlhf data learnability --help

rlhf data check <file> [--kind ${DATA_KINDS.join("|")}] [--max-line-bytes N]
  Validates a data file and prints each problem as file:line: field: message, then a summary.
  Exits 1 if there are errors. Without --kind, .txt files are text and other files take the
  kind of their first JSON line (prompt+completion: sft; responses+ranking: rankings;
  chosen+rejected: pairs; prompt alone: prompts).`;

function intFlag(args: ParsedArgs, name: string, min: number): number | undefined {
  const raw = flagString(args, name);
  if (raw === undefined) {
    if (args.flags.has(name)) throw new UsageError(`--${name} needs a value`);
    return undefined;
  }
  if (!/^\d+$/.test(raw) || Number(raw) < min || !Number.isSafeInteger(Number(raw))) throw new UsageError(`--${name} must be an integer >= ${min}, got "${raw}"`);
  return Number(raw);
}

/**
 * Runs `rlhf data <export|check> ...`. `print` receives each output line (default console.log);
 * a check that finds errors sets process.exitCode = 1.
 */
export async function data(args: ParsedArgs, print: (line: string) => void = console.log): Promise<void> {
  const sub = args.positional[1];
  if (sub === "export") return exportCommand(args, print);
  if (sub === "check") return checkCommand(args, print);
  if (sub === "bpe") return bpeCommand(args, print);
  if (sub === "learnability") {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { learnability } = require("./learnability") as typeof import("./learnability");
    await learnability(args, print);
    return;
  }
  throw new UsageError(sub ? `unknown data command "${sub}"\n${DATA_USAGE}` : `rlhf data needs a command: export or check\n${DATA_USAGE}`);
}

async function exportCommand(args: ParsedArgs, print: (line: string) => void): Promise<void> {
  allowFlags(args, ["seed", "sft", "rm", "ppo", "eval", "k"], "rlhf data export");
  const dir = args.positional[2];
  if (!dir) throw new UsageError(`rlhf data export needs a folder\n${DATA_USAGE}`);
  if (args.positional.length > 3) throw new UsageError(`rlhf data export takes one folder, got: ${args.positional.slice(2).join(" ")}`);
  const out = resolve(dir);
  if (existsSync(out) && !statSync(out).isDirectory()) throw new UsageError(`${out} exists and is not a folder`);
  const sizes: Partial<DatasetSizes> = {};
  for (const split of ["sft", "rm", "ppo", "eval"] as const) {
    const n = intFlag(args, split, 0);
    if (n !== undefined) sizes[split] = n;
  }
  const started = Date.now();
  const m = exportBuiltinDatasets(out, { seed: intFlag(args, "seed", 0) ?? 0, sizes, k: intFlag(args, "k", 2) });
  for (const [name, f] of Object.entries(m.files)) print(`  ${name.padEnd(20)} ${String(f.records).padStart(6)} ${f.kind === "text" ? "documents" : "records"} (${f.kind})`);
  print(
    `wrote ${out} in ${((Date.now() - started) / 1000).toFixed(1)} s (seed ${m.seed}, K = ${m.k}, ${m.labelers.count} labelers at ${m.labelers.agreement} agreement, noise std ${m.labelers.noiseStd.toFixed(4)})`,
  );
}

async function bpeCommand(args: ParsedArgs, print: (line: string) => void): Promise<void> {
  allowFlags(args, ["vocab-size", "out"], "rlhf data bpe");
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { trainBpe, BpeCodec } = require("@rlhf/model") as typeof import("@rlhf/model");
  const { loadPretrainCorpus } = require("@rlhf/data") as typeof import("@rlhf/data");
  /* eslint-enable @typescript-eslint/no-require-imports */
  const size = intFlag(args, "vocab-size", 259) ?? 2048;
  const corpus = loadPretrainCorpus();
  const started = Date.now();
  const merges = trainBpe(corpus.train.map((d) => d.text), size);
  const codec = new BpeCodec(merges);
  let chars = 0;
  let tokens = 0;
  for (const d of corpus.valid) {
    chars += d.text.length;
    tokens += codec.encode(d.text).length;
  }
  print(`learned ${merges.length} merges (vocabulary ${codec.vocabSize}) from ${corpus.train.length} documents in ${((Date.now() - started) / 1000).toFixed(1)} s; ${(chars / tokens).toFixed(2)} characters per token on the validation split`);
  const show = (ids: number[]) => ids.map((i) => JSON.stringify(codec.tokenText(i))).join(" ");
  print(`first merges: ${show(merges.slice(0, 12).map((_, i) => 258 + i))}`);
  print(`last merges:  ${show(merges.slice(-12).map((_, i) => codec.vocabSize - 12 + i))}`);
  const out = flagString(args, "out");
  if (out !== undefined) {
    writeFileSync(resolve(out), JSON.stringify(merges) + "\n");
    print(`wrote ${resolve(out)}`);
  }
}

async function checkCommand(args: ParsedArgs, print: (line: string) => void): Promise<void> {
  allowFlags(args, ["kind", "max-line-bytes"], "rlhf data check");
  const file = args.positional[2];
  if (!file) throw new UsageError(`rlhf data check needs a file\n${DATA_USAGE}`);
  if (args.positional.length > 3) throw new UsageError(`rlhf data check takes one file, got: ${args.positional.slice(2).join(" ")}`);
  const kindRaw = flagString(args, "kind");
  if (args.flags.has("kind") && kindRaw === undefined) throw new UsageError("--kind needs a value");
  if (kindRaw !== undefined && !(DATA_KINDS as readonly string[]).includes(kindRaw)) throw new UsageError(`--kind must be one of ${DATA_KINDS.join(", ")}, got "${kindRaw}"`);
  if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
  if (!statSync(file).isFile()) throw new UsageError(`${file}: not a file`);
  const r = checkDataFile(file, { kind: kindRaw as DataKind | undefined, maxLineBytes: intFlag(args, "max-line-bytes", 1) });
  for (const e of r.errors) print(formatIssue(e));
  for (const w of r.warnings) print(`${formatIssue(w)} (warning)`);
  const what = r.kind === "text" ? "documents" : "records";
  const kind = r.kind === undefined ? "unknown kind" : `${r.kind}${r.inferred ? " (inferred)" : ""}`;
  if (r.errors.length === 0) {
    print(`${file}: ok: ${kind}, ${r.records} ${what} in ${r.lines} lines`);
    return;
  }
  print(`${file}: ${r.errors.length} error${r.errors.length === 1 ? "" : "s"} on ${r.skipped} bad line${r.skipped === 1 ? "" : "s"}; ${kind}, ${r.records} valid ${what} in ${r.lines} lines`);
  process.exitCode = 1;
}
