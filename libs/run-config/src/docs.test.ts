import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runConfigDocument, runConfigMarkdown } from "./docs";
import { CROSS_FIELD_RULES, RUN_CONFIG_SCHEMA } from "./run-config";
import { leaves } from "./schema";

test("CONFIG.md is the generated document (run `pnpm --filter @rlhf/run-config run docs` after changing the schema)", () => {
  const committed = readFileSync(join(__dirname, "..", "CONFIG.md"), "utf8");
  assert.equal(committed, runConfigDocument());
});

test("the table has one row per key with the six columns", () => {
  const md = runConfigMarkdown();
  const lines = md.split("\n");
  assert.equal(lines[0], "| key | type | default | paper | limits | description |");
  for (const { path, leaf } of leaves(RUN_CONFIG_SCHEMA)) {
    const row = lines.find((l) => l.startsWith(`| \`${path}\` |`));
    assert.ok(row, `row for ${path}`);
    // 6 cells: 7 unescaped pipes.
    assert.equal(row.replace(/\\\|/g, "").split("|").length, 8, row);
    assert.ok(row.includes(leaf.description.replace(/\|/g, "\\|")), path);
  }
  assert.match(md, /\| `ppo\.kl\.beta` \| number \(reward per nat\) \| `0\.02` \| 0\.02 \| 0\.\.100 \|/);
  assert.match(md, /\| `ppo\.ptx\.gamma` \| number \| `1` \| 27\.8 \|/);
  assert.match(md, /\| `model\.n_embd` \| int \| from `model\.preset` \|/);
  for (const r of CROSS_FIELD_RULES) assert.ok(md.includes(`- ${r.doc}\n`), r.doc);
});
