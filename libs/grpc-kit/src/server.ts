import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import type { Logger } from "pino";
import { authInterceptor, serverAuthFromEnv, type ServerAuth } from "./auth";
import { ConfigError } from "./env";
import { insecureFromEnv, isLoopback, serverCredentials, serverTlsFromEnv, type ServerTls } from "./tls";
import { loadContracts, tolerantDecoding } from "./decode";

/** Default receive/send limit per message: gRPC's 4 MiB. Big payloads travel as chunk streams. */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * grpc.health.v1 names for Kubernetes' native gRPC probes (`grpc: {port, service}`) and container
 * health checks. "" and each served service keep their meaning (SERVING once the service can do
 * its work, e.g. a model is loaded); these two only say how the process is:
 * - "liveness": SERVING from the moment the server listens until the process exits (a model
 *   service without a model is alive: its client loads one).
 * - "readiness": SERVING while the server takes calls, NOT_SERVING from the start of a graceful
 *   shutdown, so that a pod leaves its Service's endpoints before it stops.
 */
export const LIVENESS_HEALTH_SERVICE = "liveness";
/** See {@link LIVENESS_HEALTH_SERVICE}. */
export const READINESS_HEALTH_SERVICE = "readiness";

/** Full name of the grpc.health.v1 service every server adds. */
export const HEALTH_SERVICE_NAME = "grpc.health.v1.Health";

/** One gRPC service to serve: a generated definition and its implementation. */
export interface ServiceRegistration {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

/** Options of {@link startServer}. */
export interface ServerOptions {
  /** Services to serve; health and reflection are added for them. */
  services: ServiceRegistration[];
  log: Logger;
  /** Interface to bind. Default "127.0.0.1" (loopback only). */
  host?: string;
  /** Port; 0 picks a free one. Default 0. */
  port?: number;
  /** Largest message accepted, bytes. Default 4 MiB. */
  maxReceiveMessageBytes?: number;
  /** Largest message sent, bytes. Default 4 MiB. */
  maxSendMessageBytes?: number;
  /** FileDescriptorSet of the contracts, for server reflection. Reflection is off without it. */
  descriptorSetPath?: string;
  /**
   * Bearer-token authentication (see auth.ts). Default: from the environment
   * (RLHF_AUTH_TOKEN_FILE, RLHF_{SERVICE,OPERATOR,VIEWER}_TOKEN_FILE); none when unset. `null`: off.
   */
  auth?: ServerAuth | null;
  /**
   * TLS (mutual with a client CA; see tls.ts). Default: from the environment (GRPC_TLS_CERT_FILE,
   * GRPC_TLS_KEY_FILE, GRPC_TLS_CLIENT_CA_FILE); plaintext when unset. `null`: plaintext.
   */
  tls?: ServerTls | null;
  /**
   * Plaintext on an address other than loopback; without it such a server refuses to start.
   * Default: RLHF_INSECURE=1 (`rlhf serve --insecure`).
   */
  insecure?: boolean;
  /**
   * A second, plaintext port on `host` that serves grpc.health.v1 only (no token, no TLS): for
   * Kubernetes' native gRPC probes, which speak neither TLS nor tokens, when the main port
   * requires them. Default GRPC_HEALTH_PORT; none when unset (health is also on the main port).
   */
  healthPort?: number;
  /** More interceptors, run after authentication (a model service's run lease: lease.ts). */
  interceptors?: grpc.ServerInterceptor[];
}

/** A started server. */
export interface RunningServer {
  server: grpc.Server;
  host: string;
  port: number;
  /** `host:port` to dial. */
  address: string;
  /** The health-only plaintext port (see ServerOptions.healthPort), when there is one. */
  healthPort?: number;
  health: HealthImplementation;
  /** Full names of the served services (`rlhf.reference_model.v1.ReferenceModelService`). */
  serviceNames: string[];
  /** Marks every service (and the server as a whole, "") SERVING or NOT_SERVING. */
  setServing(serving: boolean): void;
  /**
   * Graceful stop: report NOT_SERVING, refuse new calls, wait for in-flight calls up to
   * `graceMs` (default 10 s), then cancel what is left.
   */
  shutdown(graceMs?: number): Promise<void>;
}

/** GRPC_HEALTH_PORT: the health-only plaintext port (0 picks a free one); undefined when unset. */
function envHealthPort(env: Record<string, string | undefined>): number | undefined {
  const raw = env.GRPC_HEALTH_PORT?.trim();
  if (!raw) return undefined;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) throw new ConfigError(`GRPC_HEALTH_PORT must be a port number, got "${env.GRPC_HEALTH_PORT}"`);
  return Number(raw);
}

/** Full service name from a generated definition's first method path. */
export function serviceNameOf(def: grpc.ServiceDefinition): string {
  const first = Object.values(def)[0] as grpc.MethodDefinition<unknown, unknown> | undefined;
  if (!first) throw new Error("service definition has no methods");
  return first.path.split("/")[1];
}

function formatHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/**
 * Starts a gRPC server with grpc.health.v1 (NOT_SERVING until `setServing(true)`), server
 * reflection, message size limits, and the given services. Listens on 127.0.0.1 unless told
 * otherwise.
 */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const host = opts.host ?? "127.0.0.1";
  const auth = opts.auth === undefined ? serverAuthFromEnv(process.env, opts.log) : (opts.auth ?? undefined);
  const tls = opts.tls === undefined ? serverTlsFromEnv(process.env) : (opts.tls ?? undefined);
  if (!tls && !isLoopback(host) && !(opts.insecure ?? insecureFromEnv(process.env))) {
    throw new ConfigError(
      `GRPC_HOST ${host} is not loopback and no TLS is configured: set GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE (and GRPC_TLS_CLIENT_CA_FILE for mutual TLS), or RLHF_INSECURE=1 (rlhf serve --insecure) to serve plaintext anyway`,
    );
  }
  const server = new grpc.Server({
    "grpc.max_receive_message_length": opts.maxReceiveMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": opts.maxSendMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    // Every call but health checks needs a bearer token with the method's role (when configured).
    // Then the service's own checks (a model service's run lease).
    interceptors: [...(auth ? [authInterceptor(auth, opts.log)] : []), ...(opts.interceptors ?? [])],
  });
  const serviceNames = opts.services.map((s) => serviceNameOf(s.definition));
  // Requests that cannot be decoded reach the handler wrappers as a DecodeFailure (INVALID_ARGUMENT).
  for (const s of opts.services) server.addService(tolerantDecoding(s.definition), s.implementation);

  const health = new HealthImplementation({
    "": "NOT_SERVING",
    ...Object.fromEntries(serviceNames.map((n) => [n, "NOT_SERVING"])),
    [LIVENESS_HEALTH_SERVICE]: "SERVING",
    [READINESS_HEALTH_SERVICE]: "SERVING",
  });
  health.addToServer(server);
  if (opts.descriptorSetPath) {
    const pkgDef = loadContracts(opts.descriptorSetPath);
    // The descriptor set holds every contract of the project; list only what this server serves.
    new ReflectionService({ ...pkgDef, ...loadSync(healthProtoPath) }, { services: [...serviceNames, HEALTH_SERVICE_NAME] }).addToServer(server);
  }

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${formatHost(host)}:${opts.port ?? 0}`, serverCredentials(tls), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  const address = `${formatHost(host)}:${port}`;
  // Health only, plaintext, for probes that cannot present TLS or a token (see ServerOptions.healthPort).
  const wantHealthPort = opts.healthPort ?? envHealthPort(process.env);
  let healthServer: grpc.Server | undefined;
  let healthPort: number | undefined;
  if (wantHealthPort !== undefined) {
    healthServer = new grpc.Server({ "grpc.max_receive_message_length": 64 * 1024 });
    health.addToServer(healthServer);
    const hs = healthServer;
    healthPort = await new Promise<number>((resolve, reject) => {
      hs.bindAsync(`${formatHost(host)}:${wantHealthPort}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
  }
  const setServing = (serving: boolean) => {
    const s = serving ? "SERVING" : "NOT_SERVING";
    health.setStatus("", s);
    for (const n of serviceNames) health.setStatus(n, s);
  };
  let stopping: Promise<void> | undefined;
  const shutdown = (graceMs = 10_000) =>
    (stopping ??= new Promise<void>((resolve) => {
      setServing(false);
      health.setStatus(READINESS_HEALTH_SERVICE, "NOT_SERVING");
      opts.log.info({ graceMs }, "shutting down: refusing new calls, draining in-flight calls");
      const timer = setTimeout(() => {
        opts.log.warn({ graceMs }, "grace period over: cancelling remaining calls");
        server.forceShutdown();
        healthServer?.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        healthServer?.forceShutdown();
        resolve();
      });
    }));
  const authLine = auth ? auth.files.map((f) => `${f.file.variable} (${[...f.roles].join(", ")})`).join("; ") : "off";
  opts.log.info({ address, ...(healthPort !== undefined ? { healthPort } : {}), services: serviceNames, reflection: Boolean(opts.descriptorSetPath), authentication: authLine, tls: tls ? (tls.clientCa ? "mutual" : "on") : "off" }, "listening");
  return { server, host, port, address, healthPort, health, serviceNames, setServing, shutdown };
}

/** Options of {@link installShutdownHandlers}. */
export interface ShutdownOptions {
  log: Logger;
  /** How long in-flight calls may take to finish. Default 10 s (from SHUTDOWN_GRACE_MS). */
  graceMs?: number;
  /** Runs after the server stopped (flush telemetry, free models). */
  onStopped?: () => Promise<void> | void;
}

/**
 * SIGTERM / SIGINT: stop accepting, drain, run `onStopped`, exit 0. A second signal exits at once
 * with status 1.
 */
export function installShutdownHandlers(running: RunningServer, opts: ShutdownOptions): void {
  let signalled = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      opts.log.warn({ signal: sig }, "second signal: exiting now");
      process.exit(1);
    }
    signalled = true;
    opts.log.info({ signal: sig }, "signal received");
    running
      .shutdown(opts.graceMs)
      .then(() => opts.onStopped?.())
      .then(
        () => {
          opts.log.info("stopped");
          process.exit(0);
        },
        (err: unknown) => {
          opts.log.error({ err: String(err) }, "error while stopping");
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
