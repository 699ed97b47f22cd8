// The windows of the contract on a small synthetic corpus, against index arithmetic worked out by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Rng, permutation } from "@rlhf/data";
import { getTokenizer } from "@rlhf/model";
import { DomainError } from "@rlhf/errors";
import { TokenizedCorpus, tokenizeDocuments, WINDOW_ORDER_STREAM } from "./corpus";

const byte = getTokenizer("byte");
const doc = (text: string) => ({ id: text, category: "test", text });
// train: "abcde" EOS "fg" EOS "hijklmnop" EOS = 5+1 + 2+1 + 9+1 = 19 tokens
const corpus = new TokenizedCorpus({ train: [doc("abcde"), doc("fg"), doc("hijklmnop")], valid: [doc("xyz")] }, byte, "test");
const ids = (s: string) => [...Buffer.from(s)];
const TRAIN = [...ids("abcde"), 256, ...ids("fg"), 256, ...ids("hijklmnop"), 256];

test("tokenizeDocuments: each document followed by EOS, in order; a blank one gives a lone EOS", () => {
  const { tokens, maxId } = tokenizeDocuments([doc("ab"), doc(""), doc("é")], byte);
  assert.deepEqual([...tokens], [97, 98, 256, 256, 0xc3, 0xa9, 256]);
  assert.equal(maxId, 256);
  assert.deepEqual([...corpus.train.tokens], TRAIN);
  assert.equal(corpus.train.documents, 3);
  assert.deepEqual([...corpus.validation.tokens], [...ids("xyz"), 256]);
});

test("seed 0: windows in corpus order, the tail dropped, the cursor running on over epochs", () => {
  const L = 4;
  assert.equal(corpus.windowsPerEpoch("train", L), 4); // 19 tokens: 4 windows, 3 dropped
  const win = (w: number) => TRAIN.slice(w * L, (w + 1) * L);
  const b = corpus.batch("train", { sequences: 3, sequenceLength: L, cursor: 0, seed: 0 });
  assert.deepEqual([...b.tokens], [...win(0), ...win(1), ...win(2)]);
  assert.deepEqual([b.epoch, b.windowsPerEpoch, b.nextCursor], [0, 4, 3]);
  // cursor 3: window 3 of epoch 0, then windows 0 and 1 of epoch 1; the epoch is the first window's
  const c = corpus.batch("train", { sequences: 3, sequenceLength: L, cursor: 3, seed: 0 });
  assert.deepEqual([...c.tokens], [...win(3), ...win(0), ...win(1)]);
  assert.deepEqual([c.epoch, c.nextCursor], [0, 6]);
  const d = corpus.batch("train", { sequences: 1, sequenceLength: L, cursor: 4 * 1000 + 2, seed: 0 });
  assert.deepEqual([...d.tokens], win(2));
  assert.equal(d.epoch, 1000);
});

test("a seed: each epoch is the permutation drawn from (seed, epoch), deterministic, different per epoch", () => {
  const L = 2;
  const W = corpus.windowsPerEpoch("train", L); // 9
  assert.equal(W, 9);
  const win = (w: number) => TRAIN.slice(w * L, (w + 1) * L);
  for (const epoch of [0, 1, 7]) {
    const b = corpus.batch("train", { sequences: W, sequenceLength: L, cursor: epoch * W, seed: 42 });
    const order = permutation(W, new Rng(42, WINDOW_ORDER_STREAM, epoch));
    assert.deepEqual([...b.tokens], order.flatMap(win), `epoch ${epoch}`);
    assert.deepEqual([...order].sort((a, c) => a - c), [...Array(W).keys()], "every window once");
  }
  const e0 = corpus.batch("train", { sequences: W, sequenceLength: L, cursor: 0, seed: 42 }).tokens;
  const e1 = corpus.batch("train", { sequences: W, sequenceLength: L, cursor: W, seed: 42 }).tokens;
  const other = corpus.batch("train", { sequences: W, sequenceLength: L, cursor: 0, seed: 43 }).tokens;
  assert.notDeepEqual([...e0], [...e1]);
  assert.notDeepEqual([...e0], [...other]);
  assert.notDeepEqual([...e0], TRAIN.slice(0, W * L), "not corpus order");
  // A batch across the epoch end, after the window-order cache has turned over, agrees.
  for (let s = 1; s <= 10; s++) corpus.batch("train", { sequences: 1, sequenceLength: L, cursor: 0, seed: 1000 + s });
  const across = corpus.batch("train", { sequences: 4, sequenceLength: L, cursor: W - 2, seed: 42 });
  assert.deepEqual([...across.tokens], [...e0.slice((W - 2) * L), ...e1.slice(0, 2 * L)]);
});

test("no whole window in the split: INVALID_ARGUMENT naming sequence_length", () => {
  assert.throws(
    () => corpus.batch("validation", { sequences: 1, sequenceLength: 5, cursor: 0, seed: 0 }),
    (e: unknown) => e instanceof DomainError && e.code === "INVALID_ARGUMENT" && /^sequence_length: 5 is longer than the whole validation split \(4 tokens\)/.test(e.message),
  );
});

test("digest: SHA-256 of (count, ids) per split; it tells apart corpora whose concatenation is the same", () => {
  const h = createHash("sha256");
  for (const s of [TRAIN, [...ids("xyz"), 256]]) {
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(s.length));
    h.update(n).update(Buffer.from(Int32Array.from(s).buffer));
  }
  assert.equal(corpus.digest, h.digest("hex"));
  const a = new TokenizedCorpus({ train: [doc("ab")], valid: [doc("cd")] }, byte, "t");
  const b = new TokenizedCorpus({ train: [doc("ab"), doc("cd")], valid: [] }, byte, "t");
  assert.notEqual(a.digest, b.digest);
  assert.equal(a.digest, new TokenizedCorpus({ train: [doc("ab")], valid: [doc("cd")] }, byte, "t").digest);
});
