import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError } from "@rlhf/errors";
import { renderReportHtml } from "./html";
import { reportDataFromJson, reportJson } from "./json";
import { fullReportData } from "./testing/fixture";
import { type ReportData } from "./types";
import { writeReport } from "./write";

test("writeReport writes report.json and report.html into a new folder", (t) => {
  const root = mkdtempSync(join(tmpdir(), "rlhf-report-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "runs", "demo-1");
  const data = fullReportData();
  const paths = writeReport(dir, data);
  assert.deepEqual(paths, { json: join(dir, "report.json"), html: join(dir, "report.html") });
  assert.deepEqual(readdirSync(dir).sort(), ["report.html", "report.json"]);
  const json = JSON.parse(readFileSync(paths.json, "utf8"));
  assert.deepEqual(json, JSON.parse(JSON.stringify(reportJson(data))));
  assert.deepEqual(reportDataFromJson(json), data);
  assert.equal(readFileSync(paths.html, "utf8"), renderReportHtml(data));
  // Writing again replaces both.
  writeReport(dir, { ...data, run: { ...data.run, id: "demo-2" } });
  assert.equal(JSON.parse(readFileSync(paths.json, "utf8")).run.id, "demo-2");
});

test("bad data writes nothing", (t) => {
  const root = mkdtempSync(join(tmpdir(), "rlhf-report-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, "out");
  const d = fullReportData();
  const bad = { ...d, reward_model: { ...d.reward_model!, heldout_accuracy: 2 } } as ReportData;
  assert.throws(() => writeReport(dir, bad), (e: unknown) => e instanceof InvalidArgumentError && e.field === "reward_model.heldout_accuracy");
  assert.equal(existsSync(dir), false);
});
