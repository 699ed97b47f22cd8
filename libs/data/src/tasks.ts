/**
 * Instruction tasks with exact gold answers computed from the Brown tags, rendered as prompts,
 * and split like the paper into SFT demonstrations, reward-model prompts, PPO prompts and
 * held-out evaluation prompts over disjoint sentences.
 */
import { InvalidArgumentError } from "@rlhf/errors";
import {
  ADJECTIVE_TAGS,
  type BrownCorpus,
  type BrownSentence,
  NOUN_TAGS,
  PROPER_NOUN_TAGS,
  VERB_TAGS,
  isWordToken,
  loadBrownCorpus,
  sentenceText,
  tagInfo,
} from "./brown";
import { Rng } from "./rng";
import { SHORT_FAMILIES, SHORT_INSTRUCTIONS, type ShortFamily, shortWindow } from "./short-tasks";
import { normalizeWord } from "./words";

/** The Brown-sentence families: instructions over a whole sentence (for larger models). */
export type SentenceFamily = "nouns" | "verbs" | "adjectives" | "names" | "count" | "reverse" | "longest";

/** The task families: the sentence families and the short ones (./short-tasks.ts). Each has one instruction and one answer format. */
export type TaskFamily = SentenceFamily | ShortFamily;

/** The sentence families, in a fixed order (the default mix of a run config, used round-robin). */
export const TASK_FAMILIES: readonly SentenceFamily[] = ["nouns", "verbs", "adjectives", "names", "count", "reverse", "longest"];

/** Every family: the sentence families, then the short ones. */
export const ALL_TASK_FAMILIES: readonly TaskFamily[] = [...TASK_FAMILIES, ...SHORT_FAMILIES];

/** The instruction that opens each family's prompt: `<instruction>: <sentence or words>\nAnswer:`. */
export const TASK_INSTRUCTIONS: Readonly<Record<TaskFamily, string>> = {
  nouns: "List the nouns",
  verbs: "List the verbs",
  adjectives: "List the adjectives",
  names: "List the proper names",
  count: "Count the words",
  reverse: "Reverse the word order",
  longest: "Find the longest word",
  ...SHORT_INSTRUCTIONS,
};

/** Whether a family is one of the short ones. */
export function isShortFamily(f: TaskFamily): f is ShortFamily {
  return (SHORT_FAMILIES as readonly string[]).includes(f);
}

/**
 * A gold answer. `list`: items in sentence order, duplicates (case-insensitive) removed, rendered
 * `a, b, c`; `count`: an integer; `sequence`: words rendered space-separated; `word`: one word.
 */
export type GoldAnswer =
  | { readonly kind: "list"; readonly items: readonly string[] }
  | { readonly kind: "count"; readonly value: number }
  | { readonly kind: "sequence"; readonly words: readonly string[] }
  | { readonly kind: "word"; readonly word: string };

/** One instruction with its source sentence and gold answer. */
export interface InstructionTask {
  /** `<family>:<sentence id>`, e.g. `nouns:ca01.0`. */
  readonly id: string;
  readonly family: TaskFamily;
  readonly sentenceId: string;
  /** The sentence as readable text (short families: their few words): the only "source" for honesty. */
  readonly source: string;
  /** `<instruction>: <source>\nAnswer:` */
  readonly prompt: string;
  /** The demonstration: a space, then the rendered gold answer (the model adds EOS). */
  readonly completion: string;
  readonly gold: GoldAnswer;
}

/** Renders a gold answer in its family's fixed format (no leading space). */
export function renderAnswer(gold: GoldAnswer): string {
  switch (gold.kind) {
    case "list":
      return gold.items.length ? gold.items.join(", ") : "none";
    case "count":
      return String(gold.value);
    case "sequence":
      return gold.words.join(" ");
    case "word":
      return gold.word;
  }
}

/** The prompt for a family and a source text. */
export function renderPrompt(family: TaskFamily, source: string): string {
  return `${TASK_INSTRUCTIONS[family]}: ${source}\nAnswer:`;
}

/** Words of a sentence (tokens with a letter or digit), as they appear. */
export function sentenceWords(s: BrownSentence): string[] {
  return s.tokens.filter((t) => isWordToken(t.word)).map((t) => t.word);
}

function dedupe(items: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const it of items) {
    const key = it.split(" ").map(normalizeWord).join(" ");
    if (!seen.has(key)) {
      seen.add(key);
      out.push(it);
    }
  }
  return out;
}

function tokensWithTags(s: BrownSentence, tags: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const t of s.tokens) {
    const info = tagInfo(t.tag);
    if (!info.foreign && info.parts.length === 1 && tags.has(info.parts[0])) out.push(t.word);
  }
  return out;
}

/** Proper names: maximal runs of consecutive proper-noun tokens, joined by spaces (`Durwood Pye`). */
function properNames(s: BrownSentence): string[] {
  const out: string[] = [];
  let run: string[] = [];
  for (const t of s.tokens) {
    const info = tagInfo(t.tag);
    if (!info.foreign && info.parts.length === 1 && PROPER_NOUN_TAGS.has(info.parts[0])) run.push(t.word);
    else if (run.length) {
      out.push(run.join(" "));
      run = [];
    }
  }
  if (run.length) out.push(run.join(" "));
  return out;
}

/** Most words of a `reverse` task (its answer repeats the sentence). */
export const REVERSE_MAX_WORDS = 12;

/**
 * The gold answer of `family` for sentence `s`, or undefined when the sentence does not suit it:
 * list families need at least one item, `reverse` at most {@link REVERSE_MAX_WORDS} words,
 * `longest` a unique longest word (length in letters and digits).
 */
export function goldAnswer(family: TaskFamily, s: BrownSentence): GoldAnswer | undefined {
  if (isShortFamily(family)) return shortWindow(family, s)?.gold;
  const list = (items: string[]): GoldAnswer | undefined => {
    const d = dedupe(items);
    return d.length ? { kind: "list", items: d } : undefined;
  };
  switch (family) {
    case "nouns":
      return list(tokensWithTags(s, NOUN_TAGS));
    case "verbs":
      return list(tokensWithTags(s, VERB_TAGS));
    case "adjectives":
      return list(tokensWithTags(s, ADJECTIVE_TAGS));
    case "names":
      return list(properNames(s));
    case "count":
      return { kind: "count", value: sentenceWords(s).length };
    case "reverse": {
      const w = sentenceWords(s);
      return w.length <= REVERSE_MAX_WORDS ? { kind: "sequence", words: w.reverse() } : undefined;
    }
    case "longest": {
      let best = "";
      let bestLen = 0;
      let unique = false;
      for (const w of sentenceWords(s)) {
        const n = normalizeWord(w);
        if (n.length > bestLen) {
          best = w;
          bestLen = n.length;
          unique = true;
        } else if (n.length === bestLen && n !== normalizeWord(best)) unique = false;
      }
      return unique ? { kind: "word", word: best } : undefined;
    }
  }
}

/** The task of `family` on sentence `s`, or undefined when the sentence does not suit the family. */
export function makeTask(family: TaskFamily, s: BrownSentence): InstructionTask | undefined {
  if (isShortFamily(family)) {
    const w = shortWindow(family, s);
    if (!w) return undefined;
    const source = w.words.map((x) => x.text).join(" ");
    return { id: `${family}:${s.id}`, family, sentenceId: s.id, source, prompt: renderPrompt(family, source), completion: " " + renderAnswer(w.gold), gold: w.gold };
  }
  const gold = goldAnswer(family, s);
  if (!gold) return undefined;
  const source = sentenceText(s);
  return { id: `${family}:${s.id}`, family, sentenceId: s.id, source, prompt: renderPrompt(family, source), completion: " " + renderAnswer(gold), gold };
}

/** Which sentences may become tasks. */
export interface SentenceFilter {
  /** Fewest words (default 5). */
  minWords?: number;
  /** Most words (default 20). */
  maxWords?: number;
  /** Longest readable text in characters (default 140; prompts stay under 200). */
  maxChars?: number;
  /** Sentences containing any of these words (normalised) are left out (default: none). */
  blocklist?: readonly string[];
}

const CLEAN_TOKEN = /^[A-Za-z0-9'.;:?!()&$%`-]+$/;

/**
 * Whether a sentence is clean enough for an exact task: no foreign words, headlines or
 * contractions (their tags are ambiguous for the families), plain ASCII tokens, no comma inside
 * a word (it would break the `a, b` list format), length within bounds, no blocklisted word.
 */
export function isTaskSentence(s: BrownSentence, filter: SentenceFilter = {}): boolean {
  const { minWords = 5, maxWords = 20, maxChars = 140 } = filter;
  let words = 0;
  for (const t of s.tokens) {
    const info = tagInfo(t.tag);
    if (info.foreign || info.headline || info.parts.length !== 1) return false;
    if (t.word !== "," && !CLEAN_TOKEN.test(t.word)) return false;
    if (isWordToken(t.word)) words++;
  }
  if (words < minWords || words > maxWords) return false;
  const text = sentenceText(s);
  if (text.length > maxChars) return false;
  if (filter.blocklist?.length) {
    const block = new Set(filter.blocklist.map(normalizeWord));
    for (const t of s.tokens) if (block.has(normalizeWord(t.word))) return false;
  }
  return true;
}

/** Number of prompts per split. */
export interface DatasetSizes {
  /** SFT demonstrations (prompt + gold completion). */
  sft: number;
  /** Reward-model prompts (each gets K responses to rank). */
  rm: number;
  /** PPO prompts. */
  ppo: number;
  /** Held-out evaluation prompts. */
  eval: number;
}

/**
 * Default split sizes, scaled for a 2-core machine (the paper: ~13k SFT, ~33k RM, ~31k PPO
 * prompts): sft 2000, rm 2000, ppo 2000, eval 500.
 */
export const DEFAULT_DATASET_SIZES: Readonly<DatasetSizes> = { sft: 2000, rm: 2000, ppo: 2000, eval: 500 };

/** Options of {@link buildInstructionDatasets}. */
export interface InstructionDatasetOptions {
  /** Seed of the sentence shuffle (default 0). */
  seed?: number;
  /** Prompts per split (defaults: {@link DEFAULT_DATASET_SIZES}). */
  sizes?: Partial<DatasetSizes>;
  /** Families mixed round-robin in every split (default: all, {@link TASK_FAMILIES}). */
  families?: readonly TaskFamily[];
  /** Sentence filter; its blocklist should be the labelers' (default: {@link DEFAULT_BLOCKLIST}). */
  filter?: SentenceFilter;
  /** The corpus (default: {@link loadBrownCorpus}()). */
  corpus?: BrownCorpus;
}

/** The four splits; no sentence (nor sentence text) appears in two of them. */
export interface InstructionDatasets {
  readonly seed: number;
  readonly sft: readonly InstructionTask[];
  readonly rm: readonly InstructionTask[];
  readonly ppo: readonly InstructionTask[];
  readonly eval: readonly InstructionTask[];
}

/**
 * Mild words absent from or rare in the corpus (each at most 24 times in 1.16M tokens); sentences
 * containing them are never used for tasks, so a gold answer never contains one.
 */
export const DEFAULT_BLOCKLIST: readonly string[] = [
  "idiot",
  "idiots",
  "idiotic",
  "moron",
  "morons",
  "stupid",
  "dumb",
  "jerk",
  "jerks",
  "loser",
  "crap",
  "sucks",
  "stinks",
  "dork",
  "nerd",
  "yuck",
];

/** The order splits draw sentences in: eval first, so the held-out set does not move when the others are resized. */
const SPLIT_ORDER: readonly (keyof DatasetSizes)[] = ["eval", "sft", "rm", "ppo"];

/**
 * Builds the four splits. Eligible sentences ({@link isTaskSentence}, deduplicated by text) are
 * shuffled with `seed`; each split takes its tasks in turn (eval, sft, rm, ppo), family i mod F
 * for its i-th task, from the first unused sentence in that order that suits the family (a
 * sentence skipped by one family stays available to the others). Throws InvalidArgumentError
 * when the corpus runs out.
 */
export function buildInstructionDatasets(opts: InstructionDatasetOptions = {}): InstructionDatasets {
  const seed = opts.seed ?? 0;
  const sizes: DatasetSizes = { ...DEFAULT_DATASET_SIZES, ...opts.sizes };
  for (const k of SPLIT_ORDER) {
    if (!Number.isInteger(sizes[k]) || sizes[k] < 0) throw new InvalidArgumentError(`sizes.${k}`, `must be a non-negative integer, got ${sizes[k]}`);
  }
  const families = opts.families ?? TASK_FAMILIES;
  if (families.length === 0) throw new InvalidArgumentError("families", "needs at least one family");
  for (const f of families) if (!(f in TASK_INSTRUCTIONS)) throw new InvalidArgumentError("families", `unknown family "${f}"`);
  const filter: SentenceFilter = { blocklist: DEFAULT_BLOCKLIST, ...opts.filter };
  const corpus = opts.corpus ?? loadBrownCorpus();

  const seen = new Set<string>();
  const pool: BrownSentence[] = [];
  for (const d of corpus.documents) {
    for (const s of d.sentences) {
      if (!isTaskSentence(s, filter)) continue;
      const key = sentenceText(s).toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
      pool.push(s);
    }
  }
  new Rng(seed, "task-sentences").shuffle(pool);

  // Family f takes the first unused sentence (in shuffled order) that suits it; one pointer per
  // family keeps this linear, since a pointer never needs to look back.
  const used = new Uint8Array(pool.length);
  const pointer = new Map<TaskFamily, number>();
  const take = (family: TaskFamily): InstructionTask | undefined => {
    for (let p = pointer.get(family) ?? 0; p < pool.length; p++) {
      if (used[p]) continue;
      const t = makeTask(family, pool[p]);
      if (t) {
        used[p] = 1;
        pointer.set(family, p + 1);
        return t;
      }
    }
    pointer.set(family, pool.length);
    return undefined;
  };
  const out: Record<keyof DatasetSizes, InstructionTask[]> = { eval: [], sft: [], rm: [], ppo: [] };
  for (const split of SPLIT_ORDER) {
    for (let i = 0; i < sizes[split]; i++) {
      const family = families[i % families.length];
      const t = take(family);
      if (!t) {
        throw new InvalidArgumentError(`sizes.${split}`, `the corpus has too few suitable sentences: ran out at ${split} task ${i} (family ${family}) among ${pool.length} sentences`);
      }
      out[split].push(t);
    }
  }
  return { seed, sft: out.sft, rm: out.rm, ppo: out.ppo, eval: out.eval };
}
