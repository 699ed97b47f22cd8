/**
 * The platform's wiring in one place: the six services (the recipe's five and labeling), their
 * ports and environment, the supporting stack (NATS, OpenTelemetry collector, Jaeger, Prometheus,
 * Grafana) and the images.
 * The Kubernetes profiles (./k8s.ts) and docker-compose.yaml (./compose.ts) are both written from
 * it; the checks (./check/) read the written files back and verify them independently.
 */

/** Namespace of every object of the Kubernetes profiles. */
export const NAMESPACE = "rlhf";
/** Tag of the images built from deploy/Dockerfile (the gpu variant appends "-gpu"). */
export const IMAGE_TAG = "0.1.0";
/** Repository prefix of our images (`rlhf/policy:0.1.0`); `kind load` / `minikube image load` need no registry. */
export const IMAGE_REGISTRY = "rlhf";
/** Prometheus endpoint of every service (METRICS_PORT; path /metrics). */
export const METRICS_PORT = 9464;
/** Where the shared volume (run folders, checkpoints, user data) is mounted in every service. */
export const DATA_DIR = "/data";

export type ServiceName = "ppo-coordinator" | "policy" | "reward-model" | "reference-model" | "pretrain-mix" | "labeling";

/** One of the services. */
export interface RlhfService {
  name: ServiceName;
  /** gRPC port (GRPC_PORT), the project's convention. */
  port: number;
  /**
   * Stateless apart from weights every replica loads the same way: runs several replicas behind
   * a headless Service, and the coordinator spreads batches across them (`dns:///name:port`).
   */
  replicated: boolean;
  /** Computes with TensorFlow.js: on GPU nodes (and the gpu image) in the gpu profile. */
  compute: boolean;
  /** Short description for comments. */
  role: string;
  /** Service-specific environment (addresses of the others, paths); the common part is in {@link commonEnv}. */
  env: Record<string, string>;
  /** Services whose gRPC port this one calls (for NetworkPolicies), besides what its env names. */
  calls: ServiceName[];
  /** A web UI on this HTTP port (HTTP_PORT), reachable by people (the labeling service). */
  httpPort?: number;
}

const addr = (s: ServiceName, dns = false) => `${dns ? "dns:///" : ""}${s}:${portOf(s)}`;

/** The gRPC port of a service. */
export function portOf(name: ServiceName): number {
  return { "ppo-coordinator": 50050, policy: 50051, "reward-model": 50052, "reference-model": 50053, "pretrain-mix": 50054, labeling: 50055 }[name];
}

/** The labeling service's web UI port (HTTP_PORT). */
export const LABELING_HTTP_PORT = 8055;

/** The six services, coordinator first. */
export const SERVICES: readonly RlhfService[] = [
  {
    name: "ppo-coordinator",
    port: portOf("ppo-coordinator"),
    replicated: false,
    compute: false,
    role: "runs: config, state, run folders; drives every stage",
    env: {
      POLICY_ADDR: addr("policy"),
      // Every replica of the scaled-out services: the coordinator resolves the names itself.
      REWARD_MODEL_ADDR: addr("reward-model", true),
      REFERENCE_MODEL_ADDR: addr("reference-model", true),
      PRETRAIN_MIX_ADDR: addr("pretrain-mix", true),
      // For runs with rankings.source "labeling" (submit a batch, wait, fetch the rankings); the
      // service token it sends is one the labeling service accepts.
      LABELING_ADDR: addr("labeling"),
      RUNS_DIR: `${DATA_DIR}/runs`,
      // The files a run config names (users' data) must be on the shared volume.
      DATA_ROOT: DATA_DIR,
    },
    calls: ["policy", "reward-model", "reference-model", "pretrain-mix", "labeling"],
  },
  {
    name: "policy",
    port: portOf("policy"),
    replicated: false,
    compute: true,
    role: "the trained policy and critic, held in memory; one replica",
    // The demo presets use the byte tokenizer; a run with model.tokenizer "gpt2" needs TOKENIZER=gpt2 here and in pretrain-mix.
    env: { REWARD_MODEL_ADDR: addr("reward-model"), TOKENIZER: "byte", CHECKPOINT_ROOT: DATA_DIR },
    calls: ["reward-model"],
  },
  {
    name: "reward-model",
    port: portOf("reward-model"),
    replicated: true,
    compute: true,
    role: "scores sequences; trained on one replica, then loaded by all",
    env: { POLICY_ADDR: addr("policy"), CHECKPOINT_ROOT: DATA_DIR },
    calls: ["policy"],
  },
  {
    name: "reference-model",
    port: portOf("reference-model"),
    replicated: true,
    compute: true,
    role: "frozen SFT model: log-probs of sequences",
    env: { POLICY_ADDR: addr("policy"), CHECKPOINT_ROOT: DATA_DIR },
    calls: ["policy"],
  },
  {
    name: "pretrain-mix",
    port: portOf("pretrain-mix"),
    replicated: true,
    compute: true,
    role: "pretraining batches and gamma-weighted LM gradients",
    env: { POLICY_ADDR: addr("policy"), TOKENIZER: "byte", DATA_ROOT: DATA_DIR },
    calls: ["policy"],
  },
  {
    name: "labeling",
    port: portOf("labeling"),
    // SQLite on the shared volume: one writer. With DATABASE_URL (PostgreSQL) it could scale out.
    replicated: false,
    compute: false,
    role: "people rank K responses in a web UI (HTTP 8055); SQLite on the shared volume, or PostgreSQL with DATABASE_URL",
    env: {
      LABELING_DATA_DIR: `${DATA_DIR}/labeling`,
      HTTP_HOST: "0.0.0.0",
      HTTP_PORT: String(LABELING_HTTP_PORT),
      // Reached through an HTTPS ingress or `kubectl port-forward` (localhost counts as secure for cookies).
      HTTP_SECURE_COOKIES: "1",
    },
    calls: [],
    httpPort: LABELING_HTTP_PORT,
  },
];

/** Supporting stack: names, images (pinned) and ports. */
export const STACK = {
  nats: { name: "nats", image: "nats:2.10.22-alpine", client: 4222, monitor: 8222 },
  collector: { name: "otel-collector", image: "otel/opentelemetry-collector-contrib:0.114.0", otlpGrpc: 4317, otlpHttp: 4318, health: 13133 },
  jaeger: { name: "jaeger", image: "jaegertracing/all-in-one:1.62.0", otlpGrpc: 4317, query: 16686, admin: 14269 },
  prometheus: { name: "prometheus", image: "prom/prometheus:v2.55.1", port: 9090 },
  grafana: { name: "grafana", image: "grafana/grafana:11.3.0", port: 3000 },
} as const;

/**
 * RLHF_BACKEND of a service: TensorFlow on the GPU for the model services of the gpu profile, the
 * libtorch backend (built into the cpu images) for the model services on CPU nodes, wasm for the
 * coordinator (it computes no model).
 */
export function backendOf(s: RlhfService, gpu: boolean): string {
  if (!s.compute) return "wasm";
  return gpu ? "tensorflow-gpu" : "torch";
}

/** Environment every service gets (addresses of the stack, listening on all interfaces). */
export function commonEnv(): Record<string, string> {
  return {
    GRPC_HOST: "0.0.0.0",
    METRICS_HOST: "0.0.0.0",
    METRICS_PORT: String(METRICS_PORT),
    // Traces to the collector over OTLP/HTTP; metrics are scraped by Prometheus, not pushed.
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://${STACK.collector.name}:${STACK.collector.otlpHttp}`,
    OTEL_METRICS_EXPORTER: "none",
    NATS_URL: `nats://${STACK.nats.name}:${STACK.nats.client}`,
    LOG_LEVEL: "info",
  };
}

/**
 * Security in the Kubernetes profiles (docs/security.md; deploy/make-secrets.sh creates the
 * Secrets): each service mounts its TLS Secret `rlhf-tls-<service>` (tls.crt, tls.key, ca.crt)
 * at {@link TLS_DIR} and the token Secret `rlhf-tokens` (service, operator, viewer) at
 * {@link TOKENS_DIR}; it serves mutual TLS, accepts the tokens of its callers' roles and calls
 * the others with the `service` token. Kubelet's gRPC probes (no TLS, no token) use the
 * health-only plaintext port {@link HEALTH_PORT}.
 */
export const TLS_DIR = "/etc/rlhf/tls";
/** See {@link TLS_DIR}. */
export const TOKENS_DIR = "/etc/rlhf/tokens";
/** The Secret holding the bearer tokens, one key per role. */
export const TOKENS_SECRET = "rlhf-tokens";
/** The TLS Secret of a service. */
export const tlsSecretOf = (name: string) => `rlhf-tls-${name}`;
/** GRPC_HEALTH_PORT of every service in a pod: grpc.health.v1 only, plaintext, for kubelet's probes. */
export const HEALTH_PORT = 9465;

/** The TLS, token and health-port variables of a service in the Kubernetes profiles. */
export function securityEnv(s: RlhfService): Record<string, string> {
  const token = (role: string) => `${TOKENS_DIR}/${role}`;
  const accepted: Record<string, string> = s.name === "ppo-coordinator" ? { RLHF_OPERATOR_TOKEN_FILE: token("operator"), RLHF_VIEWER_TOKEN_FILE: token("viewer") } : { RLHF_SERVICE_TOKEN_FILE: token("service"), RLHF_VIEWER_TOKEN_FILE: token("viewer") };
  // The labeling web UI's admin signs in with the operator token (people who run things).
  const admin: Record<string, string> = s.name === "labeling" ? { LABELING_ADMIN_TOKEN_FILE: token("operator") } : {};
  return {
    ...admin,
    GRPC_TLS_CERT_FILE: `${TLS_DIR}/tls.crt`,
    GRPC_TLS_KEY_FILE: `${TLS_DIR}/tls.key`,
    GRPC_TLS_CLIENT_CA_FILE: `${TLS_DIR}/ca.crt`,
    GRPC_TLS_CA_FILE: `${TLS_DIR}/ca.crt`,
    GRPC_HEALTH_PORT: String(HEALTH_PORT),
    ...accepted,
    RLHF_CLIENT_TOKEN_FILE: token("service"),
  };
}

/** The whole environment of a service in a profile. */
export function serviceEnv(s: RlhfService, gpu: boolean): Record<string, string> {
  return { ...commonEnv(), GRPC_PORT: String(s.port), OTEL_SERVICE_NAME: s.name, RLHF_BACKEND: backendOf(s, gpu), ...s.env };
}

/** Our image of a service: `rlhf/<name>:<tag>` (CPU: torch and wasm) or `...:<tag>-gpu`. */
export function imageOf(name: string, gpu: boolean, registry = IMAGE_REGISTRY, tag = IMAGE_TAG): string {
  return `${registry}/${name}:${tag}${gpu ? "-gpu" : ""}`;
}
