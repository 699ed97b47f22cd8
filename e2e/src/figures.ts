/** A run's report figures, for comparing two runs of the same config (the fault suite, the e2e tests). */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** report.json without what differs between two runs of the same config: timings, ids, paths. */
export function figures(runDir: string): unknown {
  const clean = (o: unknown): unknown => {
    if (Array.isArray(o)) return o.map(clean);
    if (o && typeof o === "object") {
      return Object.fromEntries(
        Object.entries(o)
          .filter(([k]) => !k.endsWith("_ms") && !["run", "timeline"].includes(k) && !k.startsWith("throughput/") && k !== "tokens_per_second")
          .map(([k, v]) => [k, clean(v)]),
      );
    }
    return o;
  };
  return clean(JSON.parse(readFileSync(join(runDir, "report.json"), "utf8")));
}

/** Paths of figures that differ (at most 5 named), or [] when equal. */
export function differences(a: unknown, b: unknown, path = ""): string[] {
  if (a && b && typeof a === "object" && typeof b === "object") {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => differences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [path || "."];
}
