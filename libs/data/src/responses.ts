/**
 * Synthetic model responses of varied quality for a task: the gold answer and mutations of it
 * (items dropped, wrong words from the sentence, invented words, blocklisted words, wrong numbers,
 * wrong order). They fill the built-in ranking data and calibrate the labelers' noise.
 */
import { InvalidArgumentError } from "@rlhf/errors";
import { Rng } from "./rng";
import { DEFAULT_BLOCKLIST, type InstructionTask, renderAnswer } from "./tasks";
import { canonicalResponse, normalizeWord, wordsOf } from "./words";

/**
 * Words never in a task sentence's gold answer by construction, used as invented content
 * (those that happen to be in the source sentence are skipped).
 */
export const DISTRACTOR_WORDS: readonly string[] = [
  "banana", "purple", "quickly", "mountain", "seven", "river", "happy", "computer", "walked", "Paris",
  "elephant", "yesterday", "guitar", "silver", "ocean", "dancing", "window", "Tokyo", "pencil", "bright",
];

/** Options of {@link simulateResponses}. */
export interface SimulateOptions {
  /** Words used for harmful mutations (default {@link DEFAULT_BLOCKLIST}). */
  blocklist?: readonly string[];
  /** Probability that the gold answer is among the K responses (default 0.5). */
  goldRate?: number;
}

function withoutSource(words: readonly string[], task: InstructionTask): string[] {
  const src = new Set(wordsOf(task.source));
  return words.filter((w) => !src.has(normalizeWord(w)));
}

/** Every mutation of the gold answer this simulator knows, most of them random. */
function mutations(task: InstructionTask, rng: Rng, blocklist: readonly string[]): string[] {
  const gold = task.gold;
  const distract = withoutSource(DISTRACTOR_WORDS, task);
  const bad = rng.pick(blocklist.length ? blocklist : ["idiot"]);
  const invented = rng.pick(distract.length ? distract : ["zzyzx"]);
  const srcWords = task.source.split(/\s+/).map((w) => w.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "")).filter((w) => w);
  const srcWord = rng.pick(srcWords);
  const answer = renderAnswer(gold);
  const invented2 = rng.pick(distract.length ? distract : ["zzyzx"]);
  const srcWord2 = rng.pick(srcWords);
  const out: string[] = [
    "none",
    `${answer} ${bad}`,
    `${bad}`,
    `${answer}, ${invented}`,
    invented,
    srcWord,
    task.source,
    `${answer}.`,
    `The answer is ${answer}`,
    `${invented}, ${invented2}`,
    `${srcWord}, ${srcWord2}`,
  ];
  switch (gold.kind) {
    case "list": {
      const items = [...gold.items];
      if (items.length > 1) {
        const drop = rng.int(items.length);
        out.push(items.filter((_, i) => i !== drop).join(", "));
        out.push(rng.shuffle([...items]).join(", "));
        out.push(items.slice(0, 1).join(", "));
      }
      out.push([...items, srcWord].join(", "));
      const swap = [...items];
      swap[rng.int(swap.length)] = invented;
      out.push(swap.join(", "));
      out.push([...items, bad].join(", "));
      break;
    }
    case "count": {
      const n = gold.value;
      for (const d of [1, 2, 3]) out.push(String(n + (rng.uniform() < 0.5 ? -d : d)));
      out.push(String(n * 2), String(rng.int(30) + 1), `${n} ${invented}`);
      break;
    }
    case "sequence": {
      const w = [...gold.words];
      out.push([...w].reverse().join(" "));
      if (w.length > 2) {
        const i = rng.int(w.length - 1);
        const s = [...w];
        [s[i], s[i + 1]] = [s[i + 1], s[i]];
        out.push(s.join(" "));
        out.push(w.filter((_, j) => j !== rng.int(w.length)).join(" "));
        out.push(w.slice(0, Math.ceil(w.length / 2)).join(" "));
      }
      const inv = [...w];
      inv.splice(rng.int(inv.length + 1), 0, invented);
      out.push(inv.join(" "));
      out.push(rng.shuffle([...w]).join(" "));
      break;
    }
    case "word": {
      const others = srcWords.filter((x) => normalizeWord(x) !== normalizeWord(gold.word));
      if (others.length) out.push(rng.pick(others), `${gold.word} ${rng.pick(others)}`);
      out.push(`${gold.word} ${invented}`, `${gold.word}s`);
      break;
    }
  }
  return out;
}

/**
 * K distinct responses (by {@link canonicalResponse}) to a task, deterministic in `rng`: the gold
 * answer with probability `goldRate`, the rest drawn from mutations of it. K up to 9 (the paper's
 * largest) always works for the built-in tasks; throws when fewer than K distinct responses can
 * be made.
 */
export function simulateResponses(task: InstructionTask, k: number, rng: Rng, opts: SimulateOptions = {}): string[] {
  if (!Number.isInteger(k) || k < 1) throw new InvalidArgumentError("k", `must be a positive integer, got ${k}`);
  const goldRate = opts.goldRate ?? 0.5;
  const pool = mutations(task, rng, opts.blocklist ?? DEFAULT_BLOCKLIST).map((r) => " " + canonicalResponse(r));
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (r: string) => {
    const key = canonicalResponse(r);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(r);
    }
  };
  // Gold answers keep their exact completion, leading space included.
  if (rng.uniform() < goldRate) add(task.completion);
  else seen.add(canonicalResponse(task.completion));
  for (const r of rng.shuffle(pool)) {
    if (out.length >= k) break;
    add(r);
  }
  if (out.length < k) throw new InvalidArgumentError("k", `only ${out.length} distinct responses can be made for task ${task.id}, asked for ${k}`);
  return out;
}
