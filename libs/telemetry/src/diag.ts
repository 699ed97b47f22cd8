/**
 * OpenTelemetry's own warnings and errors (an exporter that cannot reach its endpoint, spans
 * dropped from a full queue) as JSON lines on stderr, like the services' logs, at most one line
 * per message kind a minute with the count of those held back; nothing is thrown.
 */
import { diag, DiagLogLevel, type DiagLogger } from "@opentelemetry/api";

/** Counters of what the diag logger saw. */
export const diagCounts = { warnings: 0, errors: 0 };

let installed = false;

/** Installs the logger once per process (WARN and above). */
export function installDiagLogger(service: string, everyMs = 60_000, write: (line: string) => void = (l) => process.stderr.write(l)): void {
  if (installed) return;
  installed = true;
  const last = new Map<string, { at: number; held: number }>();
  const emit = (level: "warn" | "error", raw: string, args: unknown[]) => {
    // The SDK's global error handler passes an error serialised as JSON: keep its message.
    const message = errorMessageOf(raw);
    if (level === "warn") diagCounts.warnings++;
    else diagCounts.errors++;
    // One kind = the message without its numbers (e.g. "Dropped 12 spans ...").
    const kind = `${level}:${message.replace(/\d+/g, "#").slice(0, 120)}`;
    const now = Date.now();
    const seen = last.get(kind);
    if (seen && now - seen.at < everyMs) {
      seen.held++;
      return;
    }
    last.set(kind, { at: now, held: 0 });
    const detail = args.map((a) => (a instanceof Error ? a.message : typeof a === "string" ? a : safeJson(a))).join(" ");
    // pino's numeric levels (40 warn, 50 error), like every other log line of the services.
    const line = { level: level === "warn" ? 40 : 50, time: now, service, msg: `opentelemetry: ${message}${detail ? ` ${detail}` : ""}`.slice(0, 2000), heldBack: seen?.held ?? 0 };
    write(JSON.stringify(line) + "\n");
  };
  const logger: DiagLogger = {
    error: (m, ...a) => emit("error", m, a),
    warn: (m, ...a) => emit("warn", m, a),
    info: () => undefined,
    debug: () => undefined,
    verbose: () => undefined,
  };
  diag.setLogger(logger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
}

function errorMessageOf(raw: string): string {
  if (!raw.startsWith("{")) return raw;
  try {
    const o = JSON.parse(raw) as { message?: unknown };
    return typeof o.message === "string" ? o.message : raw;
  } catch {
    return raw;
  }
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}
