/**
 * OpenTelemetry's own warnings and errors (an exporter that cannot reach its endpoint, spans
 * dropped from a full queue) as JSON lines on stderr in the services' log format (pino's numeric
 * level, ISO `time`, `service`, `version`, `msg`), at most one line per message kind a minute with
 * the count of those held back; nothing is thrown.
 */
import { diag, DiagLogLevel, type DiagLogger } from "@opentelemetry/api";

/** Counters of what the diag logger saw. */
export const diagCounts = { warnings: 0, errors: 0 };

/** Options of {@link createDiagLogger}. */
export interface DiagLoggerOptions {
  /** Logged as `version`, as the services' pino loggers do. Default "0.1.0". */
  version?: string;
  /** Lines of one kind are logged at most once in this many ms. Default 60,000. */
  everyMs?: number;
  /** Where lines go. Default: process.stderr. */
  write?: (line: string) => void;
  /** Clock (ms since the epoch). Default Date.now. */
  now?: () => number;
}

/**
 * Messages of an export that did not finish in time: the BatchSpanProcessor's `Timeout`, the
 * metric reader's `Operation timed out.`, the OTLP HTTP transport's `Request timed out`. The SDK
 * drops that batch and goes on, and training never waits for it, so these are warnings (level 40),
 * not errors; a run without a collector (the CLI's loopback receiver busy or already closed at the
 * end) sees them too.
 */
const EXPORT_TIMEOUT = /^(timeout|operation timed out\.?|request timed out)$/i;

/** A DiagLogger that writes pino-shaped JSON lines (WARN and above; timeouts are warnings). */
export function createDiagLogger(service: string, opts: DiagLoggerOptions = {}): DiagLogger {
  const everyMs = opts.everyMs ?? 60_000;
  const write = opts.write ?? ((l: string) => void process.stderr.write(l));
  const now = opts.now ?? Date.now;
  const version = opts.version ?? "0.1.0";
  const last = new Map<string, { at: number; held: number }>();
  const emit = (asked: "warn" | "error", raw: string, args: unknown[]) => {
    // The SDK's global error handler passes an error serialised as JSON: keep its message.
    let message = errorMessageOf(raw);
    let level = asked;
    if (EXPORT_TIMEOUT.test(message.trim())) {
      level = "warn";
      message = `${message.trim()} (an export did not finish in time; that batch was dropped, training goes on)`;
    }
    if (level === "warn") diagCounts.warnings++;
    else diagCounts.errors++;
    // One kind = the message without its numbers (e.g. "Dropped 12 spans ...").
    const kind = `${level}:${message.replace(/\d+/g, "#").slice(0, 120)}`;
    const at = now();
    const seen = last.get(kind);
    if (seen && at - seen.at < everyMs) {
      seen.held++;
      return;
    }
    last.set(kind, { at, held: 0 });
    const detail = args.map((a) => (a instanceof Error ? a.message : typeof a === "string" ? a : safeJson(a))).join(" ");
    // The key order and time format of the services' pino lines (grpc-kit's createLogger:
    // numeric level, then ISO time, then {service, version}, msg last).
    const line = {
      level: level === "warn" ? 40 : 50,
      time: new Date(at).toISOString(),
      service,
      version,
      heldBack: seen?.held ?? 0,
      msg: `opentelemetry: ${message}${detail ? ` ${detail}` : ""}`.slice(0, 2000),
    };
    write(JSON.stringify(line) + "\n");
  };
  return {
    error: (m, ...a) => emit("error", m, a),
    warn: (m, ...a) => emit("warn", m, a),
    info: () => undefined,
    debug: () => undefined,
    verbose: () => undefined,
  };
}

let installed = false;

/** Installs {@link createDiagLogger}'s logger as OpenTelemetry's, once per process (WARN and above). */
export function installDiagLogger(service: string, opts: DiagLoggerOptions = {}): void {
  if (installed) return;
  installed = true;
  diag.setLogger(createDiagLogger(service, opts), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
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
