/**
 * The Kubernetes profiles as kubernetes-models objects (typed: a misspelt field does not compile).
 * ./generate.ts writes them as plain YAML to deploy/k8s/<profile>/, one file per component, for
 * `kubectl apply -f deploy/k8s/<profile>/`.
 *
 * Per service: a Deployment (the coordinator and the policy are singletons with Recreate: they
 * hold run state and trained weights in memory, and must never run twice), a Service (headless
 * for the replicated model services, so the coordinator sees every pod), native gRPC probes
 * (grpc.health.v1 "readiness" / "liveness", see libs/grpc-kit LIVENESS_HEALTH_SERVICE), requests
 * and limits, a non-root read-only security context, a ConfigMap with its environment, and the
 * shared PersistentVolumeClaim mounted at /data (run folders, checkpoints, user data). The
 * replicated services get a HorizontalPodAutoscaler; NetworkPolicies admit only the callers each
 * service has. Then NATS (JetStream on a volume), the OpenTelemetry collector, Jaeger,
 * Prometheus and Grafana.
 */
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import type { IProbe } from "kubernetes-models/v1/Probe";
import type { IResourceRequirements } from "kubernetes-models/v1/ResourceRequirements";
import type { IToleration } from "kubernetes-models/v1/Toleration";
import type { INetworkPolicyPeer } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer";
import type { INetworkPolicyIngressRule } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicyIngressRule";
import { stringify } from "yaml";
import { DATA_DIR, HEALTH_PORT, METRICS_PORT, NAMESPACE, SERVICES, STACK, TLS_DIR, TOKENS_DIR, TOKENS_SECRET, imageOf, securityEnv, serviceEnv, tlsSecretOf, type RlhfService, type ServiceName } from "./topology";
import { DASHBOARD_FILE, GRAFANA_DASHBOARDS_DIR, collectorConfig, grafanaDashboardProvider, grafanaDatasources, prometheusK8sConfig } from "./observability";

/** A Kubernetes object as the profiles hold it. */
export type K8sObject = { apiVersion: string; kind: string; metadata?: { name?: string; namespace?: string; labels?: Record<string, string> }; toJSON?: () => unknown };

type Res = { cpu: string; memory: string; gpu?: number };

/** A deployment profile. */
export interface Profile {
  name: "local" | "gpu";
  /** One line for the files' headers. */
  description: string;
  /** Model services on GPU nodes with the gpu images. */
  gpu: boolean;
  /** The shared volume: ReadWriteOnce is enough on one node; several nodes need ReadWriteMany. */
  storage: { accessMode: "ReadWriteOnce" | "ReadWriteMany"; size: string };
  /** Replicas of the replicated services (HPA bounds; the Deployment starts at `min`). */
  replicas: { min: number; max: number };
  /** Requests (and limits: x `limitFactor` for cpu/memory) per service. */
  resources: Record<ServiceName, { requests: Res; limits: Res }>;
  /** Where GPU pods go. */
  gpuNodes?: { nodeSelector: Record<string, string>; tolerations: IToleration[] };
}

const GiB = (n: number) => `${n}Gi`;
const MiB = (n: number) => `${n}Mi`;

/** `local`: one node (kind, minikube), CPU only, small requests so it fits a laptop. */
export const LOCAL: Profile = {
  name: "local",
  description: "one node (kind, minikube), CPU only: cpu images (libtorch backend), small requests",
  gpu: false,
  storage: { accessMode: "ReadWriteOnce", size: GiB(10) },
  replicas: { min: 2, max: 3 },
  resources: {
    "ppo-coordinator": { requests: { cpu: "100m", memory: MiB(256) }, limits: { cpu: "1", memory: GiB(2) } },
    policy: { requests: { cpu: "250m", memory: MiB(768) }, limits: { cpu: "2", memory: GiB(4) } },
    "reward-model": { requests: { cpu: "100m", memory: MiB(384) }, limits: { cpu: "1", memory: GiB(2) } },
    "reference-model": { requests: { cpu: "100m", memory: MiB(384) }, limits: { cpu: "1", memory: GiB(2) } },
    "pretrain-mix": { requests: { cpu: "100m", memory: MiB(384) }, limits: { cpu: "1", memory: GiB(2) } },
    labeling: { requests: { cpu: "50m", memory: MiB(128) }, limits: { cpu: "1", memory: GiB(1) } },
  },
};

/** `gpu`: a cluster with NVIDIA GPU nodes (device plugin / GPU operator); model services get one GPU each. */
export const GPU: Profile = {
  name: "gpu",
  description: "NVIDIA GPU nodes: model services on the gpu images with one nvidia.com/gpu each, a ReadWriteMany volume",
  gpu: true,
  storage: { accessMode: "ReadWriteMany", size: GiB(200) },
  replicas: { min: 2, max: 8 },
  resources: {
    "ppo-coordinator": { requests: { cpu: "500m", memory: GiB(1) }, limits: { cpu: "2", memory: GiB(4) } },
    policy: { requests: { cpu: "2", memory: GiB(16), gpu: 1 }, limits: { cpu: "8", memory: GiB(48), gpu: 1 } },
    "reward-model": { requests: { cpu: "1", memory: GiB(8), gpu: 1 }, limits: { cpu: "4", memory: GiB(24), gpu: 1 } },
    "reference-model": { requests: { cpu: "1", memory: GiB(8), gpu: 1 }, limits: { cpu: "4", memory: GiB(24), gpu: 1 } },
    "pretrain-mix": { requests: { cpu: "1", memory: GiB(8), gpu: 1 }, limits: { cpu: "4", memory: GiB(24), gpu: 1 } },
    labeling: { requests: { cpu: "100m", memory: MiB(256) }, limits: { cpu: "1", memory: GiB(2) } },
  },
  // The label NVIDIA's GPU feature discovery (GPU operator) puts on GPU nodes, and the taint many
  // clusters put on them; change both here (and regenerate) if yours differ.
  gpuNodes: {
    nodeSelector: { "nvidia.com/gpu.present": "true" },
    tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
  },
};

export const PROFILES: readonly Profile[] = [LOCAL, GPU];

/** Labels of a component; `app.kubernetes.io/name` is what Services and policies select. */
export function labels(name: string, component: string): Record<string, string> {
  return { "app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "rlhf", "app.kubernetes.io/component": component };
}
const selector = (name: string) => ({ "app.kubernetes.io/name": name });
const meta = (name: string, component: string) => ({ name, namespace: NAMESPACE, labels: labels(name, component) });

const DATA_CLAIM = "rlhf-data";

function resources(r: { requests: Res; limits: Res }): IResourceRequirements {
  const q = (x: Res) => ({ cpu: x.cpu, memory: x.memory, ...(x.gpu ? { "nvidia.com/gpu": String(x.gpu) } : {}) });
  return { requests: q(r.requests), limits: q(r.limits) };
}

/** Pod security: non-root (uid), no privilege escalation, no capabilities, read-only root, default seccomp. */
function secured(uid: number, pod: Omit<IPodSpec, "securityContext">): IPodSpec {
  return {
    ...pod,
    automountServiceAccountToken: pod.automountServiceAccountToken ?? false,
    securityContext: { runAsNonRoot: true, runAsUser: uid, runAsGroup: uid, fsGroup: uid, seccompProfile: { type: "RuntimeDefault" } },
    containers: pod.containers.map((c) => ({
      ...c,
      securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ["ALL"] } },
    })),
  };
}

const grpcProbe = (port: number, service: string, o: Partial<IProbe>): IProbe => ({ grpc: { port, service }, ...o });

/** The Deployment, Service, ConfigMap (and HPA) of one of the five services. */
function rlhfService(p: Profile, s: RlhfService): K8sObject[] {
  const gpu = p.gpu && s.compute;
  const component = s.name === "ppo-coordinator" ? "coordinator" : s.name === "labeling" ? "labeling" : "model-service";
  const env = new ConfigMap({ metadata: meta(`${s.name}-env`, component), data: { ...serviceEnv(s, p.gpu), ...securityEnv(s) } });
  const container: IContainer = {
    name: s.name,
    image: imageOf(s.name, gpu),
    imagePullPolicy: "IfNotPresent",
    ports: [
      { name: "grpc", containerPort: s.port, protocol: "TCP" },
      { name: "metrics", containerPort: METRICS_PORT, protocol: "TCP" },
      // grpc.health.v1 alone, plaintext: kubelet's gRPC probes speak neither TLS nor tokens.
      { name: "health", containerPort: HEALTH_PORT, protocol: "TCP" },
      ...(s.httpPort ? [{ name: "http", containerPort: s.httpPort, protocol: "TCP" as const }] : []),
    ],
    envFrom: [{ configMapRef: { name: env.metadata!.name } }],
    resources: resources(p.resources[s.name]),
    // Start-up may take minutes (first CUDA kernels, corpus tokenisation): liveness waits for it.
    startupProbe: grpcProbe(HEALTH_PORT, "liveness", { periodSeconds: 5, failureThreshold: 60, timeoutSeconds: 5 }),
    readinessProbe: grpcProbe(HEALTH_PORT, "readiness", { periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 5 }),
    // A long training step keeps the event loop busy; be patient before restarting (that loses weights).
    livenessProbe: grpcProbe(HEALTH_PORT, "liveness", { periodSeconds: 20, failureThreshold: 6, timeoutSeconds: 10 }),
    volumeMounts: [
      { name: "data", mountPath: DATA_DIR },
      { name: "tmp", mountPath: "/tmp" },
      // TLS certificate and key, the CA, the tokens: Secrets made by deploy/make-secrets.sh.
      { name: "tls", mountPath: TLS_DIR, readOnly: true },
      { name: "tokens", mountPath: TOKENS_DIR, readOnly: true },
    ],
  };
  const replicas = s.replicated ? p.replicas.min : 1;
  const deployment = new Deployment({
    metadata: meta(s.name, component),
    spec: {
      replicas,
      // Singletons holding state in memory are replaced, never run twice; the others roll.
      strategy: s.replicated ? { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } } : { type: "Recreate" },
      selector: { matchLabels: selector(s.name) },
      template: {
        metadata: {
          labels: labels(s.name, component),
          annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": String(METRICS_PORT), "prometheus.io/path": "/metrics" },
        },
        spec: secured(1000, {
          // Long enough for in-flight calls to drain (SHUTDOWN_GRACE_MS defaults to 10 s).
          terminationGracePeriodSeconds: 30,
          containers: [container],
          volumes: [
            { name: "data", persistentVolumeClaim: { claimName: DATA_CLAIM } },
            { name: "tmp", emptyDir: {} },
            // Readable by the pod's group (fsGroup) only; a Secret update reaches the files (tokens are re-read).
            { name: "tls", secret: { secretName: tlsSecretOf(s.name), defaultMode: 0o440 } },
            { name: "tokens", secret: { secretName: TOKENS_SECRET, defaultMode: 0o440 } },
          ],
          ...(gpu && p.gpuNodes ? { nodeSelector: p.gpuNodes.nodeSelector, tolerations: p.gpuNodes.tolerations } : {}),
        }),
      },
    },
  });
  const service = new Service({
    metadata: meta(s.name, component),
    spec: {
      // Headless for the replicated ones: DNS lists every ready pod, the coordinator spreads over them.
      ...(s.replicated ? { clusterIP: "None" } : { type: "ClusterIP" }),
      selector: selector(s.name),
      ports: [
        { name: "grpc", port: s.port, targetPort: "grpc", protocol: "TCP", appProtocol: "grpc" },
        { name: "metrics", port: METRICS_PORT, targetPort: "metrics", protocol: "TCP" },
        ...(s.httpPort ? [{ name: "http", port: s.httpPort, targetPort: "http", protocol: "TCP" as const, appProtocol: "http" }] : []),
      ],
    },
  });
  const out: K8sObject[] = [env, deployment, service];
  if (s.replicated) {
    out.push(
      new HorizontalPodAutoscaler({
        metadata: meta(s.name, component),
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: s.name },
          minReplicas: p.replicas.min,
          maxReplicas: p.replicas.max,
          metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } } }],
          // New replicas load the current weights first (the coordinator replays the last load); do not flap.
          behavior: { scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: "Pods", value: 1, periodSeconds: 120 }] } },
        },
      }),
    );
  }
  return out;
}

const from = (...names: string[]): INetworkPolicyPeer[] => names.map((n) => ({ podSelector: { matchLabels: selector(n) } }));
const anyPodHere: INetworkPolicyPeer[] = [{ podSelector: {} }];
const tcp = (...ports: number[]) => ports.map((port) => ({ port, protocol: "TCP" as const }));

/** Ingress rules: deny by default, then each service admits only its callers (and Prometheus on the metrics port). */
function networkPolicies(): K8sObject[] {
  const policy = (name: string, ingress: INetworkPolicyIngressRule[]) =>
    new NetworkPolicy({ metadata: meta(`allow-${name}`, "network-policy"), spec: { podSelector: { matchLabels: selector(name) }, policyTypes: ["Ingress"], ingress } });
  const callers = (s: RlhfService) => SERVICES.filter((c) => c.calls.includes(s.name)).map((c) => c.name);
  const scrape: INetworkPolicyIngressRule = { from: from(STACK.prometheus.name), ports: tcp(METRICS_PORT) };
  return [
    new NetworkPolicy({ metadata: meta("default-deny-ingress", "network-policy"), spec: { podSelector: {}, policyTypes: ["Ingress"] } }),
    ...SERVICES.map((s) =>
      policy(s.name, [
        // The coordinator is the API: reachable from anywhere (kubectl port-forward, a CLI pod); the model services only from their callers.
        s.name === "ppo-coordinator" ? { ports: tcp(s.port) } : { from: from(...callers(s)), ports: tcp(s.port) },
        // A web UI is for people: from anywhere (an ingress controller, kubectl port-forward).
        ...(s.httpPort ? [{ ports: tcp(s.httpPort) }] : []),
        scrape,
      ]),
    ),
    policy(STACK.nats.name, [{ from: anyPodHere, ports: tcp(STACK.nats.client) }, { from: from(STACK.prometheus.name), ports: tcp(STACK.nats.monitor) }]),
    policy(STACK.collector.name, [{ from: anyPodHere, ports: tcp(STACK.collector.otlpGrpc, STACK.collector.otlpHttp) }]),
    policy(STACK.jaeger.name, [{ from: from(STACK.collector.name), ports: tcp(STACK.jaeger.otlpGrpc) }, { ports: tcp(STACK.jaeger.query) }]),
    policy(STACK.prometheus.name, [{ ports: tcp(STACK.prometheus.port) }]),
    policy(STACK.grafana.name, [{ ports: tcp(STACK.grafana.port) }]),
  ];
}

const small = (cpu: string, memory: string, lcpu: string, lmemory: string): IResourceRequirements => ({ requests: { cpu, memory }, limits: { cpu: lcpu, memory: lmemory } });
const http = (path: string, port: number | string, o: Partial<IProbe> = {}): IProbe => ({ httpGet: { path, port }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3, ...o });

/** A single-replica Deployment + Service of the supporting stack. */
function stackApp(o: {
  name: string;
  component: string;
  uid: number;
  container: IContainer;
  ports: { name: string; port: number }[];
  volumes?: IPodSpec["volumes"];
  serviceAccountName?: string;
}): K8sObject[] {
  return [
    new Deployment({
      metadata: meta(o.name, o.component),
      spec: {
        replicas: 1,
        selector: { matchLabels: selector(o.name) },
        template: {
          metadata: { labels: labels(o.name, o.component) },
          spec: secured(o.uid, {
            containers: [{ ...o.container, ports: o.ports.map((p) => ({ name: p.name, containerPort: p.port, protocol: "TCP" })) }],
            volumes: [...(o.volumes ?? []), { name: "tmp", emptyDir: {} }],
            ...(o.serviceAccountName ? { serviceAccountName: o.serviceAccountName, automountServiceAccountToken: true } : {}),
          }),
        },
      },
    }),
    new Service({
      metadata: meta(o.name, o.component),
      spec: { type: "ClusterIP", selector: selector(o.name), ports: o.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.name, protocol: "TCP" })) },
    }),
  ];
}

const yamlText = (v: unknown) => stringify(v, { lineWidth: 0, aliasDuplicateObjects: false });

function nats(p: Profile): K8sObject[] {
  const n = STACK.nats;
  return [
    // Headless: the StatefulSet's governing Service, and what clients dial (nats:4222).
    new Service({
      metadata: meta(n.name, "events"),
      spec: {
        clusterIP: "None",
        selector: selector(n.name),
        ports: [
          { name: "client", port: n.client, targetPort: "client", protocol: "TCP" },
          { name: "monitor", port: n.monitor, targetPort: "monitor", protocol: "TCP" },
        ],
      },
    }),
    new StatefulSet({
      metadata: meta(n.name, "events"),
      spec: {
        serviceName: n.name,
        replicas: 1,
        selector: { matchLabels: selector(n.name) },
        template: {
          metadata: { labels: labels(n.name, "events"), annotations: { "prometheus.io/scrape": "false" } },
          spec: secured(1000, {
            containers: [
              {
                name: "nats",
                image: n.image,
                args: ["--jetstream", "--store_dir=/data", `--port=${n.client}`, `--http_port=${n.monitor}`, "--server_name=rlhf-nats-0"],
                ports: [
                  { name: "client", containerPort: n.client, protocol: "TCP" },
                  { name: "monitor", containerPort: n.monitor, protocol: "TCP" },
                ],
                resources: small("50m", MiB(64), "1", MiB(512)),
                readinessProbe: http("/healthz?js-enabled-only=true", "monitor"),
                livenessProbe: http("/healthz", "monitor", { periodSeconds: 20, failureThreshold: 6 }),
                volumeMounts: [{ name: "jetstream", mountPath: "/data" }],
              },
            ],
            // The run-event stream survives restarts on this volume.
            terminationGracePeriodSeconds: 30,
          }),
        },
        volumeClaimTemplates: [{ metadata: { name: "jetstream" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: p.gpu ? GiB(20) : GiB(2) } } } }],
      },
    }),
  ];
}

function collector(): K8sObject[] {
  const c = STACK.collector;
  const config = new ConfigMap({ metadata: meta("otel-collector-config", "observability"), data: { "collector.yaml": yamlText(collectorConfig()) } });
  return [
    config,
    ...stackApp({
      name: c.name,
      component: "observability",
      uid: 10001,
      container: {
        name: "otel-collector",
        image: c.image,
        args: ["--config=/conf/collector.yaml"],
        resources: small("50m", MiB(128), "1", MiB(512)),
        readinessProbe: http("/", "health"),
        livenessProbe: http("/", "health", { periodSeconds: 20 }),
        volumeMounts: [
          { name: "config", mountPath: "/conf", readOnly: true },
          { name: "tmp", mountPath: "/tmp" },
        ],
      },
      ports: [
        { name: "otlp-grpc", port: c.otlpGrpc },
        { name: "otlp-http", port: c.otlpHttp },
        { name: "health", port: c.health },
      ],
      volumes: [{ name: "config", configMap: { name: config.metadata!.name } }],
    }),
  ];
}

function jaeger(): K8sObject[] {
  const j = STACK.jaeger;
  return stackApp({
    name: j.name,
    component: "observability",
    uid: 10001,
    container: {
      name: "jaeger",
      image: j.image,
      // In-memory storage (a demo's traces; they go with the pod): OTLP in, the query UI on 16686.
      env: [
        { name: "COLLECTOR_OTLP_ENABLED", value: "true" },
        { name: "MEMORY_MAX_TRACES", value: "20000" },
      ],
      resources: small("50m", MiB(256), "1", GiB(2)),
      readinessProbe: http("/", "admin"),
      livenessProbe: http("/", "admin", { periodSeconds: 20 }),
      volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
    },
    ports: [
      { name: "otlp-grpc", port: j.otlpGrpc },
      { name: "query", port: j.query },
      { name: "admin", port: j.admin },
    ],
  });
}

function prometheus(): K8sObject[] {
  const pr = STACK.prometheus;
  const sa = new ServiceAccount({ metadata: meta(pr.name, "observability") });
  const role = new Role({ metadata: meta(pr.name, "observability"), rules: [{ apiGroups: [""], resources: ["pods", "services", "endpoints"], verbs: ["get", "list", "watch"] }] });
  const binding = new RoleBinding({
    metadata: meta(pr.name, "observability"),
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: pr.name },
    subjects: [{ kind: "ServiceAccount", name: pr.name, namespace: NAMESPACE }],
  });
  const config = new ConfigMap({ metadata: meta("prometheus-config", "observability"), data: { "prometheus.yml": yamlText(prometheusK8sConfig()) } });
  return [
    sa,
    role,
    binding,
    config,
    ...stackApp({
      name: pr.name,
      component: "observability",
      uid: 65534,
      serviceAccountName: pr.name,
      container: {
        name: "prometheus",
        image: pr.image,
        args: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--storage.tsdb.retention.time=7d", "--web.enable-lifecycle"],
        resources: small("100m", MiB(256), "1", GiB(2)),
        readinessProbe: http("/-/ready", "web"),
        livenessProbe: http("/-/healthy", "web", { periodSeconds: 20 }),
        volumeMounts: [
          { name: "config", mountPath: "/etc/prometheus", readOnly: true },
          { name: "tsdb", mountPath: "/prometheus" },
          { name: "tmp", mountPath: "/tmp" },
          { name: "viewer-token", mountPath: TOKENS_DIR, readOnly: true },
        ],
      },
      ports: [{ name: "web", port: pr.port }],
      volumes: [
        { name: "config", configMap: { name: config.metadata!.name } },
        { name: "tsdb", emptyDir: {} },
        // Only the viewer token: scraping is all Prometheus may do.
        { name: "viewer-token", secret: { secretName: TOKENS_SECRET, items: [{ key: "viewer", path: "viewer" }], defaultMode: 0o440 } },
      ],
    }),
  ];
}

function grafana(dashboardJson: string): K8sObject[] {
  const g = STACK.grafana;
  const datasources = new ConfigMap({ metadata: meta("grafana-datasources", "observability"), data: { "datasources.yaml": yamlText(grafanaDatasources()) } });
  const provider = new ConfigMap({ metadata: meta("grafana-dashboard-provider", "observability"), data: { "dashboards.yaml": yamlText(grafanaDashboardProvider(GRAFANA_DASHBOARDS_DIR)) } });
  // deploy/observability/grafana/rlhf-dashboard.json, embedded (kubectl apply -f cannot read files beside it).
  const dashboards = new ConfigMap({ metadata: meta("grafana-dashboards", "observability"), data: { "rlhf-dashboard.json": dashboardJson } });
  return [
    datasources,
    provider,
    dashboards,
    ...stackApp({
      name: g.name,
      component: "observability",
      uid: 472,
      container: {
        name: "grafana",
        image: g.image,
        env: [
          // A demo's Grafana: anonymous viewers; sign in as admin/admin to edit (change it for anything shared).
          { name: "GF_AUTH_ANONYMOUS_ENABLED", value: "true" },
          { name: "GF_AUTH_ANONYMOUS_ORG_ROLE", value: "Viewer" },
          { name: "GF_PATHS_DATA", value: "/var/lib/grafana" },
          // Read-only root filesystem: log to the console only.
          { name: "GF_LOG_MODE", value: "console" },
          { name: "GF_ANALYTICS_REPORTING_ENABLED", value: "false" },
          { name: "GF_ANALYTICS_CHECK_FOR_UPDATES", value: "false" },
          { name: "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", value: `${GRAFANA_DASHBOARDS_DIR}/rlhf-dashboard.json` },
        ],
        resources: small("50m", MiB(128), "1", GiB(1)),
        readinessProbe: http("/api/health", "http"),
        livenessProbe: http("/api/health", "http", { periodSeconds: 20 }),
        volumeMounts: [
          { name: "datasources", mountPath: "/etc/grafana/provisioning/datasources", readOnly: true },
          { name: "provider", mountPath: "/etc/grafana/provisioning/dashboards", readOnly: true },
          { name: "dashboards", mountPath: GRAFANA_DASHBOARDS_DIR, readOnly: true },
          { name: "state", mountPath: "/var/lib/grafana" },
          { name: "tmp", mountPath: "/tmp" },
        ],
      },
      ports: [{ name: "http", port: g.port }],
      volumes: [
        { name: "datasources", configMap: { name: datasources.metadata!.name } },
        { name: "provider", configMap: { name: provider.metadata!.name } },
        { name: "dashboards", configMap: { name: dashboards.metadata!.name } },
        { name: "state", emptyDir: {} },
      ],
    }),
  ];
}

/** One output file of a profile. */
export interface ManifestFile {
  /** File name inside deploy/k8s/<profile>/ (applied in name order). */
  file: string;
  /** What it holds, for its header. */
  about: string;
  objects: K8sObject[];
}

/** Every file of a profile. `dashboardJson`: the Grafana dashboard (see observability.ts). */
export function buildProfile(p: Profile, dashboardJson: string): ManifestFile[] {
  return [
    { file: "00-namespace.yaml", about: "the namespace", objects: [new Namespace({ metadata: { name: NAMESPACE, labels: { "app.kubernetes.io/part-of": "rlhf" } } })] },
    {
      file: "01-data-volume.yaml",
      about: `the shared volume at ${DATA_DIR} (run folders, checkpoints, user data): ${p.storage.accessMode}${p.storage.accessMode === "ReadWriteMany" ? " (pods on several nodes mount it: the default StorageClass must offer it, e.g. NFS, CephFS, EFS, Filestore)" : " (every pod on one node)"}`,
      objects: [
        new PersistentVolumeClaim({
          metadata: meta(DATA_CLAIM, "storage"),
          spec: { accessModes: [p.storage.accessMode], resources: { requests: { storage: p.storage.size } } },
        }),
      ],
    },
    ...SERVICES.map((s, i) => ({ file: `${10 + i}-${s.name}.yaml`, about: `${s.name}: ${s.role}`, objects: rlhfService(p, s) })),
    { file: "20-network-policies.yaml", about: "ingress rules: deny by default; each service admits its callers and Prometheus", objects: networkPolicies() },
    { file: "30-nats.yaml", about: "NATS with JetStream on a volume (run events, stream RLHF_RUNS)", objects: nats(p) },
    { file: "31-otel-collector.yaml", about: "OpenTelemetry collector: OTLP in from every service, traces out to Jaeger", objects: collector() },
    { file: "32-jaeger.yaml", about: "Jaeger all-in-one: traces (in memory) and the query UI", objects: jaeger() },
    { file: "33-prometheus.yaml", about: "Prometheus: scrapes every pod annotated prometheus.io/scrape in the namespace", objects: prometheus() },
    { file: "34-grafana.yaml", about: `Grafana with the Prometheus data source and the dashboard of deploy/${DASHBOARD_FILE}`, objects: grafana(dashboardJson) },
  ];
}

/** The YAML text of a file: a header, then one document per object. */
export function renderFile(p: Profile, f: ManifestFile): string {
  const header = [
    `# deploy/k8s/${p.name}/${f.file}: ${f.about}.`,
    `# Profile "${p.name}": ${p.description}.`,
    "# Generated by deploy/src/generate.ts from deploy/src/{topology,k8s,observability}.ts: do not edit;",
    "# change those and run `pnpm --filter @rlhf/deploy manifests` (CI checks that this file is up to date).",
  ].join("\n");
  return `${header}\n${f.objects.map((o) => `---\n${stringify(typeof o.toJSON === "function" ? o.toJSON() : o, { lineWidth: 0, aliasDuplicateObjects: false })}`).join("")}`;
}
