/**
 * A small byte-level BPE learned from a corpus (GPT-2's scheme at a size a small model can learn
 * with): ids 0..255 are the UTF-8 bytes (so any text encodes: byte fallback), 256 is EOS, 257 PAD,
 * and 258 + i is the token made by merge i. Text is first split into pieces the way GPT-2 splits it
 * (a word with its leading space, one digit, a run of punctuation, whitespace), so that a merge
 * never crosses a word boundary; digits stay single tokens, which keeps numbers easy to count
 * and compare. Each piece is then merged greedily by merge rank (the order merges were learned in).
 *
 * `trainBpe` learns the merges from texts (the most frequent adjacent pair first, ties by the
 * smaller pair of ids, so the same texts always give the same merges).
 */
import { InvalidArgumentError } from "@rlhf/errors";

/** One merge: the ids of the left and right token it joins. */
export type BpeMerge = readonly [number, number];

/** EOS and PAD of every BPE vocabulary here (the byte tokenizer's too). */
export const BPE_EOS = 256;
export const BPE_PAD = 257;
/** Id of the token made by merge 0. */
export const BPE_FIRST_MERGE = 258;

/** GPT-2's pre-tokenizer with single digits: contractions, ` word`, ` 7`, ` ?!`, whitespace. */
const PIECE = /'(?:s|t|re|ve|m|ll|d)| ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** The pre-tokenizer's pieces of a text, in order (they concatenate back to the text). */
export function bpePieces(text: string): string[] {
  return text.match(PIECE) ?? [];
}

/**
 * Checks merges read from a file or a config: pairs of existing ids, each merge joining tokens
 * made before it. `field` names the source in errors.
 */
export function validateMerges(merges: unknown, field: string): BpeMerge[] {
  if (!Array.isArray(merges)) throw new InvalidArgumentError(field, "must be an array of [left, right] id pairs");
  const out: BpeMerge[] = [];
  merges.forEach((m, i) => {
    const next = BPE_FIRST_MERGE + i;
    const ok = (id: unknown) => typeof id === "number" && Number.isInteger(id) && id >= 0 && id < next && id !== BPE_EOS && id !== BPE_PAD;
    if (!Array.isArray(m) || m.length !== 2 || !ok(m[0]) || !ok(m[1])) {
      throw new InvalidArgumentError(`${field}[${i}]`, `must be a pair of byte or earlier merge ids (< ${next}, not 256 or 257), got ${JSON.stringify(m)}`);
    }
    out.push([m[0], m[1]]);
  });
  return out;
}

/** Text <-> ids with a learned byte-level BPE. */
export class BpeCodec {
  readonly vocabSize: number;
  /** The bytes each id stands for (EOS and PAD: none). */
  private readonly bytesOf: Uint8Array[];
  /** Rank of the merge of (left, right), keyed left * 2^20 + right. */
  private readonly rank = new Map<number, number>();
  private readonly cache = new Map<string, number[]>();

  constructor(readonly merges: readonly BpeMerge[]) {
    this.vocabSize = BPE_FIRST_MERGE + merges.length;
    this.bytesOf = [];
    for (let b = 0; b < 256; b++) this.bytesOf.push(Uint8Array.of(b));
    this.bytesOf.push(new Uint8Array(0), new Uint8Array(0));
    merges.forEach(([a, b], i) => {
      const ab = new Uint8Array(this.bytesOf[a].length + this.bytesOf[b].length);
      ab.set(this.bytesOf[a]);
      ab.set(this.bytesOf[b], this.bytesOf[a].length);
      this.bytesOf.push(ab);
      this.rank.set(a * 2 ** 20 + b, i);
    });
  }

  /** Ids of one pre-tokenizer piece: its bytes, merged lowest rank first. */
  private encodePiece(piece: string): number[] {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    let ids = [...Buffer.from(piece, "utf8")];
    for (;;) {
      let best = -1;
      for (let i = 0; i + 1 < ids.length; i++) {
        const r = this.rank.get(ids[i] * 2 ** 20 + ids[i + 1]);
        if (r !== undefined && (best < 0 || r < best)) best = r;
      }
      if (best < 0) break;
      const [a, b] = this.merges[best];
      const merged: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
          merged.push(BPE_FIRST_MERGE + best);
          i++;
        } else merged.push(ids[i]);
      }
      ids = merged;
    }
    if (this.cache.size < 100_000) this.cache.set(piece, ids);
    return ids;
  }

  encode(text: string): number[] {
    const out: number[] = [];
    for (const p of bpePieces(text)) for (const id of this.encodePiece(p)) out.push(id);
    return out;
  }

  /** Text of ids (EOS and PAD dropped; ids past the vocabulary decode as U+FFFD). */
  decode(ids: ArrayLike<number>): string {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0) throw new InvalidArgumentError(`ids[${i}]`, `must be an integer >= 0, got ${id}`);
      if (id < this.bytesOf.length) parts.push(this.bytesOf[id]);
      else parts.push(Uint8Array.of(0xef, 0xbf, 0xbd));
    }
    return Buffer.concat(parts).toString("utf8");
  }

  /** The text of one id (for vocabulary listings). */
  tokenText(id: number): string {
    return this.decode([id]);
  }
}

/**
 * Learns `vocabSize - 258` merges from `texts` (BPE: repeatedly join the most frequent adjacent
 * pair within pieces; ties go to the smaller (left, right)). Deterministic. A few seconds for the
 * Brown corpus.
 */
export function trainBpe(texts: Iterable<string>, vocabSize: number): BpeMerge[] {
  if (!Number.isInteger(vocabSize) || vocabSize < BPE_FIRST_MERGE || vocabSize > 1 << 20) {
    throw new InvalidArgumentError("vocabSize", `must be an integer in ${BPE_FIRST_MERGE}..${1 << 20}, got ${vocabSize}`);
  }
  // Distinct pieces with their counts; each piece as a list of ids.
  const counts = new Map<string, number>();
  for (const t of texts) for (const p of bpePieces(t)) counts.set(p, (counts.get(p) ?? 0) + 1);
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [p, c] of [...counts].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    words.push([...Buffer.from(p, "utf8")]);
    freq.push(c);
  }
  const key = (a: number, b: number) => a * 2 ** 20 + b;
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const add = (w: number, sign: number) => {
    const ids = words[w];
    for (let i = 0; i + 1 < ids.length; i++) {
      const k = key(ids[i], ids[i + 1]);
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * freq[w]);
      if (sign > 0) {
        let s = where.get(k);
        if (!s) where.set(k, (s = new Set()));
        s.add(w);
      }
    }
  };
  for (let w = 0; w < words.length; w++) add(w, 1);
  const merges: BpeMerge[] = [];
  while (BPE_FIRST_MERGE + merges.length < vocabSize) {
    let bestKey = -1;
    let bestCount = 0;
    for (const [k, c] of pairCount) {
      if (c > bestCount || (c === bestCount && c > 0 && k < bestKey)) {
        bestKey = k;
        bestCount = c;
      }
    }
    if (bestCount < 2) break; // nothing left worth a token
    const a = Math.floor(bestKey / 2 ** 20);
    const b = bestKey % 2 ** 20;
    const id = BPE_FIRST_MERGE + merges.length;
    merges.push([a, b]);
    for (const w of [...(where.get(bestKey) ?? [])]) {
      add(w, -1);
      const ids = words[w];
      const out: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
          out.push(id);
          i++;
        } else out.push(ids[i]);
      }
      words[w] = out;
      add(w, 1);
    }
    pairCount.delete(bestKey);
    where.delete(bestKey);
    // Drop pairs whose count fell to zero, so the scan above stays short.
    for (const [k, c] of pairCount) if (c <= 0) pairCount.delete(k);
  }
  return merges;
}
