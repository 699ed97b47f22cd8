/**
 * `@rlhf/report`: the evaluation report of a run: report.json and one self-contained HTML page
 * with Chart.js plots (inlined, opens offline). No gRPC.
 */
export * from "./types";
export { type AcceptanceCheck, type Comparison, type KlSummary, ACCEPTANCE_THRESHOLDS, acceptanceChecks, acceptanceSummary, checkTarget, klSummary, observedKl, winRate } from "./acceptance";
export { type ReportJson, REPORT_SCHEMA_VERSION, reportJson, reportDataFromJson, validateReportData } from "./json";
export { type ChartSpec, type PlotLibrary, renderReportHtml, reportCharts, iterationCharts, escapeHtml, plotLibrary } from "./html";
export { type ReportField, REPORT_JSON_FIELDS, REPORT_ITERATION_METRICS, reportFieldsMarkdown, reportFieldsDocument } from "./fields";
export { REPORT_FILES, writeReport } from "./write";
