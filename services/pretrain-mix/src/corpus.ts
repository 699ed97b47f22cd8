/**
 * The tokenised pretraining corpus and its windows, exactly as the contract's service comment
 * defines them: a split's documents in corpus order, each followed by EOS, concatenated into one
 * token stream (tokenised once, at start); windows of `sequenceLength` consecutive tokens, the
 * short tail dropped; epoch e visits every window once, in corpus order when the seed is 0, else
 * in `permutation(W, new Rng(seed, WINDOW_ORDER_STREAM, e))` (@rlhf/data); a cursor counts windows
 * from the start of epoch 0. No gRPC here.
 */
import { createHash } from "node:crypto";
import { Rng, permutation, type PretrainCorpus, type PretrainDocument } from "@rlhf/data";
import { InvalidArgumentError } from "@rlhf/errors";
import type { Tokenizer } from "@rlhf/model";

/** The two splits of the corpus. */
export type SplitName = "train" | "validation";

/** Stream label of the window shuffles: epoch e of seed s uses `new Rng(s, WINDOW_ORDER_STREAM, e)`. */
export const WINDOW_ORDER_STREAM = "pretrain-mix-windows";

/** Window orders (permutations) kept for reuse; a batch needs one or two (across an epoch end). */
const ORDER_CACHE_SIZE = 8;

/** One split's token stream. */
export interface SplitStream {
  readonly name: SplitName;
  /** Documents in the split. */
  readonly documents: number;
  /** The documents' ids, each followed by EOS, concatenated. */
  readonly tokens: Int32Array;
  /** Largest id in the stream (-1 when empty). */
  readonly maxId: number;
}

/** What a batch request asks for (validated by the handler: integers in range). */
export interface WindowRequest {
  sequences: number;
  sequenceLength: number;
  cursor: number;
  seed: number;
}

/** A batch of windows. */
export interface WindowBatch {
  /** Row-major [sequences, sequenceLength] ids. */
  tokens: Int32Array;
  /** Epoch of the first window: floor(cursor / windowsPerEpoch). */
  epoch: number;
  windowsPerEpoch: number;
  /** cursor + sequences. */
  nextCursor: number;
}

/** The documents' ids, each followed by EOS, concatenated (blank documents too: they give a lone EOS). */
export function tokenizeDocuments(docs: readonly Pick<PretrainDocument, "text">[], tokenizer: Pick<Tokenizer, "encode" | "eosId">): { tokens: Int32Array; maxId: number } {
  const parts: number[][] = docs.map((d) => tokenizer.encode(d.text));
  const total = parts.reduce((a, p) => a + p.length + 1, 0);
  const tokens = new Int32Array(total);
  let at = 0;
  let maxId = -1;
  for (const p of parts) {
    for (const id of p) {
      tokens[at++] = id;
      if (id > maxId) maxId = id;
    }
    tokens[at++] = tokenizer.eosId;
  }
  if (docs.length > 0) maxId = Math.max(maxId, tokenizer.eosId);
  return { tokens, maxId };
}

/** The corpus, tokenised, with the batches of the contract. */
export class TokenizedCorpus {
  readonly train: SplitStream;
  readonly validation: SplitStream;
  /**
   * Hex SHA-256 over the train stream, then the validation stream, each as its token count
   * (uint64 little-endian) followed by its ids (int32 little-endian): equal on replicas that
   * will cut the same batches.
   */
  readonly digest: string;
  private readonly orders = new Map<string, Int32Array>();

  constructor(
    corpus: PretrainCorpus,
    readonly tokenizer: Tokenizer,
    /** Corpus name for GetInfo, e.g. "brown". */
    readonly name: string,
  ) {
    const split = (name: SplitName, docs: readonly PretrainDocument[]): SplitStream => ({ name, documents: docs.length, ...tokenizeDocuments(docs, tokenizer) });
    this.train = split("train", corpus.train);
    this.validation = split("validation", corpus.valid);
    const hash = createHash("sha256");
    for (const s of [this.train, this.validation]) {
      const n = Buffer.alloc(8);
      n.writeBigUInt64LE(BigInt(s.tokens.length));
      hash.update(n);
      hash.update(int32LittleEndian(s.tokens));
    }
    this.digest = hash.digest("hex");
  }

  split(name: SplitName): SplitStream {
    return name === "train" ? this.train : this.validation;
  }

  /** Windows in one epoch of `split` at `sequenceLength`: floor(tokens / sequenceLength). */
  windowsPerEpoch(name: SplitName, sequenceLength: number): number {
    return Math.floor(this.split(name).tokens.length / sequenceLength);
  }

  /**
   * The batch at `cursor`: row r is window (cursor + r) of the epoch order (it may run on into
   * the next epoch). INVALID_ARGUMENT (sequence_length) when the split holds no whole window.
   */
  batch(name: SplitName, req: WindowRequest): WindowBatch {
    const { sequences: S, sequenceLength: L, cursor, seed } = req;
    const stream = this.split(name).tokens;
    const W = this.windowsPerEpoch(name, L);
    if (W < 1) throw new InvalidArgumentError("sequence_length", `${L} is longer than the whole ${name} split (${stream.length} tokens): no window fits`);
    const tokens = new Int32Array(S * L);
    for (let r = 0; r < S; r++) {
      const g = cursor + r;
      const epoch = Math.floor(g / W);
      const at = g - epoch * W;
      const w = seed === 0 ? at : this.order(name, L, seed, epoch, W)[at];
      tokens.set(stream.subarray(w * L, (w + 1) * L), r * L);
    }
    return { tokens, epoch: Math.floor(cursor / W), windowsPerEpoch: W, nextCursor: cursor + S };
  }

  /** Epoch `epoch`'s window order for a non-zero seed (cached: recomputing it is O(W)). */
  private order(name: SplitName, L: number, seed: number, epoch: number, W: number): Int32Array {
    const key = `${name}/${L}/${seed}/${epoch}`;
    let o = this.orders.get(key);
    if (o) {
      this.orders.delete(key); // re-insert: most recently used last
    } else {
      o = Int32Array.from(permutation(W, new Rng(seed, WINDOW_ORDER_STREAM, epoch)));
      if (this.orders.size >= ORDER_CACHE_SIZE) this.orders.delete(this.orders.keys().next().value as string);
    }
    this.orders.set(key, o);
    return o;
  }
}

function int32LittleEndian(a: Int32Array): Uint8Array {
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  if (le) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = Buffer.alloc(a.length * 4);
  for (let i = 0; i < a.length; i++) out.writeInt32LE(a[i], i * 4);
  return out;
}
