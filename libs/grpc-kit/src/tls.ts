/**
 * Transport security from the environment, in one place for every server and client:
 * - a server serves TLS with GRPC_TLS_CERT_FILE + GRPC_TLS_KEY_FILE, and mutual TLS (only clients
 *   with a certificate from that CA) with GRPC_TLS_CLIENT_CA_FILE too;
 * - a client speaks TLS when GRPC_TLS_CA_FILE names the CA that signed the servers' certificates,
 *   presenting GRPC_TLS_CLIENT_CERT_FILE + GRPC_TLS_CLIENT_KEY_FILE (else its own server
 *   certificate and key, when it has them) to servers that require one; GRPC_TLS_SERVER_NAME
 *   overrides the name checked against the servers' certificates;
 * - a server bound to an address other than loopback refuses to start without TLS unless
 *   RLHF_INSECURE=1 (`rlhf serve --insecure`).
 * Files are PEM. They are read at start: a new certificate takes a restart (a rolling one in
 * Kubernetes). See docs/security.md.
 */
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { ConfigError } from "./env";

type Env = Record<string, string | undefined>;

/** A server's TLS material (PEM). */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** Set: mutual TLS, clients must present a certificate signed by this CA. */
  clientCa?: Buffer;
}

/** A client's TLS material (PEM). */
export interface ClientTls {
  /** CA of the servers' certificates. */
  ca: Buffer;
  /** The client's own certificate and key, for servers that require one. */
  cert?: Buffer;
  key?: Buffer;
  /** Name checked against the server's certificate instead of the address's host. */
  serverName?: string;
}

function readPem(env: Env, name: string): Buffer {
  const path = env[name] as string;
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (e) {
    throw new ConfigError(`${name}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`);
  }
  // Only the PEM header is checked here (never echo a key file's contents).
  if (!pem.includes("-----BEGIN ")) throw new ConfigError(`${name}: ${path} is not a PEM file`);
  return pem;
}

const set = (env: Env, name: string) => env[name] !== undefined && env[name] !== "";

/** GRPC_TLS_CERT_FILE / GRPC_TLS_KEY_FILE (both or neither) and GRPC_TLS_CLIENT_CA_FILE; undefined: plaintext. */
export function serverTlsFromEnv(env: Env = process.env): ServerTls | undefined {
  const cert = set(env, "GRPC_TLS_CERT_FILE");
  const key = set(env, "GRPC_TLS_KEY_FILE");
  if (cert !== key) throw new ConfigError("set both GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE, or neither");
  if (!cert) {
    if (set(env, "GRPC_TLS_CLIENT_CA_FILE")) throw new ConfigError("GRPC_TLS_CLIENT_CA_FILE needs GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE (mutual TLS is TLS first)");
    return undefined;
  }
  return {
    cert: readPem(env, "GRPC_TLS_CERT_FILE"),
    key: readPem(env, "GRPC_TLS_KEY_FILE"),
    ...(set(env, "GRPC_TLS_CLIENT_CA_FILE") ? { clientCa: readPem(env, "GRPC_TLS_CLIENT_CA_FILE") } : {}),
  };
}

/** Server credentials: TLS (mutual with a client CA) or, without `tls`, plaintext. */
export function serverCredentials(tls: ServerTls | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(tls.clientCa ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], Boolean(tls.clientCa));
}

/**
 * GRPC_TLS_CA_FILE, the client certificate (GRPC_TLS_CLIENT_CERT_FILE + GRPC_TLS_CLIENT_KEY_FILE,
 * else GRPC_TLS_CERT_FILE + GRPC_TLS_KEY_FILE) and GRPC_TLS_SERVER_NAME; undefined: plaintext.
 */
export function clientTlsFromEnv(env: Env = process.env): ClientTls | undefined {
  if (!set(env, "GRPC_TLS_CA_FILE")) {
    if (set(env, "GRPC_TLS_CLIENT_CERT_FILE")) throw new ConfigError("GRPC_TLS_CLIENT_CERT_FILE needs GRPC_TLS_CA_FILE (the CA of the servers)");
    return undefined;
  }
  const own = set(env, "GRPC_TLS_CLIENT_CERT_FILE") || set(env, "GRPC_TLS_CLIENT_KEY_FILE") ? "GRPC_TLS_CLIENT" : set(env, "GRPC_TLS_CERT_FILE") ? "GRPC_TLS" : undefined;
  if (own && set(env, `${own}_CERT_FILE`) !== set(env, `${own}_KEY_FILE`)) throw new ConfigError(`set both ${own}_CERT_FILE and ${own}_KEY_FILE, or neither`);
  return {
    ca: readPem(env, "GRPC_TLS_CA_FILE"),
    ...(own ? { cert: readPem(env, `${own}_CERT_FILE`), key: readPem(env, `${own}_KEY_FILE`) } : {}),
    ...(set(env, "GRPC_TLS_SERVER_NAME") ? { serverName: env.GRPC_TLS_SERVER_NAME } : {}),
  };
}

/** Channel credentials and options of a client: TLS with `tls`, else plaintext. */
export function clientCredentials(tls: ClientTls | undefined): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  if (!tls) return { credentials: grpc.credentials.createInsecure(), options: {} };
  return {
    credentials: grpc.credentials.createSsl(tls.ca, tls.key ?? null, tls.cert ?? null),
    options: tls.serverName ? { "grpc.ssl_target_name_override": tls.serverName, "grpc.default_authority": tls.serverName } : {},
  };
}

/** True for a loopback interface: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** RLHF_INSECURE=1 (or true): plaintext allowed on an address other than loopback. */
export function insecureFromEnv(env: Env = process.env): boolean {
  const v = (env.RLHF_INSECURE ?? "").trim().toLowerCase();
  if (v === "" || v === "0" || v === "false") return false;
  if (v === "1" || v === "true") return true;
  throw new ConfigError(`RLHF_INSECURE must be 1 or 0, got "${env.RLHF_INSECURE}"`);
}
