import pino, { type Logger } from "pino";

export type { Logger } from "pino";

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Service name, logged on every line as `service`. */
  service: string;
  /** Service version, logged as `version`. Default: "0.1.0". */
  version?: string;
  /** pino level; default from LOG_LEVEL, else "info". */
  level?: string;
  /** Destination stream; default stdout. Tests pass their own to read the lines. */
  destination?: pino.DestinationStream;
}

/** What a redacted secret is replaced with. */
export const REDACTED = "[REDACTED]";

/**
 * Field names whose values are secrets wherever they appear: passwords, tokens, authorization
 * headers, API keys, credentials, OTLP headers. Counts such as `tokens` or `maxBatchTokens` are
 * not secrets (plural, or a prefix before "Token").
 */
const SECRET_KEY = /^(pass|passwd|password|secret|token|bearer|authorization|auth|api[-_]?key|x-api-key|credentials?|cookie|headers|otel_exporter_otlp(_\w+)?_headers)$|(^|[-_])(password|secret|token|api[-_]?key)$|[a-z](Password|Secret|Token|ApiKey|Credentials?)$/i;

/** `scheme://user:password@` and `scheme://token@` in URLs. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^/@\s:"',]+)(:[^/@\s"',]*)?@/gi;
/** `Bearer <token>` / `Basic <credentials>`. */
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
/** `authorization=...`, `api-key=...`, `password=...` in header lists and query strings. */
const SECRET_PAIR = /\b(authorization|api[-_]?key|x-api-key|token|access_token|password|passwd|secret)=([^,&\s"']+)/gi;

/** A string with credentials in URLs, bearer/basic tokens and secret `key=value` pairs replaced. */
export function redactString(s: string): string {
  if (!s.includes("@") && !s.includes("=") && !/bearer|basic/i.test(s)) return s;
  return s
    .replace(URL_USERINFO, (_m, scheme: string, user: string, pass?: string) => `${scheme}${pass === undefined ? REDACTED : `${user}:${REDACTED}`}@`)
    .replace(AUTH_SCHEME, (_m, scheme: string) => `${scheme} ${REDACTED}`)
    .replace(SECRET_PAIR, (_m, key: string) => `${key}=${REDACTED}`);
}

/**
 * A copy of `value` fit for a log line: values under secret-looking keys replaced, and secrets
 * inside strings (URL passwords, bearer tokens, `authorization=` pairs) masked. Errors become
 * `{type, message, stack}` with the same masking.
 */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redactString(value);
  if (value === null || typeof value !== "object" || depth > 8) return value;
  if (value instanceof Error) {
    return { type: value.name, message: redactString(value.message), ...(value.stack ? { stack: redactString(value.stack) } : {}) };
  }
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1));
  if (ArrayBuffer.isView(value) || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null && v !== "" ? REDACTED : redactSecrets(v, depth + 1);
  return out;
}

/**
 * Structured JSON logger (pino) carrying `{service, version}` on every line.
 * Log shapes and counts, never tensors, token arrays or secrets: secrets are also redacted here,
 * in one place (see {@link redactSecrets}), from fields, child bindings and messages alike.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const level = opts.level ?? process.env.LOG_LEVEL ?? "info";
  const base = { service: opts.service, version: opts.version ?? "0.1.0" };
  const options: pino.LoggerOptions = {
    level,
    base,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      log: (obj) => redactSecrets(obj) as Record<string, unknown>,
      bindings: (b) => redactSecrets(b) as Record<string, unknown>,
    },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === "string" ? redactString(a) : a)) as Parameters<typeof method>);
      },
    },
  };
  return redactChildren(opts.destination ? pino(options, opts.destination) : pino(options));
}

/** Child loggers' bindings are redacted too (pino's `formatters.bindings` sees only the root's). */
function redactChildren(log: Logger): Logger {
  const child = log.child.bind(log);
  const redacted = (bindings: pino.Bindings, options?: pino.ChildLoggerOptions): Logger => redactChildren(child(redactSecrets(bindings) as pino.Bindings, options));
  log.child = redacted as unknown as Logger["child"];
  return log;
}
