/**
 * Short tasks: instructions over a few words taken from a Brown sentence (a window of 2 to 8 of its
 * words), with answers of one to four words or a number. They keep the paper's three axes (a
 * helpful answer matches the gold one, an honest one says only words of its input, a harmless one
 * none of the blocklist) but ask for what a small model can learn in minutes and get partly
 * right: counting, picking, reordering, filtering a few items, an answer of a given length. The
 * Brown-sentence families of ./tasks.ts (lists over whole sentences) stay for larger models.
 *
 * Measured with `rlhf data learnability` (docs/data.md): which families a model of a given size learns
 * within a budget of SFT.
 */
import type { BrownSentence } from "./brown";
import { NOUN_TAGS, tagInfo } from "./brown";
import { Rng } from "./rng";
import type { GoldAnswer } from "./tasks";
import { normalizeWord } from "./words";

/** The short families. */
export type ShortFamily = "count_words" | "last_word" | "reverse_words" | "pick_nouns" | "longest_word" | "repeat_word" | "sort_words";

/** Every short family, in a fixed order. */
export const SHORT_FAMILIES: readonly ShortFamily[] = ["count_words", "last_word", "reverse_words", "pick_nouns", "longest_word", "repeat_word", "sort_words"];

/** The instruction of each short family: `<instruction>: <words>\nAnswer:`. */
export const SHORT_INSTRUCTIONS: Readonly<Record<ShortFamily, string>> = {
  count_words: "Count the words",
  last_word: "Say the last word",
  reverse_words: "Reverse the words",
  pick_nouns: "Pick the nouns",
  longest_word: "Pick the longest word",
  repeat_word: "Repeat the word three times",
  sort_words: "Sort the words",
};

/** How many words each family's input has (inclusive range). */
const WINDOW: Readonly<Record<ShortFamily, readonly [number, number]>> = {
  count_words: [2, 8],
  last_word: [3, 6],
  reverse_words: [2, 4],
  pick_nouns: [3, 6],
  longest_word: [3, 5],
  repeat_word: [1, 1],
  sort_words: [2, 3],
};

/** A word of a short task: plain letters (an apostrophe inside allowed), 1 to 12 of them. */
const PLAIN = /^[A-Za-z]+(?:'[a-z]+)?$/;

interface Word {
  text: string;
  noun: boolean;
}

/** The sentence's words that may appear in short tasks (punctuation and numbers dropped). */
function plainWords(s: BrownSentence): Word[] {
  const out: Word[] = [];
  for (const t of s.tokens) {
    if (!PLAIN.test(t.word) || t.word.length > 12) continue;
    const info = tagInfo(t.tag);
    out.push({ text: t.word, noun: !info.foreign && info.parts.length === 1 && NOUN_TAGS.has(info.parts[0]) });
  }
  return out;
}

/** The gold answer of a short family for its input words, or undefined when the words do not suit it. */
export function shortGold(family: ShortFamily, words: readonly Word[]): GoldAnswer | undefined {
  const texts = words.map((w) => w.text);
  switch (family) {
    case "count_words":
      return { kind: "count", value: texts.length };
    case "last_word":
      return { kind: "word", word: texts[texts.length - 1] };
    case "reverse_words":
      return { kind: "sequence", words: [...texts].reverse() };
    case "pick_nouns": {
      const seen = new Set<string>();
      const items: string[] = [];
      for (const w of words) {
        const k = normalizeWord(w.text);
        if (w.noun && !seen.has(k)) {
          seen.add(k);
          items.push(w.text);
        }
      }
      return items.length > 0 && items.length < texts.length ? { kind: "list", items } : undefined;
    }
    case "longest_word": {
      const lens = texts.map((t) => normalizeWord(t).length);
      const max = Math.max(...lens);
      return lens.filter((l) => l === max).length === 1 ? { kind: "word", word: texts[lens.indexOf(max)] } : undefined;
    }
    case "repeat_word":
      return { kind: "sequence", words: [texts[0], texts[0], texts[0]] };
    case "sort_words": {
      const keys = texts.map((t) => t.toLowerCase());
      if (new Set(keys).size !== keys.length) return undefined;
      return { kind: "sequence", words: [...texts].sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1)) };
    }
  }
}

/**
 * The input words of `family` taken from sentence `s`: a window of the family's length at a
 * position drawn from (family, sentence id), so a sentence always gives the same task. Undefined
 * when no window suits the family (too few words, no noun...).
 */
export function shortWindow(family: ShortFamily, s: BrownSentence, seed = 0): { words: Word[]; gold: GoldAnswer } | undefined {
  const words = plainWords(s);
  const [lo, hi] = WINDOW[family];
  if (words.length < lo) return undefined;
  const rng = new Rng(seed, "short-window", family, s.id);
  const n = lo + rng.int(Math.min(hi, words.length) - lo + 1);
  // Try a few positions; the first window whose words suit the family wins.
  for (let tries = 0; tries < 4; tries++) {
    const start = rng.int(words.length - n + 1);
    const w = words.slice(start, start + n);
    const gold = shortGold(family, w);
    if (gold) return { words: w, gold };
  }
  return undefined;
}
