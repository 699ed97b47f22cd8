/** Writes report.json and report.html into a folder. */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderReportHtml } from "./html";
import { reportJson } from "./json";
import { type ReportData } from "./types";

/** File names inside the report folder. */
export const REPORT_FILES = Object.freeze({ json: "report.json", html: "report.html" });

function writeAtomically(path: string, content: string): void {
  // A reader (or a crash) never sees half a file.
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

/**
 * Writes `report.json` (pretty-printed, newline-terminated) and `report.html` into `dir`
 * (created if needed) and returns their paths. The data is validated first: a bad field is an
 * InvalidArgumentError naming it, and nothing is written.
 */
export function writeReport(dir: string, data: ReportData): { json: string; html: string } {
  const json = `${JSON.stringify(reportJson(data), null, 2)}\n`;
  const html = renderReportHtml(data);
  mkdirSync(dir, { recursive: true });
  const paths = { json: join(dir, REPORT_FILES.json), html: join(dir, REPORT_FILES.html) };
  writeAtomically(paths.json, json);
  writeAtomically(paths.html, html);
  return paths;
}
