/**
 * The pretraining corpus (Brown documents as readable text, split into train and validation
 * deterministically) and fixed-length token windows for the language-model objective.
 */
import { InvalidArgumentError } from "@rlhf/errors";
import { type BrownCorpus, type BrownDocument, loadBrownCorpus, sentenceText } from "./brown";
import { Rng, permutation } from "./rng";

/**
 * What the batcher needs from a tokenizer (the tokenizers themselves live elsewhere: a byte-level
 * one for the small models, GPT-2 BPE).
 */
export interface TokenEncoder {
  /** Token ids of a text, without EOS. */
  encode(text: string): number[];
  /** The end-of-text id, put after every document. */
  readonly eosId: number;
  /** The padding id, if the tokenizer has one (unused here: windows are always full). */
  readonly padId?: number;
}

/** A document of plain text. */
export interface PretrainDocument {
  readonly id: string;
  /** Brown genre (`news`, `fiction`...), or `user` for documents from files. */
  readonly category: string;
  readonly text: string;
}

/** The corpus split. */
export interface PretrainCorpus {
  readonly train: readonly PretrainDocument[];
  readonly valid: readonly PretrainDocument[];
}

/** Readable text of a Brown document: sentences joined by spaces, paragraphs by newlines. */
export function brownDocumentText(doc: BrownDocument): string {
  const paragraphs: string[][] = [];
  for (const s of doc.sentences) {
    (paragraphs[s.paragraph] ??= []).push(sentenceText(s));
  }
  return paragraphs
    .filter((p) => p && p.length)
    .map((p) => p.join(" "))
    .join("\n");
}

/** Options of {@link loadPretrainCorpus}. */
export interface PretrainCorpusOptions {
  /** Fraction of documents held out for validation, in [0, 0.5] (default 0.05: 25 of 500). */
  validFraction?: number;
  /** The corpus (default {@link loadBrownCorpus}()). */
  corpus?: BrownCorpus;
}

/**
 * The Brown documents as plain text, split without randomness (systematic sampling): in file
 * order, which groups the genres, document i goes to validation when floor((i+1)·f) > floor(i·f),
 * i.e. every (1/f)-th document, so each genre is held out in proportion to its size.
 */
export function loadPretrainCorpus(opts: PretrainCorpusOptions = {}): PretrainCorpus {
  const f = opts.validFraction ?? 0.05;
  if (!(f >= 0 && f <= 0.5)) throw new InvalidArgumentError("validFraction", `must be in [0, 0.5], got ${f}`);
  const corpus = opts.corpus ?? loadBrownCorpus();
  return splitPretrainDocuments(
    corpus.documents.map((d): PretrainDocument => ({ id: d.id, category: d.category, text: brownDocumentText(d) })),
    f,
  );
}

/**
 * Splits documents without randomness (systematic sampling): in the given order, document i goes
 * to validation when floor((i+1)·f) > floor(i·f), i.e. every (1/f)-th document. The Brown corpus
 * and users' text files are split by this same rule.
 */
export function splitPretrainDocuments<T>(documents: readonly T[], validFraction: number): { train: T[]; valid: T[] } {
  const f = validFraction;
  if (!(f >= 0 && f <= 0.5)) throw new InvalidArgumentError("validFraction", `must be in [0, 0.5], got ${f}`);
  const train: T[] = [];
  const valid: T[] = [];
  // The 1e-9 keeps products such as 20 * 0.05 from landing just below an integer.
  const bucket = (i: number) => Math.floor(i * f + 1e-9);
  documents.forEach((d, i) => (bucket(i + 1) > bucket(i) ? valid : train).push(d));
  return { train, valid };
}

/** Position in the pretraining stream: the next batch is batch `batch` of epoch `epoch`. */
export interface PretrainCursor {
  readonly epoch: number;
  readonly batch: number;
}

/** A batch of windows for the LM objective. */
export interface PretrainBatch {
  /** Token ids, row-major [batchSize, seqLen]; the trainer shifts (inputs [:-1], targets [1:]). */
  readonly tokens: Int32Array;
  readonly batchSize: number;
  readonly seqLen: number;
  /** Where this batch came from. */
  readonly epoch: number;
  readonly batch: number;
  /** The cursor of the batch after this one (save it to resume). */
  readonly next: PretrainCursor;
}

/** Options of {@link PretrainBatcher}. */
export interface PretrainBatcherOptions {
  /** Tokens per window (>= 2). */
  seqLen: number;
  /** Windows per batch (>= 1). */
  batchSize: number;
  /** Seed of the shuffles (default 0). */
  seed?: number;
  /** Where to start (default `{epoch: 0, batch: 0}`). */
  cursor?: PretrainCursor;
}

/** A document for the batchers: its text, or any record with a `text` (e.g. {@link PretrainDocument}). */
export type DocInput = string | { readonly text: string };

function encodeDocs(docs: readonly DocInput[], encoder: TokenEncoder): Int32Array[] {
  if (!Number.isInteger(encoder.eosId) || encoder.eosId < 0) throw new InvalidArgumentError("encoder.eosId", `must be a non-negative integer, got ${encoder.eosId}`);
  const out: Int32Array[] = [];
  docs.forEach((d, i) => {
    const text = typeof d === "string" ? d : d.text;
    if (text.trim() === "") return;
    const ids = encoder.encode(text);
    const arr = new Int32Array(ids.length + 1);
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) throw new InvalidArgumentError(`documents[${i}]`, `encoder returned a bad token id ${id} at ${k}`);
      arr[k] = id;
    }
    arr[ids.length] = encoder.eosId;
    out.push(arr);
  });
  return out;
}

function checkShape(seqLen: number, batchSize: number): void {
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new InvalidArgumentError("seqLen", `must be an integer >= 2, got ${seqLen}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidArgumentError("batchSize", `must be a positive integer, got ${batchSize}`);
}

/**
 * Training batches of fixed-length windows. Epoch e: the documents in a permutation fixed by
 * (seed, e), each followed by EOS, concatenated; cut into floor(total / seqLen) consecutive
 * windows; the windows in a second permutation fixed by (seed, e); batch b takes windows
 * [b·B, (b+1)·B) of that order (a last partial batch is dropped). The order depends only on
 * (seed, cursor), so a run that saves `cursor` resumes exactly.
 */
export class PretrainBatcher {
  /** Batches in one epoch. */
  readonly batchesPerEpoch: number;
  /** Tokens in one epoch's stream (documents plus one EOS each). */
  readonly tokensPerEpoch: number;
  private readonly docs: Int32Array[];
  private readonly seqLen: number;
  private readonly batchSize: number;
  private readonly seed: number;
  private readonly windows: number;
  private epoch: number;
  private batch: number;
  private layoutEpoch = -1;
  private stream = new Int32Array(0);
  private windowOrder: number[] = [];

  /** @param documents texts (or records with `text`); blank ones are skipped */
  constructor(documents: readonly DocInput[], encoder: TokenEncoder, opts: PretrainBatcherOptions) {
    checkShape(opts.seqLen, opts.batchSize);
    this.seqLen = opts.seqLen;
    this.batchSize = opts.batchSize;
    this.seed = opts.seed ?? 0;
    this.docs = encodeDocs(documents, encoder);
    this.tokensPerEpoch = this.docs.reduce((a, d) => a + d.length, 0);
    this.windows = Math.floor(this.tokensPerEpoch / this.seqLen);
    this.batchesPerEpoch = Math.floor(this.windows / this.batchSize);
    if (this.batchesPerEpoch < 1) {
      throw new InvalidArgumentError("documents", `${this.tokensPerEpoch} tokens make ${this.windows} windows of ${this.seqLen}: fewer than one batch of ${this.batchSize}`);
    }
    const c = opts.cursor ?? { epoch: 0, batch: 0 };
    if (!Number.isSafeInteger(c.epoch) || c.epoch < 0) throw new InvalidArgumentError("cursor.epoch", `must be a non-negative integer, got ${c.epoch}`);
    if (!Number.isSafeInteger(c.batch) || c.batch < 0 || c.batch > this.batchesPerEpoch) {
      throw new InvalidArgumentError("cursor.batch", `must be an integer in [0, ${this.batchesPerEpoch}], got ${c.batch}`);
    }
    this.epoch = c.epoch;
    this.batch = c.batch;
  }

  /** The cursor of the next batch. */
  get cursor(): PretrainCursor {
    return { epoch: this.epoch, batch: this.batch };
  }

  private layout(epoch: number): void {
    if (this.layoutEpoch === epoch) return;
    const order = permutation(this.docs.length, new Rng(this.seed, "pretrain-docs", epoch));
    const stream = new Int32Array(this.tokensPerEpoch);
    let at = 0;
    for (const i of order) {
      stream.set(this.docs[i], at);
      at += this.docs[i].length;
    }
    this.stream = stream;
    this.windowOrder = permutation(this.windows, new Rng(this.seed, "pretrain-windows", epoch));
    this.layoutEpoch = epoch;
  }

  /** The next batch; advances the cursor. */
  next(): PretrainBatch {
    if (this.batch >= this.batchesPerEpoch) {
      this.epoch++;
      this.batch = 0;
    }
    const epoch = this.epoch;
    const batch = this.batch;
    this.layout(epoch);
    const T = this.seqLen;
    const tokens = new Int32Array(this.batchSize * T);
    for (let r = 0; r < this.batchSize; r++) {
      const w = this.windowOrder[batch * this.batchSize + r];
      tokens.set(this.stream.subarray(w * T, (w + 1) * T), r * T);
    }
    this.batch++;
    return { tokens, batchSize: this.batchSize, seqLen: T, epoch, batch, next: this.cursor };
  }
}

/**
 * Evaluation batches: the documents in the given order, each followed by EOS, cut into
 * consecutive windows of `seqLen` (a last partial window is dropped), `batchSize` windows per
 * batch (the last batch may have fewer rows). No randomness.
 */
export function* sequentialBatches(documents: readonly DocInput[], encoder: TokenEncoder, opts: { seqLen: number; batchSize: number }): Generator<PretrainBatch> {
  checkShape(opts.seqLen, opts.batchSize);
  const docs = encodeDocs(documents, encoder);
  const total = docs.reduce((a, d) => a + d.length, 0);
  const stream = new Int32Array(total);
  let at = 0;
  for (const d of docs) {
    stream.set(d, at);
    at += d.length;
  }
  const T = opts.seqLen;
  const windows = Math.floor(total / T);
  const batches = Math.ceil(windows / opts.batchSize);
  for (let b = 0; b < batches; b++) {
    const rows = Math.min(opts.batchSize, windows - b * opts.batchSize);
    yield {
      tokens: stream.slice(b * opts.batchSize * T, (b * opts.batchSize + rows) * T),
      batchSize: rows,
      seqLen: T,
      epoch: 0,
      batch: b,
      next: { epoch: b + 1 === batches ? 1 : 0, batch: b + 1 === batches ? 0 : b + 1 },
    };
  }
}
