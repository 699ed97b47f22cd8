import { test } from "node:test";
import assert from "node:assert/strict";
import { detokenize, isWordToken, loadBrownCorpus, parseBrownDocument, sentenceText, tagInfo } from "./brown";

test("tagInfo takes Brown tags apart", () => {
  assert.deepEqual(tagInfo("nn-tl"), { parts: ["nn"], foreign: false, title: true, headline: false, cited: false });
  assert.deepEqual(tagInfo("fw-nn-tl-hl").parts, ["nn"]);
  assert.equal(tagInfo("fw-nn").foreign, true);
  assert.deepEqual(tagInfo("ppss+bem").parts, ["ppss", "bem"]);
  assert.deepEqual(tagInfo("do*").parts, ["do"]);
  assert.equal(tagInfo("nns-nc").cited, true);
});

test("detokenize glues punctuation and turns `` '' into quotes", () => {
  assert.equal(detokenize(["He", "said", ",", "``", "no", "''", "(", "twice", ")", "."]), 'He said, "no" (twice).');
  assert.equal(detokenize(["It", "is", "--", "so", "to", "speak", "--", "done", ";"]), "It is -- so to speak -- done;");
  assert.equal(isWordToken("''"), false);
  assert.equal(isWordToken("1960"), true);
});

test("parseBrownDocument: paragraphs, sentences, doubled final punctuation, bad tokens", () => {
  const doc = parseBrownDocument("cz01", "test", "\n\n\tWhy/wrb not/* ?/. ?/.\nNo/rb ./.\n\n\n\tNew/jj para/nn ./.\n");
  assert.equal(doc.sentences.length, 3);
  assert.deepEqual(
    doc.sentences.map((s) => [s.id, s.paragraph, sentenceText(s)]),
    [
      ["cz01.0", 0, "Why not?"],
      ["cz01.1", 0, "No."],
      ["cz01.2", 1, "New para."],
    ],
  );
  assert.throws(() => parseBrownDocument("cz02", "test", "\tgood/jj bad\n"), /cz02:1: token "bad"/);
});

test("the installed corpus: 500 documents in 15 genres, ~57k sentences, ~1.16M tokens", () => {
  const c = loadBrownCorpus();
  assert.equal(c.documents.length, 500);
  assert.equal(new Set(c.documents.map((d) => d.category)).size, 15);
  const sentences = c.documents.reduce((a, d) => a + d.sentences.length, 0);
  assert.equal(sentences, 57340);
  const tokens = c.documents.reduce((a, d) => a + d.sentences.reduce((b, s) => b + s.tokens.length, 0), 0);
  assert.ok(tokens > 1_140_000 && tokens < 1_170_000, `${tokens} tokens`);
  assert.equal(c.documents[0].id, "ca01");
  assert.equal(c.documents[0].category, "news");
  assert.equal(
    sentenceText(c.documents[0].sentences[0]),
    `The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced "no evidence" that any irregularities took place.`,
  );
  assert.equal(loadBrownCorpus(), c, "cached");
});
