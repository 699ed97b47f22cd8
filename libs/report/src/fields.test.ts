import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPORT_ITERATION_METRICS, REPORT_JSON_FIELDS, reportFieldsDocument, reportFieldsMarkdown } from "./fields";
import { reportJson } from "./json";
import { fullReportData, noGoldReportData } from "./testing/fixture";

const VARYING: Record<string, string> = {
  models: "<model>",
  responses: "<model>",
  elapsed_ms: "<stage>",
  max_observed: "<variant>",
  iterations: "<variant>",
  values: "<metric>",
  not_applicable: "<metric>",
  attributes: "<name>",
  curves: "<stage>",
  by_family: "<family>",
};

/** The documented path of every field in a report.json object (opaque run.config, ci95 and curve points not descended). */
function fieldPaths(v: unknown, path = "", parentKey = "", out = new Set<string>()): Set<string> {
  if (path) out.add(path);
  if (path === "run.config" || path.endsWith(".ci95") || path === "curves.<stage>[]") return out;
  if (Array.isArray(v)) {
    for (const x of v) fieldPaths(x, `${path}[]`, parentKey, out);
  } else if (typeof v === "object" && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      const name = VARYING[parentKey] ?? k;
      fieldPaths(x, path ? `${path}.${name}` : name, k, out);
    }
  }
  return out;
}

test("REPORT.md is the generated document (run `pnpm --filter @rlhf/report run docs` after changing fields.ts)", () => {
  assert.equal(readFileSync(join(__dirname, "..", "REPORT.md"), "utf8"), reportFieldsDocument());
});

test("every field report.json has is documented, and every documented field occurs", () => {
  // A run on the built-in data has every section; one on users' data adds `not_applicable`.
  const actual = fieldPaths(reportJson(noGoldReportData()), "", "", fieldPaths(reportJson(fullReportData())));
  // Arrays of records are documented by their item path.
  const documented = new Set(REPORT_JSON_FIELDS.map((f) => f.path));
  const missing = [...actual].filter((p) => !documented.has(p) && !documented.has(`${p}[]`));
  assert.deepEqual(missing, []);
  const unused = [...documented].filter((p) => !actual.has(p));
  assert.deepEqual(unused, []);
  for (const f of REPORT_JSON_FIELDS) assert.ok(f.meaning.length > 0 && f.type.length > 0, f.path);
});

test("the markdown table has a row per field and per plotted metric", () => {
  const md = reportFieldsMarkdown();
  assert.ok(md.startsWith("| path | type | unit | meaning |\n|---|---|---|---|\n"));
  for (const f of [...REPORT_JSON_FIELDS, ...REPORT_ITERATION_METRICS]) assert.ok(md.includes(`| \`${f.path}\` |`), f.path);
  assert.ok(md.includes("| `run.finished` | string \\| null |"), "pipes in types are escaped");
});
