import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DomainError } from "@rlhf/errors";
import {
  DataFileError,
  type DataIssue,
  type JsonlKind,
  JSONL_KINDS,
  checkDataFile,
  formatIssue,
  formatJsonl,
  formatTextDocuments,
  isValidRanking,
  parseJsonl,
  parseTextDocuments,
  readJsonlFile,
  readTextFile,
} from "./jsonl";
import { Rng } from "./rng";

const dir = mkdtempSync(join(tmpdir(), "rlhf-data-jsonl-"));
const file = (name: string, content: string | Buffer) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};
/** [line, field, message pattern] of each issue, in order. */
type Expected = [number, string, RegExp][];
function assertIssues(issues: readonly DataIssue[], path: string, expected: Expected): void {
  assert.equal(issues.length, expected.length, issues.map(formatIssue).join("\n"));
  issues.forEach((i, n) => {
    const [line, field, message] = expected[n];
    assert.equal(i.file, path);
    assert.equal(i.line, line, formatIssue(i));
    assert.equal(i.field, field, formatIssue(i));
    assert.match(i.message, message, formatIssue(i));
  });
}

const SFT_BAD = [
  `{"prompt":"p","completion":" c"}`,
  `{"prompt":"p"}`,
  `{"prompt": 5, "completion": "c"}`,
  `{"prompt":"  ","completion":"c"}`,
  `not json at all`,
  `[1,2]`,
  ``,
  `{"prompt":"p","completion":"c","extra":1}`,
  `{"prompt":"p","completion":null}`,
].join("\n");
const SFT_EXPECTED: Expected = [
  [2, "completion", /missing field/],
  [3, "prompt", /expected a string, got number/],
  [4, "prompt", /empty text/],
  [5, "json", /invalid JSON/],
  [6, "record", /expected a JSON object, got array/],
  [9, "completion", /expected a string, got null/],
];

const RANKINGS_BAD = [
  `{"prompt":"p","responses":["a","b","c"],"ranking":[1,0,2]}`,
  `{"prompt":"p","responses":["a","b","c"],"ranking":[0,0,2]}`,
  `{"prompt":"p","responses":["a"],"ranking":[0]}`,
  `{"responses":["a","b","c"],"ranking":[0,0,1]}`,
  `{"prompt":"p","responses":["a","b","c"],"ranking":[0,1]}`,
  `{"prompt":"p","responses":["a"," a ","b"],"ranking":[0,1,2]}`,
  `{"prompt":"p","responses":["a","b","c"],"ranking":[0,1.5,2]}`,
  `{"prompt":"p","responses":["a","b","c"],"ranking":[0,1,3]}`,
  `{"prompt":"p","responses":"abc","ranking":[0,1,2]}`,
  `{"prompt":"p","responses":[1,"b"],"ranking":[0,1]}`,
  `{"prompt":"p","responses":["a","b"],"ranking":[0,0]}`,
  `{"prompt":"p","responses":["a",""],"ranking":[0,1]}`,
  `{"prompt":"p","responses":["a","b"]}`,
].join("\n");
const RANKINGS_EXPECTED: Expected = [
  [3, "responses", /K = 1: a ranking needs at least 2 responses/],
  [4, "prompt", /missing field/],
  [4, "ranking", /\[0, 0, 1\] is not a ranking/],
  [5, "ranking", /has 2 ranks for 3 responses/],
  [6, "responses[1]", /duplicate of responses\[0\]/],
  [7, "ranking[1]", /expected an integer rank, got 1.5/],
  [8, "ranking[2]", /rank 3 is outside 0..2/],
  [9, "responses", /expected an array of strings, got string/],
  [10, "responses[0]", /expected a string, got number/],
  [11, "ranking", /all responses are tied/],
  [12, "responses[1]", /empty text/],
  [13, "ranking", /missing field/],
];

const PAIRS_BAD = [
  `{"prompt":"p","chosen":"good","rejected":"bad"}`,
  `{"prompt":"p","chosen":"same","rejected":" same "}`,
  `{"prompt":"p","chosen":"good"}`,
  `{"prompt":"p","chosen":[],"rejected":"bad"}`,
].join("\n");
const PAIRS_EXPECTED: Expected = [
  [2, "rejected", /identical to chosen/],
  [3, "rejected", /missing field/],
  [4, "chosen", /expected a string, got array/],
];

const PROMPTS_BAD = [`{"prompt":"ok"}`, `{}`, `{"prompt": ""}`, `"just a string"`, `{"prompt": "x"`].join("\r\n");
const PROMPTS_EXPECTED: Expected = [
  [2, "prompt", /missing field/],
  [3, "prompt", /empty text/],
  [4, "record", /got string/],
  [5, "json", /invalid JSON/],
];

const CASES: { kind: JsonlKind; content: string; expected: Expected; good: number }[] = [
  { kind: "sft", content: SFT_BAD, expected: SFT_EXPECTED, good: 2 },
  { kind: "rankings", content: RANKINGS_BAD, expected: RANKINGS_EXPECTED, good: 2 },
  { kind: "pairs", content: PAIRS_BAD, expected: PAIRS_EXPECTED, good: 1 },
  { kind: "prompts", content: PROMPTS_BAD, expected: PROMPTS_EXPECTED, good: 1 },
];

test("a malformed file of each JSONL kind is reported line by line, with field and reason", () => {
  for (const c of CASES) {
    const path = file(`bad-${c.kind}.jsonl`, c.content);
    const r = readJsonlFile(path, c.kind, { skipBad: true });
    assertIssues(r.errors, path, c.expected);
    assert.equal(r.records.length, c.good, c.kind);
    assert.equal(r.skipped, new Set(c.expected.map((e) => e[0])).size, `${c.kind}: bad lines counted once each`);
    const report = checkDataFile(path);
    assert.equal(report.kind, c.kind, "kind inferred from the first line");
    assert.deepEqual(report.errors, r.errors);
  }
});

test("without skipBad the first bad line throws, naming file:line and field", () => {
  for (const c of CASES) {
    const path = file(`first-${c.kind}.jsonl`, c.content);
    assert.throws(
      () => readJsonlFile(path, c.kind),
      (e: unknown) => {
        assert.ok(e instanceof DataFileError && e instanceof DomainError);
        assert.equal(e.code, "INVALID_ARGUMENT");
        const [line, field] = c.expected[0];
        assert.equal(e.issues[0].line, line);
        assert.ok(e.message.startsWith(`${path}:${line}: ${field}: `), e.message);
        return true;
      },
    );
  }
});

test("unknown fields are ignored with one warning per field name", () => {
  const r = parseJsonl(SFT_BAD, "sft", { file: "f.jsonl", skipBad: true });
  assert.deepEqual(r.warnings.map((w) => [w.line, w.field]), [[8, "extra"]]);
  assert.equal(formatIssue(r.warnings[0]), "f.jsonl:8: extra: not a field of the sft format (prompt, completion): ignored");
});

test("bytes: invalid UTF-8, over-long lines, BOM and CRLF, blank lines, empty files", () => {
  const bad = Buffer.concat([Buffer.from(`{"prompt":"a"}\n{"prompt":"`), Buffer.from([0xff, 0xfe]), Buffer.from(`"}\n{"prompt":"${"x".repeat(100)}"}\n`)]);
  const r = parseJsonl(bad, "prompts", { file: "b.jsonl", skipBad: true, maxLineBytes: 50 });
  assertIssues(r.errors, "b.jsonl", [
    [2, "line", /not valid UTF-8/],
    [3, "line", /113 bytes, over the limit of 50/],
  ]);
  const ok = parseJsonl(`\ufeff{"prompt":"a"}\r\n\r\n   \r\n{"prompt":"b"}\r\n`, "prompts", { file: "c.jsonl" });
  assert.deepEqual(ok.records, [{ prompt: "a" }, { prompt: "b" }]);
  assert.equal(ok.lines, 4);
  assert.throws(() => parseJsonl("", "sft", { file: "e.jsonl" }), /e.jsonl: file: no sft records/);
  const empty = parseJsonl("\n\n", "sft", { file: "e.jsonl", skipBad: true });
  assertIssues(empty.errors, "e.jsonl", [[0, "file", /no sft records/]]);
  assert.equal(formatIssue(empty.errors[0]), "e.jsonl: file: no sft records");
});

test("plain-text files: documents split on blank lines; bad bytes and empty files reported", () => {
  const content = Buffer.concat([
    Buffer.from("doc one line 1\ndoc one line 2\n\ndoc two\n"),
    Buffer.from([0xc3, 0x28, 0x0a]),
    Buffer.from("\n\u0000 binary\ndoc three\n"),
  ]);
  const path = file("bad.txt", content);
  const r = readTextFile(path, { skipBad: true });
  assert.deepEqual(r.records, ["doc one line 1\ndoc one line 2", "doc two", "doc three"]);
  assertIssues(r.errors, path, [
    [5, "text", /not valid UTF-8/],
    [7, "text", /NUL/],
  ]);
  assert.equal(r.skipped, 2);
  assert.throws(() => readTextFile(path), new RegExp(`${path}:5: text: not valid UTF-8`));
  const emptyPath = file("empty.txt", " \n\n");
  assertIssues(checkDataFile(emptyPath).errors, emptyPath, [[0, "file", /empty text/]]);
  const docs = ["first\n\n\nstill first", "second"];
  assert.deepEqual(parseTextDocuments(formatTextDocuments(docs), { file: "t" }).records, ["first\nstill first", "second"]);
  assert.throws(() => formatTextDocuments(["ok", "  \n"]), /docs\[1\]/);
});

test("rank convention: rank = number of strictly better responses", () => {
  for (const ok of [[0, 1, 2], [2, 0, 1], [0, 0, 2], [1, 1, 0], [0, 0, 0], [0, 1, 1, 3]]) assert.ok(isValidRanking(ok), ok.join());
  for (const bad of [[0, 0, 1], [0, 2, 2], [1, 2, 3], [0, 1, 1, 2], [0, 0.5]]) assert.ok(!isValidRanking(bad), bad.join());
});

test("writers produce what readers read, and refuse what readers would refuse", () => {
  const sft = [{ prompt: "List the nouns: a cat.\nAnswer:", completion: " cat" }, { prompt: 'quote " and \\ and é', completion: " ✓" }];
  assert.deepEqual(parseJsonl(formatJsonl("sft", sft), "sft", { file: "w" }).records, sft);
  const rankings = [{ prompt: "p", responses: ["a", "b", "c"], ranking: [2, 0, 0] }];
  assert.equal(formatJsonl("rankings", rankings), '{"prompt":"p","responses":["a","b","c"],"ranking":[2,0,0]}\n');
  assert.deepEqual(parseJsonl(formatJsonl("rankings", rankings), "rankings", { file: "w" }).records, rankings);
  assert.throws(() => formatJsonl("sft", [sft[0], { prompt: "p", completion: "" }]), /records\[1\].completion: empty text/);
  assert.throws(() => formatJsonl("rankings", [{ prompt: "p", responses: ["a", "b"], ranking: [0, 2] }]), /records\[0\].ranking\[1\]/);
});

test("kind inference for check: .txt is text, JSON files by the first object line, else reported", () => {
  const p1 = file("mixed.jsonl", `garbage\n{"prompt":"p","chosen":"a","rejected":"b"}\n`);
  const r1 = checkDataFile(p1);
  assert.equal(r1.kind, "pairs");
  assert.equal(r1.inferred, true);
  assertIssues(r1.errors, p1, [[1, "json", /invalid JSON/]]);
  const p2 = file("plain.txt", "hello\n");
  assert.equal(checkDataFile(p2).kind, "text");
  assert.equal(checkDataFile(p2).errors.length, 0);
  const p3 = file("what.jsonl", "1\n2\n");
  assertIssues(checkDataFile(p3).errors, p3, [[0, "kind", /cannot tell the kind/]]);
  const p4 = file("forced.jsonl", `{"prompt":"p","completion":"c"}\n`);
  assertIssues(checkDataFile(p4, { kind: "pairs" }).errors, p4, [
    [1, "chosen", /missing field/],
    [1, "rejected", /missing field/],
    [0, "file", /no pairs records/],
  ]);
});

test("nothing crashes: random garbage lines are reported with valid line numbers", () => {
  const rng = new Rng(99);
  const keys = ["prompt", "completion", "responses", "ranking", "chosen", "rejected", "x", "__proto__", "constructor"];
  const value = (depth: number): unknown => {
    switch (rng.int(depth > 2 ? 5 : 8)) {
      case 0:
        return null;
      case 1:
        return rng.int(7) - 2 + (rng.uniform() < 0.2 ? 0.5 : 0);
      case 2:
        return rng.pick(["", " ", "a", "b", "é", "\u0000", "long ".repeat(rng.int(5))]);
      case 3:
        return rng.uniform() < 0.5;
      case 4:
        return "ok";
      case 5:
        return Array.from({ length: rng.int(5) }, () => value(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = rng.int(5); i > 0; i--) o[rng.pick(keys)] = value(depth + 1);
        return o;
      }
    }
  };
  for (const kind of JSONL_KINDS) {
    const lines: Buffer[] = [];
    for (let i = 0; i < 400; i++) {
      const r = rng.int(10);
      if (r === 0) lines.push(Buffer.from(Array.from({ length: rng.int(20) }, () => rng.int(256)).filter((b) => b !== 10)));
      else if (r === 1) lines.push(Buffer.from(JSON.stringify(value(0)).slice(0, rng.int(30))));
      else lines.push(Buffer.from(JSON.stringify(value(0)) ?? "undefined"));
    }
    const data = Buffer.concat(lines.flatMap((l) => [l, Buffer.from("\n")]));
    const path = file(`fuzz-${kind}.jsonl`, data);
    const r = readJsonlFile(path, kind, { skipBad: true });
    assert.equal(r.lines, 400);
    for (const e of r.errors) {
      assert.ok((e.line >= 1 && e.line <= 400) || (e.line === 0 && e.field === "file"), formatIssue(e));
      assert.ok(e.field.length > 0 && e.message.length > 0);
    }
    assert.ok(r.records.length + r.skipped <= 400);
    assert.ok(r.skipped > 100, `${kind}: ${r.skipped} bad lines`);
    for (const rec of r.records) assert.ok(typeof rec.prompt === "string" && rec.prompt.trim() !== "");
    checkDataFile(path);
    checkDataFile(path, { kind: "text" });
  }
});
