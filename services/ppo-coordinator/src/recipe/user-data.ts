/**
 * A run's own data files: SFT demonstrations, PPO and evaluation prompts (`data.source` =
 * "files"), comparisons (`rankings.source` = "file") and pretraining text (`data.files.pretrain`).
 * StartRun reads and checks every one of them before anything is created, so a bad line fails
 * the call at once with `<config key>: <file>:<line>: <field>: <what>`; the run folder keeps
 * their SHA-256 (`data-files.json`) and a resume refuses files that changed since.
 *
 * Without gold answers (the simulated labelers judge against the built-in tasks' answers) the
 * rankings must come from a file and the labeler-judged metrics do not apply (the report says
 * why). Pairs are comparisons of K = 2.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  DataFileError,
  type DataIssue,
  type PromptRecord,
  type RankingRecord,
  type SftRecord,
  formatIssue,
  listTextFiles,
  loadTextCorpus,
  readComparisonsFile,
  readDataFileBytes,
  readJsonlFile,
} from "@rlhf/data";
import { FailedPreconditionError, InvalidArgumentError, writeJsonAtomic } from "@rlhf/errors";
import type { RunConfig } from "@rlhf/run-config";
import type { RecipeContext } from "./context";
import type { DataFileRecord, TextCorpus } from "./records";

/** Most responses per comparison the reward model takes (its ComparisonGroup limit). */
export const MAX_RANKING_K = 16;

/** What a tokenizer must offer here. */
export interface Encoder {
  encode(text: string): number[];
  readonly eosId: number;
}

/** The run's own data, read and checked. Parts the config does not ask for are absent. */
export interface UserData {
  /** SFT demonstrations (`data.source` = "files"). */
  sft?: SftRecord[];
  /** PPO prompts. */
  ppoPrompts?: PromptRecord[];
  /** Held-out evaluation prompts: the first `evaluation.prompts`. */
  evalPrompts?: PromptRecord[];
  /** Comparisons (`rankings.source` = "file"): the first `rankings.prompts` records, pairs as K = 2. */
  rankings?: { kind: "rankings" | "pairs"; groups: RankingRecord[] };
  /** The pretraining text of `data.files.pretrain`, as pretrain-mix reads it. */
  textCorpus?: TextCorpus;
  /** Every file read, in config order. */
  files: DataFileRecord[];
  /** Ignored fields, one line each (`file:line: field: ...`). */
  warnings: string[];
}

/** Runs `fn`; a DataFileError becomes an InvalidArgumentError on the config key: `key: file:line: field: message`. */
function underKey<T>(key: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DataFileError) {
      const more = e.issues.length > 1 ? ` (and ${e.issues.length - 1} more on this line)` : "";
      throw new InvalidArgumentError(key, formatIssue(withoutContents(e.issues[0])) + more);
    }
    throw e;
  }
}

/**
 * The issue without the file's bytes: JSON.parse's message quotes the start of the line
 * (`Unexpected token 'r', "root:x:0:0:"... is not valid JSON`), and an error about a file must
 * never echo its contents (it goes back to the client and into the log). Only the position stays.
 */
function withoutContents(i: DataIssue): DataIssue {
  if (i.field !== "json") return i;
  const at = /position (\d+)/.exec(i.message);
  return { ...i, message: `invalid JSON${at ? ` at position ${at[1]}` : ""}` };
}

function bad(key: string, file: string, line: number, field: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError(key, formatIssue({ file, line, field, message }));
}

function record(key: string, path: string): DataFileRecord {
  const bytes = readDataFileBytes(path, path);
  return { key, path, bytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") };
}

/**
 * Indices of the comparisons held out for the reward model's accuracy when they come from a
 * file: record i of n when floor((i+1)f) > floor(i f), i.e. every (1/f)-th, so that a file sorted
 * by topic is sampled evenly (floor(n f) records in all).
 */
export function heldOutComparisons<T>(groups: readonly T[], fraction: number): { validation: T[]; train: T[] } {
  const validation: T[] = [];
  const train: T[] = [];
  // The 1e-9 keeps products such as 20 * 0.05 from landing just below an integer.
  const bucket = (i: number) => Math.floor(i * fraction + 1e-9);
  groups.forEach((g, i) => (bucket(i + 1) > bucket(i) ? validation : train).push(g));
  return { validation, train };
}

/**
 * Reads and checks every file the config names (none with the built-in data and simulated
 * rankings). Throws InvalidArgumentError on the config key with `file:line: field: message`
 * for the first problem: a bad line, an empty file, a prompt over `data.max_prompt_tokens`, a
 * sequence over `model.n_positions`, K over 16, too few comparisons for
 * `reward_model.validation_fraction`, or too little pretraining text for one window.
 */
export function loadUserData(cfg: RunConfig, tok: Encoder): UserData {
  const out: UserData = { files: [], warnings: [] };
  const maxPrompt = cfg.data.max_prompt_tokens;
  const nPositions = cfg.model.n_positions;
  const warn = (w: DataIssue[]) => out.warnings.push(...w.map(formatIssue));
  const promptTokens = (key: string, file: string, line: number, prompt: string): number => {
    const n = tok.encode(prompt).length;
    if (n > maxPrompt) throw bad(key, file, line, "prompt", `${n} tokens, over data.max_prompt_tokens (${maxPrompt}): shorten it, or raise data.max_prompt_tokens (with room for max_new_tokens in model.n_positions)`);
    return n;
  };
  const prompts = (key: string, path: string): PromptRecord[] => {
    const r = underKey(key, () => readJsonlFile(path, "prompts"));
    warn(r.warnings);
    r.records.forEach((p, i) => promptTokens(key, path, r.recordLines[i], p.prompt));
    out.files.push(record(key, path));
    return r.records;
  };

  const f = cfg.data.files;
  if (cfg.data.source === "files") {
    const sftPath = f.sft as string;
    const r = underKey("data.files.sft", () => readJsonlFile(sftPath, "sft"));
    warn(r.warnings);
    r.records.forEach((d, i) => {
      const line = r.recordLines[i];
      const total = promptTokens("data.files.sft", sftPath, line, d.prompt) + tok.encode(d.completion).length + 1;
      if (total > nPositions) throw bad("data.files.sft", sftPath, line, "completion", `prompt + completion + EOS are ${total} tokens, over model.n_positions (${nPositions})`);
    });
    out.files.push(record("data.files.sft", sftPath));
    out.sft = r.records;
    out.ppoPrompts = prompts("data.files.prompts", f.prompts as string);
    out.evalPrompts = prompts("data.files.eval_prompts", f.eval_prompts as string).slice(0, cfg.evaluation.prompts);
  }

  if (cfg.rankings.source === "file") {
    const key = "data.files.rankings";
    const path = f.rankings as string;
    const c = underKey(key, () => readComparisonsFile(path));
    warn(c.warnings);
    const groups = c.records.slice(0, cfg.rankings.prompts);
    groups.forEach((g, i) => {
      const line = c.recordLines[i];
      if (g.responses.length > MAX_RANKING_K) throw bad(key, path, line, "responses", `K = ${g.responses.length}, over the reward model's limit of ${MAX_RANKING_K} responses per prompt`);
      const p = tok.encode(g.prompt).length;
      g.responses.forEach((resp, j) => {
        const total = p + tok.encode(resp).length + 1;
        const field = c.kind === "pairs" ? (j === 0 ? "chosen" : "rejected") : `responses[${j}]`;
        if (total > nPositions) throw bad(key, path, line, field, `prompt + response + EOS are ${total} tokens, over model.n_positions (${nPositions})`);
      });
    });
    const held = heldOutComparisons(groups, cfg.reward_model.validation_fraction).validation.length;
    if (held < 1 || held >= groups.length) {
      throw new InvalidArgumentError(
        "reward_model.validation_fraction",
        `${cfg.reward_model.validation_fraction} of the ${groups.length} comparisons used from ${path} holds out ${held}; needs at least 1 held out and 1 for training (add comparisons, or change the fraction)`,
      );
    }
    out.files.push(record(key, path));
    out.rankings = { kind: c.kind, groups };
  }

  if (f.pretrain !== null) {
    const key = "data.files.pretrain";
    const files = underKey(key, () => listTextFiles(f.pretrain as string));
    const fraction = cfg.data.pretrain_validation_fraction;
    const corpus = underKey(key, () => loadTextCorpus(files, fraction));
    // Tokens as pretrain-mix counts them: each document's ids, then EOS.
    const count = (docs: readonly { text: string }[]) => docs.reduce((a, d) => a + tok.encode(d.text).length + 1, 0);
    const trainTokens = count(corpus.train);
    const validationTokens = count(corpus.valid);
    const pretrainWindow = cfg.pretrain.enabled && cfg.model.base_checkpoint === null ? cfg.pretrain.sequence_length : 0;
    const trainWindow = Math.max(pretrainWindow, cfg.ppo.ptx.sequence_length);
    if (trainTokens < trainWindow) {
      throw new InvalidArgumentError(key, `${f.pretrain}: the training split (${corpus.train.length} documents) holds ${trainTokens} tokens, fewer than one window of ${trainWindow} (pretrain.sequence_length / ppo.ptx.sequence_length): add text`);
    }
    const validationWindow = Math.min(cfg.ppo.ptx.sequence_length, nPositions);
    if (validationTokens < validationWindow) {
      throw new InvalidArgumentError(
        key,
        `${f.pretrain}: the validation split (${corpus.valid.length} of ${corpus.train.length + corpus.valid.length} documents at data.pretrain_validation_fraction ${fraction}) holds ${validationTokens} tokens, fewer than one window of ${validationWindow} (ppo.ptx.sequence_length): add text, or raise the fraction`,
      );
    }
    for (const p of files) out.files.push(record(key, p));
    out.textCorpus = { files, validationFraction: fraction, contentDigest: corpus.digest };
  }
  return out;
}

/** Where a run folder records its data files. */
export const DATA_FILES_NAME = "data-files.json";

/** Writes `data-files.json` into a run folder (atomically). */
export async function writeDataFiles(runDir: string, files: readonly DataFileRecord[]): Promise<void> {
  await writeJsonAtomic(join(runDir, DATA_FILES_NAME), files);
}

/**
 * Checks that the data files read now are those the run started with (`data-files.json`,
 * written at StartRun): FailedPreconditionError naming the first one that changed. A folder
 * without the record (a run from before it existed) is left unchecked.
 */
export async function checkDataUnchanged(runDir: string, now: readonly DataFileRecord[]): Promise<void> {
  const path = join(runDir, DATA_FILES_NAME);
  if (!existsSync(path)) return;
  const then = JSON.parse(await readFile(path, "utf8")) as DataFileRecord[];
  const key = (r: DataFileRecord) => `${r.key} ${r.path}`;
  const current = new Map(now.map((r) => [key(r), r]));
  for (const t of then) {
    const c = current.get(key(t));
    if (!c) throw new FailedPreconditionError(`${t.key}: ${t.path} was read when the run started and is not part of it now: restore the data as it was to resume, or start a new run`);
    if (c.sha256 !== t.sha256) throw new FailedPreconditionError(`${t.key}: ${t.path} changed since the run started (SHA-256 ${t.sha256.slice(0, 12)}…, now ${c.sha256.slice(0, 12)}…): restore it to resume exactly, or start a new run`);
  }
  const extra = now.find((r) => !then.some((t) => key(t) === key(r)));
  if (extra) throw new FailedPreconditionError(`${extra.key}: ${extra.path} was not part of the run when it started: restore the data as it was to resume, or start a new run`);
}

/**
 * Before a run executes (first start or resume): its data files are the ones it started with
 * (`data-files.json`), and pretrain-mix tokenises its corpus with the run's tokenizer (a byte
 * corpus fed to a GPT-2 policy would not fail by itself). FailedPreconditionError otherwise.
 */
export async function checkRunInputs(ctx: RecipeContext, files: readonly DataFileRecord[]): Promise<void> {
  await checkDataUnchanged(ctx.runDir, files);
  const tokenizer = await ctx.services.pretrainMix.tokenizer();
  if (tokenizer !== ctx.cfg.model.tokenizer) {
    throw new FailedPreconditionError(`pretrain-mix tokenises with "${tokenizer}" (its TOKENIZER) but model.tokenizer is "${ctx.cfg.model.tokenizer}": start pretrain-mix with TOKENIZER=${ctx.cfg.model.tokenizer}`);
  }
}
