import { ConfigError } from "@rlhf/errors";

const SERVER = /^(?:(nats|tls|ws|wss):\/\/)?(?:[^@/\s]+@)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?\/?$/;

/**
 * Parses a NATS server list: one or more comma-separated `nats://host:port` (also `host:port`,
 * `tls://`, `ws://`, `wss://`; port default 4222; `user:pass@` allowed). Throws ConfigError
 * naming `name` and the bad entry.
 */
export function parseNatsServers(raw: string, name = "NATS_URL"): string[] {
  const servers = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (servers.length === 0) throw new ConfigError(`${name} must be nats://host:port (comma-separated for several servers), got "${raw}"`);
  for (const s of servers) {
    const m = SERVER.exec(s);
    const port = m?.[3] === undefined ? 4222 : Number(m[3]);
    if (!m || port < 1 || port > 65535) throw new ConfigError(`${name} must be nats://host:port (comma-separated for several servers), got "${s}"`);
  }
  return servers;
}

/**
 * NATS_URL from the environment, parsed once at start: the server list, or undefined when
 * unset or empty (no NATS: events go to the run folder only).
 */
export function natsServersFromEnv(env: Record<string, string | undefined> = process.env, name = "NATS_URL"): string[] | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  return parseNatsServers(raw, name);
}

/**
 * NATS_URL as an entry of a service's config table (the shape of `EnvVar` of @rlhf/grpc-kit):
 * `what` says which events the service publishes there.
 */
export function natsEnvVar(what: string) {
  return {
    name: "NATS_URL",
    doc: `NATS server(s) with JetStream (\`nats://host:port\`, comma-separated for several) that get ${what} (see @rlhf/events)`,
    defaultText: "– (no NATS)",
    limitsText: "nats://host:port,...",
    parse: (env: Record<string, string | undefined>) => natsServersFromEnv(env),
  };
}
