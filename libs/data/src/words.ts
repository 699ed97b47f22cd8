/**
 * Word normalisation shared by the gold answers, the scorers and the labelers, so that "in the
 * source" means one thing everywhere.
 */

/**
 * Lower-cases and keeps letters and digits only: `Atlanta's` -> `atlantas`, `term-end` ->
 * `termend`, `"Only` -> `only`, `--` -> `` (not a word).
 */
export function normalizeWord(word: string): string {
  return word.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");
}

/** The normalised words of a text, split on whitespace and commas; empty ones dropped. */
export function wordsOf(text: string): string[] {
  const out: string[] = [];
  for (const piece of text.split(/[\s,]+/)) {
    const w = normalizeWord(piece);
    if (w) out.push(w);
  }
  return out;
}

/** Trims and collapses runs of whitespace: two responses equal under this are "identical". */
export function canonicalResponse(text: string): string {
  return text.trim().replace(/\s+/g, " ");
}
