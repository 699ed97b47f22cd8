import { test } from "node:test";
import assert from "node:assert/strict";
import { PretrainBatcher, loadPretrainCorpus, sequentialBatches } from "./pretrain";
import { byteEncoder } from "./testing/byte-encoder";

const EOS = byteEncoder.eosId;

test("the pretraining corpus: 475 train and 25 validation documents, every 20th file, plain text", () => {
  const c = loadPretrainCorpus();
  assert.equal(c.train.length, 475);
  assert.equal(c.valid.length, 25);
  assert.deepEqual(
    c.valid.slice(0, 3).map((d) => d.id),
    ["ca20", "ca40", "cb16"],
  );
  const trainIds = new Set(c.train.map((d) => d.id));
  for (const d of c.valid) assert.ok(!trainIds.has(d.id));
  assert.ok(new Set(c.valid.map((d) => d.category)).size >= 10, "held-out documents span genres");
  for (const d of [...c.train, ...c.valid]) {
    assert.ok(!/[a-z]\/(nn|nns|at|vbd|jj|in) /.test(d.text), `${d.id} still has tags`);
    assert.ok(!d.text.includes("``"), d.id);
    assert.ok(d.text.length > 5000, d.id);
  }
  assert.ok(c.train[0].text.startsWith("The Fulton County Grand Jury said Friday"));
  assert.deepEqual(loadPretrainCorpus(), c, "deterministic");
  assert.equal(loadPretrainCorpus({ validFraction: 0.1 }).valid.length, 50);
  assert.throws(() => loadPretrainCorpus({ validFraction: 0.9 }), /validFraction/);
});

const docs = ["abcdefgh", "ij", "klmnopqrstu", "vwxyz0123456789"];
// Byte stream: 8+1 + 2+1 + 11+1 + 15+1 = 40 tokens.

test("batches are full windows of the epoch stream, each window once per epoch, documents separated by EOS", () => {
  const b = new PretrainBatcher(docs, byteEncoder, { seqLen: 4, batchSize: 3, seed: 1 });
  assert.equal(b.tokensPerEpoch, 40);
  assert.equal(b.batchesPerEpoch, 3);
  const windows: string[] = [];
  for (let i = 0; i < 3; i++) {
    const batch = b.next();
    assert.equal(batch.tokens.length, 12);
    assert.deepEqual([batch.epoch, batch.batch], [0, i]);
    for (let r = 0; r < 3; r++) windows.push(Array.from(batch.tokens.subarray(r * 4, r * 4 + 4)).join(","));
  }
  assert.equal(new Set(windows).size, 9, "9 of the 10 windows, none twice");
  const eosCount = windows.reduce((a, w) => a + w.split(",").filter((x) => Number(x) === EOS).length, 0);
  assert.ok(eosCount >= 3, "EOS after documents");
  // Windows come from some document order: every window is a slice of the docs joined with EOS.
  const letters = (w: string) =>
    w
      .split(",")
      .map((x) => (Number(x) === EOS ? "|" : String.fromCharCode(Number(x))))
      .join("");
  for (const w of windows) {
    const l = letters(w);
    const parts = l.split("|");
    if (parts.length === 1) {
      assert.ok(docs.some((d) => d.includes(l)), l);
      continue;
    }
    for (const p of parts.slice(1, -1)) assert.ok(docs.includes(p), `${l}: inner piece ${p} is a whole document`);
    assert.ok(docs.some((d) => d.endsWith(parts[0])), l);
    assert.ok(docs.some((d) => d.startsWith(parts[parts.length - 1])), l);
  }
  assert.deepEqual(b.next().epoch, 1);
});

test("resuming from a saved cursor gives exactly the same batches; other seeds give others", () => {
  const a = new PretrainBatcher(docs, byteEncoder, { seqLen: 5, batchSize: 2, seed: 7 });
  for (let i = 0; i < 5; i++) a.next();
  const saved = a.cursor;
  const rest = Array.from({ length: 6 }, () => Array.from(a.next().tokens));
  const b = new PretrainBatcher(docs, byteEncoder, { seqLen: 5, batchSize: 2, seed: 7, cursor: saved });
  assert.deepEqual(
    Array.from({ length: 6 }, () => Array.from(b.next().tokens)),
    rest,
  );
  const c = new PretrainBatcher(docs, byteEncoder, { seqLen: 5, batchSize: 2, seed: 8 });
  const d = new PretrainBatcher(docs, byteEncoder, { seqLen: 5, batchSize: 2, seed: 7 });
  assert.notDeepEqual(
    Array.from({ length: 4 }, () => Array.from(c.next().tokens)),
    Array.from({ length: 4 }, () => Array.from(d.next().tokens)),
  );
});

test("bad shapes, cursors and encoders are refused", () => {
  assert.throws(() => new PretrainBatcher(docs, byteEncoder, { seqLen: 1, batchSize: 1 }), /seqLen/);
  assert.throws(() => new PretrainBatcher(docs, byteEncoder, { seqLen: 4, batchSize: 0 }), /batchSize/);
  assert.throws(() => new PretrainBatcher(docs, byteEncoder, { seqLen: 40, batchSize: 2 }), /fewer than one batch/);
  assert.throws(() => new PretrainBatcher(docs, byteEncoder, { seqLen: 4, batchSize: 3, cursor: { epoch: 0, batch: 4 } }), /cursor.batch/);
  assert.throws(() => new PretrainBatcher(docs, { encode: () => [1.5], eosId: 0 }, { seqLen: 2, batchSize: 1 }), /bad token id/);
});

test("sequential batches cover the stream in order, last batch short", () => {
  const batches = [...sequentialBatches(docs, byteEncoder, { seqLen: 4, batchSize: 3 })];
  assert.deepEqual(
    batches.map((b) => b.batchSize),
    [3, 3, 3, 1],
  );
  const all = batches.flatMap((b) => Array.from(b.tokens));
  const expected = docs.flatMap((d) => [...Array.from(Buffer.from(d)), EOS]);
  assert.deepEqual(all, expected.slice(0, 40));
});

test("the Brown validation split in 256-byte windows", () => {
  const valid = loadPretrainCorpus().valid;
  const b = new PretrainBatcher(valid, byteEncoder, { seqLen: 256, batchSize: 8 });
  const x = b.next();
  assert.equal(x.tokens.length, 8 * 256);
  assert.ok(b.batchesPerEpoch > 100);
  for (const t of x.tokens) assert.ok(t >= 0 && t <= EOS);
});
