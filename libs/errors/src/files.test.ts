import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DomainError, readJsonFile, writeFileAtomic, writeFileAtomicSync, writeJsonAtomic } from "./index";

test("atomic writes replace the file whole and leave no temporary file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "files-"));
  const p = join(dir, "a.json");
  await writeJsonAtomic(p, { a: 1 });
  assert.equal(readFileSync(p, "utf8"), '{\n  "a": 1\n}\n');
  await writeFileAtomic(p, "x");
  writeFileAtomicSync(join(dir, "b"), "y");
  assert.deepEqual([readFileSync(p, "utf8"), readdirSync(dir).sort()], ["x", ["a.json", "b"]]);
  await assert.rejects(writeFileAtomic(join(dir, "missing", "c"), "z"), /ENOENT/);
  assert.deepEqual(readdirSync(dir).sort(), ["a.json", "b"]);
});

test("readJsonFile: NOT_FOUND and INVALID_ARGUMENT name the file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "files-"));
  const p = join(dir, "state.json");
  const is = (code: string, msg: RegExp) => (e: unknown) => e instanceof DomainError && e.code === code && e.field === p && msg.test(e.message);
  await assert.rejects(readJsonFile(p), is("NOT_FOUND", /: no such file$/));
  await assert.rejects(readJsonFile(p, "no such file: not a checkpoint"), is("NOT_FOUND", /: no such file: not a checkpoint$/));
  writeFileSync(p, "{oops");
  await assert.rejects(readJsonFile(p), is("INVALID_ARGUMENT", /: not valid JSON: /));
  writeFileSync(p, '{"version": 3}');
  assert.deepEqual(await readJsonFile<{ version: number }>(p), { version: 3 });
});
