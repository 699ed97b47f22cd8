/**
 * A service's process configuration declared once, as a table: each entry says the variable's
 * name, default, limits and meaning, and how it parses. `parseEnv` turns the environment into the
 * typed config (one ConfigError line when a value is wrong), and `envTableMarkdown` writes the
 * table the docs show (docs/services.md, checked by each service's config test), so the names,
 * defaults and limits are written in one place.
 */
import { ConfigError, DEFAULT_METRICS_PORT, envAddress, envInt, envOptional, envPort, envRoots, envString, type MetricsEndpointConfig } from "./env";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { PathRoots } from "@rlhf/errors";

type Env = Record<string, string | undefined>;

/** One entry of a config table. */
export interface EnvVar<T> {
  /** The variable, e.g. `GRPC_PORT`; undefined for a field derived from others (not documented). */
  name?: string;
  /** Its meaning (the docs' last column). */
  doc: string;
  /** Its default as the docs show it ("–": unset, the feature is off). */
  defaultText: string;
  /** The values it accepts as the docs show them ("" when any). */
  limitsText: string;
  /** Reads it from the environment; a malformed value throws ConfigError with one line. */
  parse(env: Env): T;
}

/** A config table: field name -> variable, in the order they are parsed and documented. */
export type EnvTable = Record<string, EnvVar<unknown>>;

type ValueOf<V> = V extends EnvVar<infer T> ? T : never;
type OptionalKeys<T extends EnvTable> = { [K in keyof T]: undefined extends ValueOf<T[K]> ? K : never }[keyof T];
type RequiredKeys<T extends EnvTable> = Exclude<keyof T, OptionalKeys<T>>;

/** The typed config a table parses to (a field that may be unset is optional). */
export type EnvConfig<T extends EnvTable> = { [K in RequiredKeys<T>]: ValueOf<T[K]> } & { [K in OptionalKeys<T>]?: ValueOf<T[K]> };

/** Parses every variable of `table`, in its order; the first malformed one throws ConfigError. */
export function parseEnv<T extends EnvTable>(table: T, env: Env): EnvConfig<T> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(table)) out[key] = v.parse(env);
  return out as EnvConfig<T>;
}

/** 65536 -> "65,536"; whole MiB / GiB byte counts as "4 MiB" when `bytes`. */
function numberText(n: number, bytes = false): string {
  if (bytes && n >= 1024 ** 2) {
    if (n % 1024 ** 3 === 0) return `${n / 1024 ** 3} GiB`;
    if (n % 1024 ** 2 === 0) return `${n / 1024 ** 2} MiB`;
  }
  return n.toLocaleString("en-US");
}

/** Options shared by the numeric entries. */
interface IntOptions {
  min: number;
  max: number;
  doc: string;
  /** Show the default and limits as bytes (4 MiB). */
  bytes?: boolean;
  /** Overrides the default's text (e.g. "2^25"). */
  defaultText?: string;
}

/** The builders of table entries; each keeps today's parsing and error lines of `envInt`, `envAddress`, ... */
export const envVar = {
  /** An integer in [min, max]; `def` when unset. */
  int(name: string, def: number, o: IntOptions): EnvVar<number> {
    return { name, doc: o.doc, defaultText: o.defaultText ?? numberText(def, o.bytes), limitsText: `${numberText(o.min, o.bytes)}..${numberText(o.max, o.bytes)}`, parse: (env) => envInt(env, name, def, o.min, o.max) };
  },
  /** An integer in [min, max], or undefined when unset; `defaultText` says what unset means. */
  optionalInt(name: string, o: IntOptions & { defaultText: string }): EnvVar<number | undefined> {
    return {
      name,
      doc: o.doc,
      defaultText: o.defaultText,
      limitsText: `${numberText(o.min)}..${numberText(o.max)}`,
      parse: (env) => (envOptional(env, name) === undefined ? undefined : envInt(env, name, 0, o.min, o.max)),
    };
  },
  /** A TCP port (0 picks a free one). */
  port(name: string, def: number, doc: string): EnvVar<number> {
    return { name, doc, defaultText: String(def), limitsText: "0..65535", parse: (env) => envPort(env, name, def) };
  },
  /** A string; `def` when unset. */
  string(name: string, def: string, o: { doc: string; defaultText?: string }): EnvVar<string> {
    return { name, doc: o.doc, defaultText: o.defaultText ?? `\`${def}\``, limitsText: "", parse: (env) => envString(env, name, def) };
  },
  /** A string that may be unset. */
  optional(name: string, o: { doc: string; defaultText?: string }): EnvVar<string | undefined> {
    return { name, doc: o.doc, defaultText: o.defaultText ?? "–", limitsText: "", parse: (env) => envOptional(env, name) };
  },
  /** One of `values` (`def` when unset; undefined when there is no default). */
  choice<V extends string, D extends V | undefined>(name: string, values: readonly V[], def: D, o: { doc: string; defaultText?: string }): EnvVar<D extends undefined ? V | undefined : V> {
    const list = `${values.slice(0, -1).join(", ")} or ${values[values.length - 1]}`;
    return {
      name,
      doc: o.doc,
      defaultText: o.defaultText ?? (def === undefined ? "–" : `\`${def}\``),
      limitsText: values.map((v) => `\`${v}\``).join(", "),
      parse: (env) => {
        const v = def === undefined ? envOptional(env, name) : envString(env, name, def);
        if (v !== undefined && !(values as readonly string[]).includes(v)) throw new ConfigError(`${name} must be ${list}, got "${v}"`);
        return v as D extends undefined ? V | undefined : V;
      },
    };
  },
  /** A `host:port` address (also `dns:///host:port`); `def` when unset. */
  address(name: string, def: string, doc: string): EnvVar<string> {
    return { name, doc, defaultText: def, limitsText: "host:port", parse: (env) => envAddress(env, name, def) };
  },
  /** A `host:port` address, or undefined when unset. */
  optionalAddress(name: string, doc: string): EnvVar<string | undefined> {
    return { name, doc, defaultText: "–", limitsText: "host:port", parse: (env) => (envOptional(env, name) === undefined ? undefined : envAddress(env, name)) };
  },
  /** ':'-separated root folders requests are confined to (see `envRoots`); the default may come from another variable. */
  roots(name: string, def: string | ((env: Env) => string), o: { doc: string; defaultText?: string }): EnvVar<PathRoots> {
    return {
      name,
      doc: o.doc,
      defaultText: o.defaultText ?? `\`${typeof def === "string" ? def : ""}\``,
      limitsText: "`:`-separated paths",
      parse: (env) => envRoots(env, name, typeof def === "string" ? def : def(env)),
    };
  },
  /** A decimal number in [0, max]; `def` when unset. */
  fraction(name: string, def: number, max: number, doc: string): EnvVar<number> {
    return {
      name,
      doc,
      defaultText: String(def),
      limitsText: `0..${max}`,
      parse: (env) => {
        const raw = env[name];
        if (raw === undefined || raw === "") return def;
        const v = Number(raw.trim());
        if (!/^\s*\d*\.?\d+(e-?\d+)?\s*$/i.test(raw) || !Number.isFinite(v) || v < 0 || v > max) {
          throw new ConfigError(`${name} must be a number in [0, ${max}], got "${raw}"`);
        }
        return v;
      },
    };
  },
  /** Anything else: the parser and its documentation given as they are. */
  custom<T>(name: string, o: { doc: string; defaultText: string; limitsText?: string; parse(env: Env): T }): EnvVar<T> {
    return { name, doc: o.doc, defaultText: o.defaultText, limitsText: o.limitsText ?? "", parse: o.parse };
  },
  /** A field computed from other variables; not a variable of its own, so not documented. */
  derived<T>(doc: string, parse: (env: Env) => T): EnvVar<T> {
    return { doc, defaultText: "", limitsText: "", parse };
  },
};

/** GRPC_HOST and GRPC_PORT of a service whose default port is `port`. */
export function listenEnv(port: number) {
  return {
    host: envVar.string("GRPC_HOST", "127.0.0.1", { doc: "interface to listen on (loopback only by default)", defaultText: "127.0.0.1" }),
    port: envVar.port("GRPC_PORT", port, "port to listen on; 0 picks a free one"),
  };
}

/** METRICS_HOST / METRICS_PORT (see `envMetrics`, which parses them the same way). */
export const METRICS_ENV = {
  metricsHost: envVar.custom("METRICS_HOST", {
    doc: "interface of the Prometheus endpoint (0.0.0.0 in containers)",
    defaultText: "127.0.0.1",
    limitsText: "host name or IP address",
    parse: (env): string => {
      const metricsHost = envString(env, "METRICS_HOST", "127.0.0.1").trim();
      // A host name or an IP address; no port, scheme or path (METRICS_PORT says the port).
      if (!/^([A-Za-z0-9.-]+|\[?[0-9a-fA-F:.]+\]?)$/.test(metricsHost) || /^[A-Za-z0-9.-]+:\d+$/.test(metricsHost)) {
        throw new ConfigError(`METRICS_HOST must be a host name or an IP address (the port goes in METRICS_PORT), got "${env.METRICS_HOST}"`);
      }
      return metricsHost.replace(/^\[(.*)\]$/, "$1");
    },
  }),
  metricsPort: envVar.port("METRICS_PORT", DEFAULT_METRICS_PORT, "port of the Prometheus endpoint http://METRICS_HOST:METRICS_PORT/metrics; 0 turns it off"),
  metricsPortRequired: envVar.derived("METRICS_PORT was set, so a busy port stops the start (a busy default port only logs a warning)", (env) => envOptional(env, "METRICS_PORT") !== undefined),
};

/** METRICS_HOST and METRICS_PORT, parsed once; a malformed value throws one clear ConfigError line. */
export function envMetrics(env: Env): MetricsEndpointConfig {
  return parseEnv(METRICS_ENV, env);
}

/** MAX_RECEIVE_BYTES: largest gRPC message accepted. */
export function maxReceiveBytesEnv(doc = "largest gRPC message accepted") {
  return envVar.int("MAX_RECEIVE_BYTES", 4 * 1024 * 1024, { min: 1024, max: 1024 ** 3, bytes: true, doc });
}

/** MAX_UPLOAD_BYTES: largest streamed tensor set accepted. */
export function maxUploadBytesEnv(doc: string) {
  return envVar.int("MAX_UPLOAD_BYTES", 8 * 1024 ** 3, { min: 1, max: 64 * 1024 ** 3, bytes: true, doc: `${doc}; also the most that all sets being received at once may hold together (RESOURCE_EXHAUSTED past it)` });
}

/** QUEUE_CAPACITY: calls waiting at most in the service's queue. */
export function queueCapacityEnv(def: number, doc: string) {
  return envVar.int("QUEUE_CAPACITY", def, { min: 1, max: 10_000, doc });
}

/** SHUTDOWN_GRACE_MS: time in-flight calls get on SIGTERM. */
export const SHUTDOWN_GRACE_ENV = envVar.int("SHUTDOWN_GRACE_MS", 10_000, { min: 0, max: 600_000, doc: "time in-flight calls get to finish after SIGTERM" });

/** `<NAME>_DEADLINE_MS` of a weight pull from another service. */
export function pullDeadlineEnv(name: string, from: string) {
  return envVar.int(name, 600_000, { min: 1000, max: 3_600_000, doc: `deadline of a weight pull from the ${from}` });
}

/** FILE_DEADLINE_MS: how long a checkpoint save or load may take before its call is given up. */
export function fileDeadlineEnv() {
  return envVar.int("FILE_DEADLINE_MS", 600_000, {
    min: 1000,
    max: 86_400_000,
    doc: "deadline of a checkpoint save or load: past it the call gets DEADLINE_EXCEEDED, and health reports NOT_SERVING until the file operation ends (a path that never completes wedges no caller)",
  });
}

/** Escapes a table cell: pipes and line breaks would break the row. */
function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

/** The table's documentation: `| variable | default | limits | meaning |`, one row per variable. */
export function envTableMarkdown(table: EnvTable): string {
  const lines = ["| variable | default | limits | meaning |", "|---|---|---|---|"];
  for (const v of Object.values(table)) {
    if (v.name === undefined) continue;
    lines.push(`| \`${v.name}\` | ${cell(v.defaultText)} | ${cell(v.limitsText)} | ${cell(v.doc)} |`);
  }
  return lines.join("\n") + "\n";
}

/** The markers around a service's generated table in a markdown file. */
function markers(id: string): [string, string] {
  return [`<!-- env:${id} (generated from the service's config table: pnpm docs:env) -->\n`, `<!-- /env:${id} -->`];
}

/** The generated block of `id` in `markdown` (undefined when its markers are missing). */
export function envDocsBlock(markdown: string, id: string): string | undefined {
  const [open, close] = markers(id);
  const a = markdown.indexOf(open);
  const b = markdown.indexOf(close);
  return a < 0 || b < a ? undefined : markdown.slice(a + open.length, b);
}

/** `markdown` with the generated block of `id` replaced by `table`'s documentation. */
export function withEnvDocs(markdown: string, id: string, table: EnvTable): string {
  const [open, close] = markers(id);
  const a = markdown.indexOf(open);
  const b = markdown.indexOf(close);
  if (a < 0 || b < a) throw new Error(`no "${open.trim()}" ... "${close}" block`);
  return markdown.slice(0, a + open.length) + envTableMarkdown(table) + markdown.slice(b);
}

/**
 * Throws unless docs/services.md (found from `fromDir` upwards) holds `table`'s generated block
 * `id` as it is now: a service's config test calls it so that the docs never drift from the table.
 */
export function checkEnvDocs(fromDir: string, id: string, table: EnvTable): void {
  let dir = fromDir;
  while (!existsSync(join(dir, "docs", "services.md"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no docs/services.md above ${fromDir}`);
    dir = up;
  }
  const block = envDocsBlock(readFileSync(join(dir, "docs", "services.md"), "utf8"), id);
  if (block !== envTableMarkdown(table)) throw new Error(`docs/services.md's ${id} table is not the generated one: run \`pnpm docs:env\``);
}

/** RUN_LEASE_TTL_MS: how long a run's lease on a model service outlives the run's last call (lease.ts). */
export function runLeaseTtlEnv() {
  return envVar.int("RUN_LEASE_TTL_MS", 600_000, {
    min: 10_000,
    max: 86_400_000,
    doc: "a run's lease on this service lapses after this long without a call from it (a coordinator that died); the coordinator renews it three times per this span while the run runs and gives it back when the run ends (docs/errors.md)",
  });
}
