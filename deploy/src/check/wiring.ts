/**
 * Cross-checks of a Kubernetes profile's objects as a whole, each problem one line naming the file,
 * the object and what to fix:
 * - references: every Service selects a workload; every Service port, probe port and NetworkPolicy
 *   port is a port of the containers behind it; ConfigMaps, claims, volumes, service accounts and
 *   HPA targets exist; everything is in the one namespace, which exists;
 * - our services: GRPC_PORT = the container's `grpc` port = the service's own default (its
 *   config.ts); the probes' port = GRPC_HEALTH_PORT (the container's `health` port) or GRPC_PORT;
 *   TLS when listening on 0.0.0.0, bearer tokens checked, TLS and token files from mounted
 *   Secrets, never RLHF_INSECURE; liveness uses the "liveness" health name (a model service without a
 *   model is NOT_SERVING on ""); listening on 0.0.0.0; OTEL_SERVICE_NAME; METRICS_PORT = `metrics`;
 * - addresses: every *_ADDR, OTLP endpoint and NATS URL names a Service of the profile and one of
 *   its ports; a service with several replicas is headless and addressed as `dns:///` (else the
 *   coordinator would see one pod); NetworkPolicies let each of these calls through;
 * - images: ours are built by deploy/build-images.sh from a Dockerfile stage that exists (with the
 *   same SERVICE and PORT), others carry a fixed tag;
 * - safety: no container runs as root (runAsNonRoot, a non-zero runAsUser), no privilege
 *   escalation, requests and limits on every container, probes on every container, GPU requests
 *   with limits and a node selector or toleration.
 */
import { isIP } from "node:net";
import { type BuiltImage, type Doc, type Problem, type Stage, inherited, whereOf } from "./load";

/** What the wiring checks compare the manifests with. */
export interface WiringContext {
  /** The namespace every object belongs to. */
  namespace: string;
  /** Images deploy/build-images.sh builds. */
  images: readonly BuiltImage[];
  /** deploy/Dockerfile's stages. */
  stages: readonly Stage[];
  /** Default GRPC_PORT of each of our services (their config.ts). */
  servicePorts: ReadonlyMap<string, number>;
}

type Obj = Doc["obj"];
const WORKLOADS = new Set(["Deployment", "StatefulSet", "Job"]);

interface Workload {
  doc: Doc;
  name: string;
  labels: Record<string, string>;
  pod: Obj;
  containers: Obj[];
  replicas: number;
}

/** Container port numbers and names of a workload. */
function portsOf(w: Workload): { numbers: Set<number>; names: Map<string, number> } {
  const numbers = new Set<number>();
  const names = new Map<string, number>();
  for (const c of w.containers)
    for (const p of c.ports ?? []) {
      numbers.add(p.containerPort);
      if (p.name) names.set(p.name, p.containerPort);
    }
  return { numbers, names };
}

/** The container port a Service / probe / policy port refers to (number or name); undefined when none. */
function resolvePort(w: Workload, ref: unknown): number | undefined {
  const { numbers, names } = portsOf(w);
  if (typeof ref === "number") return numbers.has(ref) ? ref : undefined;
  if (typeof ref === "string") return /^\d+$/.test(ref) ? (numbers.has(Number(ref)) ? Number(ref) : undefined) : names.get(ref);
  return undefined;
}

const selects = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** `host`, `port` and whether it is a `dns:///` entry, of each entry of an address-like variable; undefined when `name` is not one. */
export function addressesOf(name: string, value: string): { host: string; port: number; dns: boolean; text: string }[] | undefined {
  if (/_ADDR$/.test(name)) {
    return value.split(",").map((text) => {
      const m = /^(dns:\/\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d+)$/.exec(text.trim());
      return m ? { host: m[2], port: Number(m[3]), dns: Boolean(m[1]), text } : { host: "", port: NaN, dns: false, text };
    });
  }
  if (/^OTEL_EXPORTER_OTLP(_TRACES|_METRICS|_LOGS)?_ENDPOINT$/.test(name) || /_URL$/.test(name)) {
    return value.split(",").map((text) => {
      try {
        const u = new URL(text.trim());
        const def = { "http:": 80, "https:": 443, "nats:": 4222, "grpc:": 80 }[u.protocol] ?? NaN;
        return { host: u.hostname, port: u.port ? Number(u.port) : def, dns: false, text };
      } catch {
        return { host: "", port: NaN, dns: false, text };
      }
    });
  }
  return undefined;
}

/** The Service a host names inside `ns` (`x`, `x.ns`, `x.ns.svc`, `x.ns.svc.cluster.local`), or a reason it names none. */
function serviceName(host: string, ns: string): { name?: string; error?: string } {
  if (isIP(host.replace(/^\[|\]$/g, ""))) return { error: "is an IP address: use a Service name" };
  const [name, ...rest] = host.split(".");
  const suffix = rest.join(".");
  if (suffix && ![ns, `${ns}.svc`, `${ns}.svc.cluster.local`].includes(suffix)) return { error: `is not in namespace ${ns}` };
  return { name };
}

/** The wiring problems of one profile. */
export function checkWiring(docs: readonly Doc[], ctx: WiringContext): Problem[] {
  const problems: Problem[] = [];
  const bad = (d: Doc, message: string) => problems.push({ where: whereOf(d), message });
  const ofKind = (kind: string) => docs.filter((d) => d.obj?.kind === kind);
  const byName = (kind: string, name: string) => docs.find((d) => d.obj?.kind === kind && d.obj?.metadata?.name === name);

  // Namespace, unique names.
  if (!byName("Namespace", ctx.namespace)) problems.push({ where: "profile", message: `no Namespace "${ctx.namespace}" object (kubectl apply would fail on every other object)` });
  const seen = new Set<string>();
  for (const d of docs) {
    const o = d.obj;
    if (o?.kind !== "Namespace" && o?.metadata?.namespace !== ctx.namespace) bad(d, `metadata.namespace must be "${ctx.namespace}", got ${JSON.stringify(o?.metadata?.namespace)}`);
    const key = `${o?.kind}/${o?.metadata?.name}`;
    if (seen.has(key)) bad(d, `a second ${key}: names must be unique per kind`);
    seen.add(key);
  }

  // Workloads.
  const hpas = ofKind("HorizontalPodAutoscaler");
  const workloads: Workload[] = docs
    .filter((d) => WORKLOADS.has(d.obj?.kind))
    .map((d) => {
      const tpl = d.obj?.spec?.template ?? {};
      const hpa = hpas.find((h) => h.obj?.spec?.scaleTargetRef?.name === d.obj?.metadata?.name && h.obj?.spec?.scaleTargetRef?.kind === d.obj?.kind);
      const replicas = Math.max(typeof d.obj?.spec?.replicas === "number" ? d.obj.spec.replicas : 1, hpa?.obj?.spec?.maxReplicas ?? 0);
      return { doc: d, name: d.obj?.metadata?.name, labels: tpl.metadata?.labels ?? {}, pod: tpl.spec ?? {}, containers: tpl.spec?.containers ?? [], replicas };
    });
  const configMaps = new Map(ofKind("ConfigMap").map((d) => [d.obj?.metadata?.name as string, (d.obj?.data ?? {}) as Record<string, string>]));
  const claims = new Set(ofKind("PersistentVolumeClaim").map((d) => d.obj?.metadata?.name as string));
  const accounts = new Set(ofKind("ServiceAccount").map((d) => d.obj?.metadata?.name as string));
  const built = new Map(ctx.images.map((i) => [i.image, i]));
  const ourRegistries = new Set(ctx.images.map((i) => i.image.split("/")[0]));

  const envOf = (w: Workload, c: Obj): Record<string, string> => {
    const env: Record<string, string> = {};
    for (const f of c.envFrom ?? []) {
      const name = f.configMapRef?.name;
      if (name === undefined) continue;
      const data = configMaps.get(name);
      if (!data) bad(w.doc, `container ${c.name}: envFrom configMapRef "${name}" names no ConfigMap of this profile`);
      else Object.assign(env, data);
    }
    for (const e of c.env ?? []) if (typeof e.value === "string") env[e.name] = e.value;
    return env;
  };

  for (const w of workloads) {
    const d = w.doc;
    const sel = d.obj?.spec?.selector?.matchLabels;
    if (!sel || Object.keys(sel).length === 0) {
      if (d.obj?.kind !== "Job") bad(d, "spec.selector.matchLabels is missing or empty: the workload selects no pods");
    } else if (!selects(sel, w.labels)) bad(d, `spec.selector.matchLabels ${JSON.stringify(sel)} does not match the pod template's labels ${JSON.stringify(w.labels)}`);
    if (w.containers.length === 0) bad(d, "the pod template has no containers");
    if (w.pod.serviceAccountName && !accounts.has(w.pod.serviceAccountName)) bad(d, `serviceAccountName "${w.pod.serviceAccountName}" names no ServiceAccount of this profile`);
    const volumes = new Map<string, Obj>((w.pod.volumes ?? []).map((v: Obj) => [v.name, v]));
    for (const t of d.obj?.spec?.volumeClaimTemplates ?? []) volumes.set(t.metadata?.name, { name: t.metadata?.name });
    for (const v of volumes.values()) {
      if (v.configMap && !configMaps.has(v.configMap.name)) bad(d, `volume ${v.name}: configMap "${v.configMap.name}" names no ConfigMap of this profile`);
      if (v.persistentVolumeClaim && !claims.has(v.persistentVolumeClaim.claimName)) bad(d, `volume ${v.name}: claim "${v.persistentVolumeClaim.claimName}" names no PersistentVolumeClaim of this profile`);
    }
    const podSec = w.pod.securityContext ?? {};
    const gpuPod = w.containers.some((c: Obj) => c.resources?.limits?.["nvidia.com/gpu"] !== undefined || c.resources?.requests?.["nvidia.com/gpu"] !== undefined);
    if (gpuPod && !w.pod.nodeSelector && !(w.pod.tolerations ?? []).length) bad(d, "requests nvidia.com/gpu but has neither a nodeSelector nor tolerations for GPU nodes");

    for (const c of w.containers) {
      const cw = `container ${c.name}`;
      for (const m of c.volumeMounts ?? []) if (!volumes.has(m.name)) bad(d, `${cw}: volumeMount "${m.name}" names no volume of the pod`);
      // Security.
      const sec = c.securityContext ?? {};
      const nonRoot = sec.runAsNonRoot ?? podSec.runAsNonRoot;
      const uid = sec.runAsUser ?? podSec.runAsUser;
      if (nonRoot !== true) bad(d, `${cw}: runs as root unless runAsNonRoot: true is set (container or pod securityContext)`);
      if (uid === undefined) bad(d, `${cw}: set runAsUser (a non-zero uid) so the user does not depend on the image`);
      else if (uid === 0) bad(d, `${cw}: runAsUser is 0 (root)`);
      if (sec.allowPrivilegeEscalation !== false) bad(d, `${cw}: securityContext.allowPrivilegeEscalation must be false`);
      if (sec.privileged === true) bad(d, `${cw}: privileged containers are not allowed`);
      // Resources.
      for (const kind of ["requests", "limits"])
        for (const r of ["cpu", "memory"]) if (c.resources?.[kind]?.[r] === undefined) bad(d, `${cw}: resources.${kind}.${r} is missing`);
      const gReq = c.resources?.requests?.["nvidia.com/gpu"];
      const gLim = c.resources?.limits?.["nvidia.com/gpu"];
      if (gReq !== undefined && String(gReq) !== String(gLim)) bad(d, `${cw}: nvidia.com/gpu must be set in limits, equal to requests (${gReq} vs ${gLim})`);
      // Probes point at container ports.
      for (const probe of ["readinessProbe", "livenessProbe"]) if (!c[probe]) bad(d, `${cw}: ${probe} is missing`);
      for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
        const p = c[probe];
        if (!p) continue;
        const ref = p.grpc?.port ?? p.httpGet?.port ?? p.tcpSocket?.port;
        if (ref !== undefined && resolvePort(w, ref) === undefined) bad(d, `${cw}: ${probe} port ${JSON.stringify(ref)} is not a port of the container (${[...portsOf(w).numbers].join(", ") || "none"})`);
      }
      // Images.
      const image: string = c.image ?? "";
      const ours = built.get(image);
      if (!image) bad(d, `${cw}: has no image`);
      else if (ourRegistries.has(image.split("/")[0]) && !ours) {
        bad(d, `${cw}: image ${image} is not one deploy/build-images.sh builds (${ctx.images.map((i) => i.image).join(", ")})`);
      } else if (!ours && (!/:[^/]+$/.test(image) || image.endsWith(":latest"))) {
        bad(d, `${cw}: image "${image}" needs a fixed tag (not latest)`);
      }
      if (ours) {
        if (!ctx.stages.some((s) => s.name === ours.target)) bad(d, `${cw}: image ${image} is built from Dockerfile target "${ours.target}", which deploy/Dockerfile does not have`);
        const user = inherited([...ctx.stages], ours.target, (s) => s.user);
        if (!user || /^(0|root)(:|$)/.test(user)) bad(d, `${cw}: Dockerfile target "${ours.target}" of ${image} ${user ? `runs as ${user}` : "sets no USER"} (root)`);
        checkOurService(c, envOf(w, c), ours, ctx, (m) => bad(d, `${cw}: ${m}`), w.pod.volumes ?? []);
      }
    }
  }

  // Services select workloads whose containers have the ports.
  const services = ofKind("Service");
  const backends = (svc: Doc) => workloads.filter((w) => selects(svc.obj?.spec?.selector, w.labels));
  for (const s of services) {
    const sel = s.obj?.spec?.selector;
    if (!sel || Object.keys(sel).length === 0) {
      bad(s, "spec.selector is missing or empty: the Service selects no pods");
      continue;
    }
    const ws = backends(s);
    if (ws.length === 0) {
      bad(s, `spec.selector ${JSON.stringify(sel)} matches no workload's pod labels in this profile`);
      continue;
    }
    for (const p of s.obj?.spec?.ports ?? []) {
      const target = p.targetPort ?? p.port;
      for (const w of ws) if (resolvePort(w, target) === undefined) bad(s, `port ${p.name ?? p.port}: targetPort ${JSON.stringify(target)} is not a container port of ${w.doc.obj.kind}/${w.name} (${[...portsOf(w).numbers].join(", ")})`);
    }
    const many = ws.some((w) => w.replicas > 1);
    if (many && s.obj?.spec?.clusterIP !== "None" && ws.some((w) => w.containers.some((c) => built.has(c.image)))) {
      bad(s, "its pods run several replicas (replicas or an HPA above 1): make it headless (clusterIP: None) so clients see every pod");
    }
  }

  // HPAs.
  for (const h of hpas) {
    const ref = h.obj?.spec?.scaleTargetRef ?? {};
    const w = workloads.find((x) => x.doc.obj.kind === ref.kind && x.name === ref.name);
    if (!w) {
      bad(h, `scaleTargetRef ${ref.kind}/${ref.name} names no workload of this profile`);
      continue;
    }
    const min = h.obj?.spec?.minReplicas ?? 1;
    const max = h.obj?.spec?.maxReplicas;
    if (typeof max === "number" && min > max) bad(h, `minReplicas ${min} > maxReplicas ${max}`);
    if (typeof w.doc.obj.spec?.replicas === "number" && (w.doc.obj.spec.replicas < min || (typeof max === "number" && w.doc.obj.spec.replicas > max))) bad(h, `${ref.kind}/${ref.name} starts with ${w.doc.obj.spec.replicas} replicas, outside [${min}, ${max}]`);
    const usesCpu = (h.obj?.spec?.metrics ?? []).some((m: Obj) => m.resource?.name === "cpu" && m.resource?.target?.type === "Utilization");
    if (usesCpu && w.containers.some((c) => c.resources?.requests?.cpu === undefined)) bad(h, "scales on CPU utilization, but a container of the target has no cpu request");
  }

  // Addresses, and that the NetworkPolicies let those calls through.
  const policies = ofKind("NetworkPolicy");
  const ingressOf = (w: Workload) => policies.filter((p) => (p.obj?.spec?.policyTypes ?? ["Ingress"]).includes("Ingress") && (Object.keys(p.obj?.spec?.podSelector?.matchLabels ?? {}).length === 0 || selects(p.obj?.spec?.podSelector?.matchLabels, w.labels)));
  const admits = (policy: Doc, dst: Workload, src: Workload, port: number) =>
    (policy.obj?.spec?.ingress ?? []).some((rule: Obj) => {
      const fromOk = !rule.from || rule.from.length === 0 || rule.from.some((f: Obj) => f.podSelector && !f.namespaceSelector && !f.ipBlock && (Object.keys(f.podSelector.matchLabels ?? {}).length === 0 || selects(f.podSelector.matchLabels, src.labels)));
      const portOk = !rule.ports || rule.ports.length === 0 || rule.ports.some((p: Obj) => p.port === undefined || resolvePort(dst, p.port) === port);
      return fromOk && portOk;
    });
  for (const w of workloads) {
    for (const c of w.containers) {
      const env = envOf(w, c);
      for (const [name, value] of Object.entries(env)) {
        const entries = addressesOf(name, value);
        if (!entries) continue;
        for (const e of entries) {
          const at = `container ${c.name}: ${name}=${value}`;
          if (!e.host || !Number.isFinite(e.port)) {
            bad(w.doc, `${at}: "${e.text}" is not host:port (or a URL with host and port)`);
            continue;
          }
          const sn = serviceName(e.host, ctx.namespace);
          const svc = sn.name ? byName("Service", sn.name) : undefined;
          if (!svc) {
            bad(w.doc, `${at}: host "${e.host}" ${sn.error ?? "names no Service of this profile"}`);
            continue;
          }
          const sp = (svc.obj?.spec?.ports ?? []).find((p: Obj) => p.port === e.port);
          if (!sp) {
            bad(w.doc, `${at}: Service ${svc.obj.metadata.name} has no port ${e.port} (it has ${(svc.obj?.spec?.ports ?? []).map((p: Obj) => p.port).join(", ")})`);
            continue;
          }
          for (const dst of backends(svc)) {
            // The coordinator shards batches over the replicas it resolves; others may call any one pod.
            if (dst.replicas > 1 && built.has(dst.containers[0]?.image) && !e.dns && built.get(c.image)?.service === "ppo-coordinator") {
              bad(w.doc, `${at}: ${dst.name} runs several replicas: write dns:///${e.host}:${e.port} so the coordinator spreads batches over all of them`);
            }
            const targetPort = resolvePort(dst, sp.targetPort ?? sp.port);
            const ing = ingressOf(dst);
            if (targetPort !== undefined && ing.length > 0 && !ing.some((p) => admits(p, dst, w, targetPort))) {
              bad(w.doc, `${at}: no NetworkPolicy admits ${w.name} -> ${dst.name} on port ${targetPort}`);
            }
          }
        }
      }
    }
  }

  // NetworkPolicies point at pods and ports that exist.
  for (const p of policies) {
    const sel = p.obj?.spec?.podSelector?.matchLabels ?? {};
    const targets = Object.keys(sel).length === 0 ? workloads : workloads.filter((w) => selects(sel, w.labels));
    if (targets.length === 0) bad(p, `spec.podSelector ${JSON.stringify(sel)} matches no pods of this profile`);
    for (const rule of p.obj?.spec?.ingress ?? []) {
      for (const f of rule.from ?? []) {
        const fs = f.podSelector?.matchLabels ?? {};
        if (f.podSelector && Object.keys(fs).length > 0 && !workloads.some((w) => selects(fs, w.labels))) bad(p, `ingress from podSelector ${JSON.stringify(fs)} matches no pods of this profile`);
      }
      for (const port of rule.ports ?? []) {
        if (port.port !== undefined && targets.length > 0 && !targets.some((w) => resolvePort(w, port.port) !== undefined)) bad(p, `ingress port ${JSON.stringify(port.port)} is not a container port of the pods it protects`);
      }
    }
  }
  return problems;
}

/** Checks of one of our five services' containers against its image, env and probes. */
function checkOurService(c: Obj, env: Record<string, string>, image: BuiltImage, ctx: WiringContext, bad: (m: string) => void, volumes: readonly Obj[] = []): void {
  const svc = image.service;
  const def = ctx.servicePorts.get(svc);
  if (def === undefined) return; // the cli image
  const grpcPort = (c.ports ?? []).find((p: Obj) => p.name === "grpc")?.containerPort;
  const envPort = env.GRPC_PORT === undefined ? def : Number(env.GRPC_PORT);
  if (grpcPort === undefined) bad(`has no container port named "grpc"`);
  else if (grpcPort !== envPort) bad(`container port grpc ${grpcPort} differs from GRPC_PORT ${envPort}: the service listens on GRPC_PORT`);
  if (envPort !== def) bad(`GRPC_PORT ${envPort} differs from ${svc}'s own port ${def} (services/${svc}/src/config.ts), which its callers expect`);
  if (image.port !== envPort) bad(`image ${image.image} is built with PORT ${image.port} (deploy/build-images.sh), the container listens on ${envPort}`);
  if (env.GRPC_HOST !== "0.0.0.0") bad(`GRPC_HOST must be 0.0.0.0 in a pod (default 127.0.0.1: nothing outside the container could call it), got ${JSON.stringify(env.GRPC_HOST)}`);
  if (env.OTEL_SERVICE_NAME !== svc) bad(`OTEL_SERVICE_NAME must be "${svc}", got ${JSON.stringify(env.OTEL_SERVICE_NAME)}`);
  const metrics = (c.ports ?? []).find((p: Obj) => p.name === "metrics")?.containerPort;
  if (env.METRICS_PORT !== "0") {
    if (metrics === undefined) bad(`has no container port named "metrics" for METRICS_PORT ${env.METRICS_PORT ?? 9464}`);
    else if (metrics !== Number(env.METRICS_PORT ?? 9464)) bad(`container port metrics ${metrics} differs from METRICS_PORT ${env.METRICS_PORT ?? 9464}`);
    if (env.METRICS_HOST !== "0.0.0.0") bad(`METRICS_HOST must be 0.0.0.0 for Prometheus to reach it, got ${JSON.stringify(env.METRICS_HOST)}`);
  }
  // Security: TLS wherever the service listens beyond loopback, tokens checked, both from Secrets.
  if (env.RLHF_INSECURE === "1" || env.RLHF_INSECURE === "true") bad(`RLHF_INSECURE=${env.RLHF_INSECURE}: a pod serves plaintext on the pod network; mount a TLS Secret instead (deploy/make-secrets.sh)`);
  if (env.GRPC_HOST === "0.0.0.0" && !(env.GRPC_TLS_CERT_FILE && env.GRPC_TLS_KEY_FILE)) bad(`listens on 0.0.0.0 without TLS: set GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE (the service would refuse to start)`);
  if (!Object.keys(env).some((k) => /^RLHF_(AUTH|SERVICE|OPERATOR|VIEWER)_TOKEN_FILE$/.test(k))) bad(`checks no bearer token: set RLHF_SERVICE_TOKEN_FILE (model services) or RLHF_OPERATOR_TOKEN_FILE / RLHF_VIEWER_TOKEN_FILE (coordinator)`);
  const secretMounts = (c.volumeMounts ?? []).filter((m: Obj) => volumes.some((v) => v.name === m.name && v.secret));
  for (const [k, v] of Object.entries(env)) {
    if (!/^(GRPC_TLS_\w+_FILE|RLHF_\w+_TOKEN_FILE)$/.test(k)) continue;
    if (!secretMounts.some((m: Obj) => v.startsWith(`${String(m.mountPath).replace(/\/$/, "")}/`))) bad(`${k}=${v} is not in a mounted Secret volume`);
  }
  // Probes: on GRPC_HEALTH_PORT (health only, plaintext) when set, else on the gRPC port.
  const healthPort = env.GRPC_HEALTH_PORT === undefined ? envPort : Number(env.GRPC_HEALTH_PORT);
  if (env.GRPC_HEALTH_PORT !== undefined) {
    const hp = (c.ports ?? []).find((p: Obj) => p.name === "health")?.containerPort;
    if (hp !== healthPort) bad(`container port health ${hp ?? "(none)"} differs from GRPC_HEALTH_PORT ${healthPort}`);
  }
  for (const [probe, want] of [
    ["readinessProbe", "readiness"],
    ["livenessProbe", "liveness"],
    ["startupProbe", "liveness"],
  ] as const) {
    const g = c[probe]?.grpc;
    if (!g) {
      if (probe !== "startupProbe") bad(`${probe} must be a native gRPC probe (grpc.health.v1)`);
      continue;
    }
    if (g.port !== healthPort) bad(`${probe} checks port ${g.port}, the service answers health checks on ${healthPort}${env.GRPC_HEALTH_PORT === undefined ? "" : " (GRPC_HEALTH_PORT)"}`);
    if ((g.service ?? "") !== want) bad(`${probe} must check the "${want}" health name, got ${JSON.stringify(g.service ?? "")}${(g.service ?? "") === "" ? ' ("" is NOT_SERVING until a model is loaded: the pod would never be ready or would be restarted)' : ""}`);
  }
}
