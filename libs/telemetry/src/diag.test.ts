import { test } from "node:test";
import assert from "node:assert/strict";
import { diag } from "@opentelemetry/api";
import { diagCounts, installDiagLogger } from "./diag";

test("OpenTelemetry's warnings and errors become JSON log lines, one per kind a minute, counted", () => {
  const lines: string[] = [];
  installDiagLogger("svc", 60_000, (l) => lines.push(l));
  diag.warn("Dropped 12 spans because maxQueueSize reached");
  diag.warn("Dropped 3 spans because maxQueueSize reached"); // same kind: held back
  diag.error(JSON.stringify({ message: "connect ECONNREFUSED 127.0.0.1:4318", stack: "..." }));
  diag.info("not logged");
  assert.equal(lines.length, 2);
  const [a, b] = lines.map((l) => JSON.parse(l) as { level: number; service: string; msg: string });
  assert.deepEqual(a, { ...a, level: 40, service: "svc", msg: "opentelemetry: Dropped 12 spans because maxQueueSize reached" });
  assert.deepEqual(b, { ...b, level: 50, msg: "opentelemetry: connect ECONNREFUSED 127.0.0.1:4318" });
  assert.deepEqual({ ...diagCounts }, { warnings: 2, errors: 1 });
});
