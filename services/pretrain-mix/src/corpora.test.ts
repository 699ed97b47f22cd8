import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getTokenizer } from "@rlhf/model";
import { loadPretrainCorpus } from "@rlhf/data";
import { Corpora } from "./corpora";
import { TokenizedCorpus } from "./corpus";

test("text corpora: at most maxCached kept, the least recently used dropped first", () => {
  const dir = mkdtempSync(join(tmpdir(), "corpora-"));
  const files = ["a", "b", "c"].map((n) => {
    const p = join(dir, `${n}.txt`);
    writeFileSync(p, `${n} one\n\n${n} two\n\n${n} three\n`);
    return p;
  });
  const loaded: number[] = [];
  const builtin = new TokenizedCorpus(loadPretrainCorpus(), getTokenizer("byte"), "brown");
  const corpora = new Corpora(builtin, { maxCached: 2, onLoad: (info) => loaded.push(info.files) });
  const spec = (p: string) => ({ files: [p], validationFraction: 0, contentDigest: "" });
  const a = corpora.get(spec(files[0]));
  corpora.get(spec(files[1]));
  assert.equal(corpora.get(spec(files[0])), a, "a cached corpus is the same object");
  corpora.get(spec(files[2])); // drops b, the least recently used
  assert.equal(corpora.cachedTextCorpora, 2);
  assert.equal(corpora.get(spec(files[0])), a, "a was used last: kept");
  assert.equal(loaded.length, 3);
  corpora.get(spec(files[1]));
  assert.equal(loaded.length, 4, "b was dropped: loaded again");
  assert.equal(corpora.cachedTextCorpora, 2);
  assert.equal(corpora.get(undefined), builtin);
});
