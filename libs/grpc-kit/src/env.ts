import { ConfigError, parseRootList, type PathRoots } from "@rlhf/errors";

// Process wiring from environment variables, parsed once at start. A missing or malformed value
// throws ConfigError with one clear line; `exitOnConfigError` prints it and exits 2.
export { ConfigError, freePort } from "@rlhf/errors";

type Env = Record<string, string | undefined>;

/** Integer variable within [min, max]; `def` when unset. */
export function envInt(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be an integer, got "${raw}"`);
  const v = Number(raw.trim());
  if (v < min || v > max) throw new ConfigError(`${name} must be in [${min}, ${max}], got ${v}`);
  return v;
}

/** String variable; `def` when unset (undefined def means required). */
export function envString(env: Env, name: string, def?: string): string {
  const raw = env[name];
  if (raw === undefined || raw === "") {
    if (def === undefined) throw new ConfigError(`${name} is required but not set`);
    return def;
  }
  return raw;
}

/** Optional string variable. */
export function envOptional(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw === "" ? undefined : raw;
}

/** A TCP port (0 = pick a free one). */
export function envPort(env: Env, name: string, def: number): number {
  return envInt(env, name, def, 0, 65535);
}

/** A `host:port` address (also `dns:///host:port`, `[::1]:port`). */
export function envAddress(env: Env, name: string, def?: string): string {
  const v = envString(env, name, def);
  if (!/^(dns:\/\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(v)) {
    throw new ConfigError(`${name} must look like host:port, got "${v}"`);
  }
  return v;
}

/**
 * The root folders a service confines request paths to (see `confinePath` of @rlhf/errors):
 * `name` holds one path or several separated by ':' (like PATH); relative ones resolve against
 * the working directory. `def` when unset (services default to the runs folder, `runs`).
 */
export function envRoots(env: Env, name: string, def: string): PathRoots {
  const dirs = parseRootList(envString(env, name, def));
  if (dirs.length === 0) throw new ConfigError(`${name} must name at least one folder, got "${env[name]}"`);
  if (dirs.some((d) => d.includes("\0"))) throw new ConfigError(`${name} must not contain NUL bytes`);
  return { dirs, name };
}

/** Where a service's Prometheus endpoint listens: `http://<metricsHost>:<metricsPort>/metrics`. */
export interface MetricsEndpointConfig {
  /** METRICS_HOST: interface of the Prometheus endpoint. Default 127.0.0.1 (0.0.0.0 in containers). */
  metricsHost: string;
  /** METRICS_PORT: port of the Prometheus endpoint (path /metrics); 0 turns it off. Default 9464. */
  metricsPort: number;
  /**
   * True when METRICS_PORT was set: the port must then be free or the service does not start.
   * With the default port, a busy 9464 only costs a warning (several services on one laptop).
   */
  metricsPortRequired: boolean;
}

/** Default METRICS_PORT of every service (Prometheus' registered exporter port). */
export const DEFAULT_METRICS_PORT = 9464;

/** Prints a ConfigError as one line and exits 2; rethrows anything else. */
export function exitOnConfigError(err: unknown, service: string): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`${service}: configuration error: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
