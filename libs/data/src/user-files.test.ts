import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DataFileError, MAX_DATA_FILE_BYTES, checkDataFile, formatIssue, readDataFileBytes } from "./jsonl";
import { splitPretrainDocuments, loadPretrainCorpus } from "./pretrain";
import { filesDigest, listTextFiles, loadTextCorpus, readComparisonsFile } from "./user-files";

const dir = mkdtempSync(join(tmpdir(), "rlhf-user-files-"));
const file = (name: string, content: string | Buffer) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};
/** The message of the DataFileError `fn` throws, as `file:line: field: message`. */
function issueOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DataFileError, `a DataFileError, got ${(e as Error).message}`);
    return formatIssue(e.issues[0]);
  }
  assert.fail("expected a DataFileError");
}

test("splitPretrainDocuments holds out every (1/f)-th document; the Brown split is unchanged by it", () => {
  const docs = Array.from({ length: 40 }, (_, i) => i);
  const s = splitPretrainDocuments(docs, 0.1);
  assert.deepEqual(s.valid, [9, 19, 29, 39]);
  assert.equal(s.train.length, 36);
  assert.deepEqual(splitPretrainDocuments(docs, 0).valid, []);
  assert.throws(() => splitPretrainDocuments(docs, 0.6), /validFraction: must be in \[0, 0.5\], got 0.6/);
  const brown = loadPretrainCorpus();
  assert.equal(brown.valid.length, 25, "every 20th of the 500 Brown documents, as before");
  assert.equal(brown.train.length, 475);
});

test("listTextFiles: a file, or a folder's .txt files sorted by name; missing paths and empty folders are errors", () => {
  const folder = join(dir, "texts");
  mkdirSync(folder);
  writeFileSync(join(folder, "b.txt"), "two\n");
  writeFileSync(join(folder, "a.txt"), "one\n");
  writeFileSync(join(folder, "notes.md"), "not text\n");
  assert.deepEqual(listTextFiles(folder), [join(folder, "a.txt"), join(folder, "b.txt")]);
  assert.deepEqual(listTextFiles(join(folder, "notes.md")), [join(folder, "notes.md")], "a file named directly is read whatever its extension");
  assert.match(issueOf(() => listTextFiles(join(dir, "nope"))), /nope: file: cannot read: ENOENT$/);
  const empty = join(dir, "empty-folder");
  mkdirSync(empty);
  assert.match(issueOf(() => listTextFiles(empty)), /empty-folder: file: the folder holds no \.txt files$/);
});

test("filesDigest: SHA-256 of each file's length then bytes, in order", () => {
  const a = file("d1.txt", "ab");
  const b = file("d2.txt", "c");
  const h = createHash("sha256");
  for (const s of ["ab", "c"]) {
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(s.length));
    h.update(n).update(s);
  }
  assert.equal(filesDigest([a, b]), h.digest("hex"));
  assert.notEqual(filesDigest([a, b]), filesDigest([b, a]), "order matters");
  assert.notEqual(filesDigest([file("d3.txt", "abc")]), filesDigest([file("d4.txt", "ab"), file("d5.txt", "c")]), "file boundaries matter");
});

test("loadTextCorpus: documents of every file in order, split systematically, with their sources", () => {
  const one = file("c1.txt", "first doc\nstill first\n\n\nsecond doc\n");
  const two = file("c2.txt", "third\n\nfourth\n");
  const c = loadTextCorpus([one, two], 0.25);
  assert.deepEqual(c.valid.map((d) => d.text), ["fourth"]);
  assert.deepEqual(c.train.map((d) => d.text), ["first doc\nstill first", "second doc", "third"]);
  assert.deepEqual(c.train.map((d) => d.id), ["c1.txt#1", "c1.txt#2", "c2.txt#1"]);
  assert.deepEqual(c.trainSources, [`${one}:1`, `${one}:5`, `${two}:1`]);
  assert.deepEqual(c.validSources, [`${two}:3`]);
  assert.equal(c.digest, filesDigest([one, two]));
  const bad = file("c3.txt", Buffer.concat([Buffer.from("ok\n\nfine\n"), Buffer.from([0xff, 0xfe]), Buffer.from("\n")]));
  assert.match(issueOf(() => loadTextCorpus([one, bad], 0.1)), /c3\.txt:4: text: not valid UTF-8$/);
  assert.match(issueOf(() => loadTextCorpus([file("c4.txt", "\n \n")], 0.1)), /c4\.txt: file: empty text/);
});

test("readComparisonsFile: rankings as they are, pairs as K = 2 rankings, with each record's line", () => {
  const r = file("r.jsonl", ['{"prompt":"p","responses":["a","b","c"],"ranking":[1,0,2]}', "", '{"prompt":"q","responses":["x","y"],"ranking":[0,1],"note":"n"}'].join("\n") + "\n");
  const got = readComparisonsFile(r);
  assert.equal(got.kind, "rankings");
  assert.deepEqual(got.records[0], { prompt: "p", responses: ["a", "b", "c"], ranking: [1, 0, 2] });
  assert.deepEqual(got.recordLines, [1, 3]);
  assert.equal(got.warnings.length, 1, "the unknown field is reported once");
  const p = file("p.jsonl", '{"prompt":"p","chosen":"good","rejected":"bad"}\n{"prompt":"q","chosen":"yes","rejected":"no"}\n');
  const pairs = readComparisonsFile(p);
  assert.equal(pairs.kind, "pairs");
  assert.deepEqual(pairs.records[1], { prompt: "q", responses: ["yes", "no"], ranking: [0, 1] });
});

test("readComparisonsFile names the file, the line and the field of the first bad line", () => {
  const cases: [string, RegExp][] = [
    ['{"prompt":"p","chosen":"a","rejected":"b"}\n{"prompt":"q","chosen":"a"}\n', /:2: rejected: missing field$/],
    ['{"prompt":"p","responses":["a","b"],"ranking":[0,1]}\n{"prompt":"q","responses":["a","b"],"ranking":[0,0]}\n', /:2: ranking: all responses are tied/],
    ['{"prompt":"p","responses":["a","b"],"ranking":[0,1]}\n\n{"prompt":"q","responses":["a","a"],"ranking":[0,1]}\n', /:3: responses\[1\]: duplicate of responses\[0\]$/],
    ['{"prompt":"p","completion":"c"}\n', /:1: record: a sft record: a comparisons file holds rankings/],
    ["not json\n", /:1: json: invalid JSON/],
    ["\n\n", /: file: no rankings records$/],
  ];
  cases.forEach(([content, want], i) => {
    const path = file(`bad-${i}.jsonl`, content);
    const msg = issueOf(() => readComparisonsFile(path));
    assert.ok(msg.startsWith(path), msg);
    assert.match(msg, want);
  });
  assert.match(issueOf(() => readComparisonsFile(join(dir, "missing.jsonl"))), /missing\.jsonl: file: cannot read: ENOENT$/);
});

test("data files are read bounded: devices, FIFOs, folders and files past the limit are refused without reading", () => {
  const fifo = join(dir, "pipe.jsonl");
  execFileSync("mkfifo", [fifo]);
  // Each of these would read forever (/dev/zero), block for a writer (the FIFO) or fail late.
  assert.match(issueOf(() => readComparisonsFile("/dev/zero")), /^\/dev\/zero: file: is a device, not a regular file$/);
  assert.match(issueOf(() => readComparisonsFile(fifo)), /pipe\.jsonl: file: is a FIFO, not a regular file$/);
  assert.match(issueOf(() => checkDataFile(fifo)), /pipe\.jsonl: file: is a FIFO, not a regular file$/);
  assert.match(issueOf(() => loadTextCorpus([dir], 0.1)), /: file: is a folder, not a regular file$/);
  assert.match(issueOf(() => readComparisonsFile(join(dir, "missing.jsonl"))), /missing\.jsonl: file: cannot read: ENOENT$/);
  // Past the limit: refused with the size and the limit (a sparse file: nothing is written or read).
  const big = join(dir, "big.txt");
  writeFileSync(big, "");
  truncateSync(big, MAX_DATA_FILE_BYTES + 1);
  assert.match(issueOf(() => loadTextCorpus([big], 0.1)), new RegExp(`big\\.txt: file: is ${MAX_DATA_FILE_BYTES + 1} bytes, more than the limit of ${MAX_DATA_FILE_BYTES}$`));
  assert.match(issueOf(() => readDataFileBytes(file("small.txt", "abcdef"), "small.txt", 5)), /^small\.txt: file: is 6 bytes, more than the limit of 5$/);
  assert.equal(readDataFileBytes(file("ok.txt", "abcdef"), "ok.txt", 6).toString(), "abcdef");
});
