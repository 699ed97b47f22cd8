/** Writes report.json and report.html into a folder. */
import { mkdirSync } from "node:fs";
import { writeFileAtomicSync } from "@rlhf/errors";
import { join } from "node:path";
import { renderReportHtml } from "./html";
import { reportJson } from "./json";
import { type ReportData } from "./types";

/** File names inside the report folder. */
export const REPORT_FILES = Object.freeze({ json: "report.json", html: "report.html" });

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
  writeFileAtomicSync(paths.json, json);
  writeFileAtomicSync(paths.html, html);
  return paths;
}
