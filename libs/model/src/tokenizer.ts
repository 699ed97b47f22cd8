/**
 * Tokenizers: GPT-2's byte-level BPE (ranks shipped inside `js-tiktoken`, nothing downloaded) for
 * real GPT-2 checkpoints, a small byte-level BPE learned from the Brown corpus (./bpe.ts) for the
 * small models trained here, and a plain byte tokenizer.
 *
 * EOS and PAD are always distinct ids:
 * - byte: ids 0..255 are the UTF-8 bytes, EOS = 256, PAD = 257 (258 ids; the `tiny` preset has 512).
 * - bpe: the bytes, EOS = 256, PAD = 257, then one id per learned merge (2048 ids for the built-in
 *   vocabulary learned from the Brown corpus, ./vocab/brown-bpe-2048.json; `rlhf data bpe` learns it).
 * - gpt2: EOS = 50256 (`<|endoftext|>`). GPT-2 has no pad token and its embedding has exactly
 *   50257 rows, so PAD = 50257 is a *host-side marker only*: it is one past the last embedding row,
 *   generation never feeds it to the model (finished rows are fed EOS and ignored), and the model
 *   rejects it as out of range, so a PAD that slips into a forward pass fails loudly instead of
 *   being trained on. Right-padded batches must replace it (any valid id works under causal
 *   attention) and mask those positions.
 *
 * A checkpoint records its tokenizer in `config.json` under {@link TOKENIZER_CONFIG_KEY} (a `bpe`
 * one also its merges, under {@link BPE_MERGES_CONFIG_KEY}, so that the folder decodes the same way
 * wherever it goes); a folder without the key (a real GPT-2 download) is read as `gpt2`.
 */
import { InvalidArgumentError } from "@rlhf/errors";
import { loadCheckpointConfig } from "./checkpoint-config";
import { BPE_EOS, BPE_PAD, BpeCodec, type BpeMerge, validateMerges } from "./bpe";
import BROWN_BPE_MERGES from "./vocab/brown-bpe-2048.json";

/** The part of js-tiktoken's `Tiktoken` used here. */
interface Tiktoken {
  encode(text: string, allowedSpecial?: string[] | "all", disallowedSpecial?: string[] | "all"): number[];
  decode(tokens: number[]): string;
}

/** js-tiktoken is typed as an ES module; its CommonJS build is loaded with require (lazily: the ranks are ~1 MB). */
function loadGpt2Encoding(): Tiktoken {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const lite = require("js-tiktoken/lite") as { Tiktoken: new (ranks: unknown) => Tiktoken };
  const ranks = require("js-tiktoken/ranks/gpt2") as { default?: unknown };
  /* eslint-enable @typescript-eslint/no-require-imports */
  return new lite.Tiktoken(ranks.default ?? ranks);
}

/** Names of the tokenizers this library knows. */
export type TokenizerName = "byte" | "bpe" | "gpt2";

/** Every {@link TokenizerName}. */
export const TOKENIZER_NAMES: readonly TokenizerName[] = ["byte", "bpe", "gpt2"];

/** The `config.json` key naming a checkpoint's tokenizer. */
export const TOKENIZER_CONFIG_KEY = "rlhf_tokenizer";

/** The `config.json` key holding a `bpe` tokenizer's merges ([left, right] id pairs in rank order). */
export const BPE_MERGES_CONFIG_KEY = "rlhf_bpe_merges";

/** Text <-> token ids. */
export interface Tokenizer {
  readonly name: TokenizerName;
  /** Number of ids the model must embed (EOS included; PAD too for `byte`, not for `gpt2`). */
  readonly vocabSize: number;
  /** End of sequence: generation stops after sampling it; the model must learn to emit it. */
  readonly eosId: number;
  /** Padding marker, distinct from EOS. */
  readonly padId: number;
  /** Token ids of plain text (special tokens in the text are encoded as ordinary text). */
  encode(text: string): number[];
  /** Text of ids; EOS and PAD are dropped. Negative ids are an InvalidArgumentError (byte: unused ids >= 258 of a larger model decode as U+FFFD). */
  decode(ids: ArrayLike<number>): string;
}

/** UTF-8 bytes as ids 0..255; EOS = 256, PAD = 257. */
export class ByteTokenizer implements Tokenizer {
  readonly name = "byte" as const;
  readonly vocabSize = 258;
  readonly eosId = 256;
  readonly padId = 257;

  encode(text: string): number[] {
    return [...Buffer.from(text, "utf8")];
  }

  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0) throw new InvalidArgumentError(`ids[${i}]`, `must be an integer >= 0, got ${id}`);
      if (id < 256) bytes.push(id);
      else if (id > this.padId) bytes.push(0xef, 0xbf, 0xbd); // an id the model has but the tokenizer never produces: U+FFFD
    }
    return Buffer.from(bytes).toString("utf8");
  }
}

/**
 * A byte-level BPE learned from a corpus (see ./bpe.ts): bytes 0..255, EOS = 256, PAD = 257, one id
 * per merge after them. Default: the built-in vocabulary learned from the Brown corpus's
 * pretraining split (2048 ids).
 */
export class BpeTokenizer implements Tokenizer {
  readonly name = "bpe" as const;
  readonly vocabSize: number;
  readonly eosId = BPE_EOS;
  readonly padId = BPE_PAD;
  private readonly codec: BpeCodec;

  constructor(merges: readonly BpeMerge[] = builtinMerges()) {
    this.codec = new BpeCodec(merges);
    this.vocabSize = this.codec.vocabSize;
  }

  /** The merges, in rank order (recorded in checkpoints). */
  get merges(): readonly BpeMerge[] {
    return this.codec.merges;
  }

  encode(text: string): number[] {
    return this.codec.encode(text);
  }

  decode(ids: ArrayLike<number>): string {
    return this.codec.decode(ids);
  }
}

let brownMerges: BpeMerge[] | undefined;

/** The built-in merges (./vocab/brown-bpe-2048.json), checked once. */
export function builtinMerges(): readonly BpeMerge[] {
  brownMerges ??= validateMerges(BROWN_BPE_MERGES, "vocab/brown-bpe-2048.json");
  return brownMerges;
}

let gpt2Encoding: Tiktoken | undefined;

/** GPT-2's BPE (js-tiktoken `gpt2` ranks). EOS = 50256 `<|endoftext|>`; PAD = 50257 (see the file comment). */
export class Gpt2Tokenizer implements Tokenizer {
  readonly name = "gpt2" as const;
  readonly vocabSize = 50257;
  readonly eosId = 50256;
  readonly padId = 50257;
  private readonly enc: Tiktoken;

  constructor() {
    gpt2Encoding ??= loadGpt2Encoding();
    this.enc = gpt2Encoding;
  }

  encode(text: string): number[] {
    // No special tokens allowed: "<|endoftext|>" typed by a user is just text.
    return this.enc.encode(text, [], []);
  }

  decode(ids: ArrayLike<number>): string {
    const keep: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id > this.padId) throw new InvalidArgumentError(`ids[${i}]`, `id ${id} is out of range 0..${this.padId}`);
      if (id !== this.eosId && id !== this.padId) keep.push(id);
    }
    return this.enc.decode(keep);
  }
}

/** A tokenizer by name; InvalidArgumentError for an unknown one. */
export function getTokenizer(name: string): Tokenizer {
  if (name === "byte") return new ByteTokenizer();
  if (name === "bpe") return (builtinBpe ??= new BpeTokenizer());
  if (name === "gpt2") return new Gpt2Tokenizer();
  throw new InvalidArgumentError("tokenizer", `unknown tokenizer ${JSON.stringify(name)}; known: ${TOKENIZER_NAMES.join(", ")}`);
}

let builtinBpe: BpeTokenizer | undefined;

/**
 * The tokenizer a checkpoint's `config.json` names (key {@link TOKENIZER_CONFIG_KEY}; absent: gpt2).
 * Checks that the model embeds every id the tokenizer produces.
 */
export function tokenizerFromConfig(hfConfig: Record<string, unknown>, source = "config.json"): Tokenizer {
  const name = hfConfig[TOKENIZER_CONFIG_KEY] ?? "gpt2";
  if (typeof name !== "string") throw new InvalidArgumentError(`${source}.${TOKENIZER_CONFIG_KEY}`, `must be a string, got ${JSON.stringify(name)}`);
  let tok: Tokenizer;
  try {
    tok = name === "bpe" && hfConfig[BPE_MERGES_CONFIG_KEY] !== undefined ? new BpeTokenizer(validateMerges(hfConfig[BPE_MERGES_CONFIG_KEY], `${source}.${BPE_MERGES_CONFIG_KEY}`)) : getTokenizer(name);
  } catch (e) {
    if (e instanceof InvalidArgumentError && e.message.startsWith(`${source}.${BPE_MERGES_CONFIG_KEY}`)) throw e;
    throw new InvalidArgumentError(`${source}.${TOKENIZER_CONFIG_KEY}`, (e as Error).message.replace(/^tokenizer: /, ""));
  }
  const vocab = hfConfig.vocab_size;
  // gpt2's PAD is never embedded, so the model needs EOS + 1 rows; byte and bpe embed PAD too.
  const needed = tok.name === "gpt2" ? tok.eosId + 1 : tok.vocabSize;
  if (typeof vocab === "number" && vocab < needed) {
    throw new InvalidArgumentError(`${source}.vocab_size`, `${vocab} is too small for the ${tok.name} tokenizer (needs ${needed})`);
  }
  return tok;
}

/** The `config.json` keys that record a tokenizer (pass to `saveCheckpoint` as extra config). */
export function tokenizerConfig(tok: Tokenizer): Record<string, unknown> {
  const merges = tok instanceof BpeTokenizer ? { [BPE_MERGES_CONFIG_KEY]: tok.merges } : {};
  return { [TOKENIZER_CONFIG_KEY]: tok.name, eos_token_id: tok.eosId, bos_token_id: tok.eosId, ...merges };
}

/** The tokenizer recorded in a checkpoint folder's `config.json` (see {@link tokenizerFromConfig}). */
export async function loadCheckpointTokenizer(dir: string): Promise<Tokenizer> {
  const { hfConfig } = await loadCheckpointConfig(dir);
  return tokenizerFromConfig(hfConfig, `${dir}/config.json`);
}
