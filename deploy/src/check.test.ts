// The CI checks of deploy/: every profile, docker-compose.yaml and the images pass as committed;
// then good manifests read from disk are broken one way at a time (a wrong port, a missing
// selector, replicas as a string, a root user, an image nobody builds, an address to nowhere, a
// NetworkPolicy that cuts a call...) and each break fails with its own clear line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { checkAll, checkCompose, checkImages, checkSchemas, checkWiring, fmt, loadManifests, parseDockerfile, wiringContext, type Doc } from "./check";
import { DEPLOY_DIR } from "./observability";

const ctx = wiringContext(DEPLOY_DIR);

test("every profile, docker-compose.yaml and the image build pass the checks as committed", () => {
  const problems = checkAll(DEPLOY_DIR);
  assert.deepEqual(problems.map(fmt), []);
  for (const p of ["local", "gpu"]) {
    const { docs } = loadManifests(join(DEPLOY_DIR, "k8s", p), `k8s/${p}`);
    const kinds = new Map<string, number>();
    for (const d of docs) kinds.set(d.obj.kind, (kinds.get(d.obj.kind) ?? 0) + 1);
    console.log(`# k8s/${p}: ${docs.length} objects (${[...kinds].map(([k, n]) => `${n} ${k}`).join(", ")})`);
  }
  assert.deepEqual(
    ctx.images.map((i) => i.image),
    [
      "rlhf/ppo-coordinator:0.1.0",
      "rlhf/policy:0.1.0",
      "rlhf/reward-model:0.1.0",
      "rlhf/reference-model:0.1.0",
      "rlhf/pretrain-mix:0.1.0",
      "rlhf/labeling:0.1.0",
      "rlhf/cli:0.1.0",
      "rlhf/policy:0.1.0-gpu",
      "rlhf/reward-model:0.1.0-gpu",
      "rlhf/reference-model:0.1.0-gpu",
      "rlhf/pretrain-mix:0.1.0-gpu",
    ],
  );
  assert.deepEqual(Object.fromEntries(ctx.servicePorts), { "labeling": 50055, "policy": 50051, "ppo-coordinator": 50050, "pretrain-mix": 50054, "reference-model": 50053, "reward-model": 50052 });
});

/** The profile's documents from disk, one object changed by `edit`; returns the problems as lines. */
function broken(profile: string, kind: string, name: string, edit: (o: Doc["obj"], docs: Doc[]) => void): string[] {
  const { docs } = loadManifests(join(DEPLOY_DIR, "k8s", profile), `k8s/${profile}`);
  const copy: Doc[] = structuredClone(docs);
  const target = copy.find((d) => d.obj.kind === kind && d.obj.metadata?.name === name);
  assert.ok(target, `${kind}/${name} in k8s/${profile}`);
  edit(target.obj, copy);
  return [...checkSchemas(copy), ...checkWiring(copy, ctx)].map(fmt);
}

const container = (o: Doc["obj"]) => o.spec.template.spec.containers[0];
const has = (lines: string[], re: RegExp) => assert.ok(lines.some((l) => re.test(l)), `expected a line matching ${re}, got:\n  ${lines.join("\n  ")}`);

test("a wrong port fails: Service targetPort, container port vs GRPC_PORT, probe port, address port", () => {
  has(
    broken("local", "Service", "reward-model", (o) => (o.spec.ports[0].targetPort = 50099)),
    /^k8s\/local\/12-reward-model\.yaml: Service\/reward-model: port grpc: targetPort 50099 is not a container port of Deployment\/reward-model \(50052, 9464, 9465\)$/,
  );
  const lines = broken("local", "Deployment", "policy", (o) => (container(o).ports[0].containerPort = 50099));
  has(lines, /Deployment\/policy: container policy: container port grpc 50099 differs from GRPC_PORT 50051: the service listens on GRPC_PORT$/);
  // The probes use the health-only port (GRPC_HEALTH_PORT), which must be the container's `health` port.
  const health = broken("local", "Deployment", "policy", (o) => (container(o).ports[2].containerPort = 9466));
  has(health, /Deployment\/policy: container policy: readinessProbe port 9465 is not a port of the container \(50051, 9464, 9466\)$/);
  has(health, /Deployment\/policy: container policy: container port health 9466 differs from GRPC_HEALTH_PORT 9465$/);
  // The Service still sends to the port named grpc, now 50099, which the NetworkPolicy does not open.
  has(lines, /Deployment\/ppo-coordinator: container ppo-coordinator: POLICY_ADDR=policy:50051: no NetworkPolicy admits ppo-coordinator -> policy on port 50099$/);
  has(lines, /NetworkPolicy\/allow-policy: ingress port 50051 is not a container port of the pods it protects$/);
  has(
    broken("local", "ConfigMap", "ppo-coordinator-env", (o) => (o.data.POLICY_ADDR = "policy:50052")),
    /Deployment\/ppo-coordinator: container ppo-coordinator: POLICY_ADDR=policy:50052: Service policy has no port 50052 \(it has 50051, 9464\)$/,
  );
  has(
    broken("local", "ConfigMap", "reference-model-env", (o) => (o.data.GRPC_PORT = "50060")),
    /Deployment\/reference-model: container reference-model: GRPC_PORT 50060 differs from reference-model's own port 50053 \(services\/reference-model\/src\/config\.ts\)/,
  );
});

test("a missing or wrong selector fails", () => {
  has(broken("local", "Service", "policy", (o) => delete o.spec.selector), /Service\/policy: spec\.selector is missing or empty: the Service selects no pods$/);
  has(
    broken("local", "Service", "pretrain-mix", (o) => (o.spec.selector = { "app.kubernetes.io/name": "pretrain-mixx" })),
    /Service\/pretrain-mix: spec\.selector \{"app\.kubernetes\.io\/name":"pretrain-mixx"\} matches no workload's pod labels in this profile$/,
  );
  has(
    broken("gpu", "Deployment", "reward-model", (o) => (o.spec.selector.matchLabels = { app: "rm" })),
    /Deployment\/reward-model: spec\.selector\.matchLabels \{"app":"rm"\} does not match the pod template's labels/,
  );
});

test("replicas as a string, and other schema errors, fail against the Kubernetes schemas", () => {
  has(broken("local", "Deployment", "reward-model", (o) => (o.spec.replicas = "2")), /^k8s\/local\/12-reward-model\.yaml: Deployment\/reward-model: schema: spec\.replicas must be integer$/);
  has(broken("gpu", "HorizontalPodAutoscaler", "pretrain-mix", (o) => (o.spec.maxReplicas = "8")), /HorizontalPodAutoscaler\/pretrain-mix: schema: spec\.maxReplicas must be integer$/);
  has(broken("local", "Service", "nats", (o) => (o.spec.ports[0].protocol = "QUIC")), /Service\/nats: schema: spec\.ports\.0\.protocol must be equal to one of the allowed values/);
  has(broken("local", "Deployment", "jaeger", (o) => (o.kind = "Deploymnet")), /Deploymnet\/jaeger: unknown apiVersion\/kind "apps\/v1\/Deploymnet"/);
  has(broken("local", "Deployment", "grafana", (o) => delete container(o).name), /Deployment\/grafana: schema: spec\.template\.spec\.containers\.0 must have required property name$/);
  // The schema leaves image optional (a controller may fill it in); the wiring check does not.
  has(broken("local", "Deployment", "grafana", (o) => delete container(o).image), /Deployment\/grafana: container grafana: has no image$/);
});

test("every service serves TLS from its Secret and checks tokens from the token Secret; no plaintext on the pod network", () => {
  has(broken("local", "ConfigMap", "policy-env", (o) => delete o.data.GRPC_TLS_CERT_FILE), /Deployment\/policy: container policy: listens on 0\.0\.0\.0 without TLS: set GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE/);
  has(broken("local", "ConfigMap", "reward-model-env", (o) => (o.data.RLHF_INSECURE = "1")), /Deployment\/reward-model: container reward-model: RLHF_INSECURE=1: a pod serves plaintext on the pod network/);
  has(
    broken("gpu", "ConfigMap", "ppo-coordinator-env", (o) => {
      delete o.data.RLHF_OPERATOR_TOKEN_FILE;
      delete o.data.RLHF_VIEWER_TOKEN_FILE;
    }),
    /gpu\/10-ppo-coordinator\.yaml: Deployment\/ppo-coordinator: container ppo-coordinator: checks no bearer token/,
  );
  has(
    broken("local", "Deployment", "pretrain-mix", (o) => (o.spec.template.spec.volumes = o.spec.template.spec.volumes.filter((v: { name: string }) => v.name !== "tokens"))),
    /Deployment\/pretrain-mix: container pretrain-mix: RLHF_SERVICE_TOKEN_FILE=\/etc\/rlhf\/tokens\/service is not in a mounted Secret volume$/,
  );
  has(
    broken("local", "Deployment", "reference-model", (o) => (o.spec.template.spec.volumes.find((v: { name: string }) => v.name === "tls").secret = undefined)),
    /Deployment\/reference-model: container reference-model: GRPC_TLS_CERT_FILE=\/etc\/rlhf\/tls\/tls\.crt is not in a mounted Secret volume$/,
  );
});

test("root users, unbuilt images, floating tags and missing probes or resources fail", () => {
  has(broken("local", "Deployment", "policy", (o) => (o.spec.template.spec.securityContext.runAsUser = 0)), /Deployment\/policy: container policy: runAsUser is 0 \(root\)$/);
  has(
    broken("local", "StatefulSet", "nats", (o) => {
      delete o.spec.template.spec.securityContext.runAsNonRoot;
      delete container(o).securityContext.runAsNonRoot;
    }),
    /StatefulSet\/nats: container nats: runs as root unless runAsNonRoot: true is set/,
  );
  has(broken("local", "Deployment", "policy", (o) => (container(o).image = "rlhf/policy:0.2.0")), /Deployment\/policy: container policy: image rlhf\/policy:0\.2\.0 is not one deploy\/build-images\.sh builds/);
  has(broken("gpu", "Deployment", "ppo-coordinator", (o) => (container(o).image = "rlhf/ppo-coordinator:0.1.0-gpu")), /image rlhf\/ppo-coordinator:0\.1\.0-gpu is not one deploy\/build-images\.sh builds/);
  has(broken("local", "Deployment", "grafana", (o) => (container(o).image = "grafana/grafana:latest")), /container grafana: image "grafana\/grafana:latest" needs a fixed tag/);
  has(broken("local", "Deployment", "otel-collector", (o) => delete container(o).livenessProbe), /container otel-collector: livenessProbe is missing$/);
  has(broken("local", "Deployment", "reward-model", (o) => delete container(o).resources.limits.memory), /container reward-model: resources\.limits\.memory is missing$/);
  has(
    broken("local", "Deployment", "reference-model", (o) => (container(o).livenessProbe.grpc.service = "")),
    /container reference-model: livenessProbe must check the "liveness" health name, got "" \("" is NOT_SERVING until a model is loaded/,
  );
  has(
    broken("gpu", "Deployment", "reward-model", (o) => {
      delete o.spec.template.spec.nodeSelector;
      delete o.spec.template.spec.tolerations;
    }),
    /gpu\/12-reward-model\.yaml: Deployment\/reward-model: requests nvidia\.com\/gpu but has neither a nodeSelector nor tolerations/,
  );
});

test("addresses must name a Service of the profile; replicated services are headless and dns:///; policies must let calls through", () => {
  has(broken("local", "ConfigMap", "reward-model-env", (o) => (o.data.POLICY_ADDR = "polcy:50051")), /Deployment\/reward-model: container reward-model: POLICY_ADDR=polcy:50051: host "polcy" names no Service of this profile$/);
  has(broken("local", "ConfigMap", "policy-env", (o) => (o.data.NATS_URL = "nats://nats.other-ns:4222")), /NATS_URL=nats:\/\/nats\.other-ns:4222: host "nats\.other-ns" is not in namespace rlhf$/);
  has(broken("local", "ConfigMap", "policy-env", (o) => (o.data.OTEL_EXPORTER_OTLP_ENDPOINT = "http://otel-collector:4319")), /Service otel-collector has no port 4319/);
  has(
    broken("local", "ConfigMap", "ppo-coordinator-env", (o) => (o.data.REWARD_MODEL_ADDR = "reward-model:50052")),
    /REWARD_MODEL_ADDR=reward-model:50052: reward-model runs several replicas: write dns:\/\/\/reward-model:50052 so the coordinator spreads batches over all of them$/,
  );
  has(broken("gpu", "Service", "reference-model", (o) => delete o.spec.clusterIP), /Service\/reference-model: its pods run several replicas .*make it headless \(clusterIP: None\)/);
  has(
    broken("local", "NetworkPolicy", "allow-pretrain-mix", (o) => (o.spec.ingress[0].from = [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "policy" } } }])),
    /Deployment\/ppo-coordinator: container ppo-coordinator: PRETRAIN_MIX_ADDR=dns:\/\/\/pretrain-mix:50054: no NetworkPolicy admits ppo-coordinator -> pretrain-mix on port 50054$/,
  );
  has(broken("local", "NetworkPolicy", "allow-policy", (o) => (o.spec.ingress[0].ports = [{ port: 50059, protocol: "TCP" }])), /NetworkPolicy\/allow-policy: ingress port 50059 is not a container port of the pods it protects/);
  has(broken("local", "HorizontalPodAutoscaler", "reward-model", (o) => (o.spec.scaleTargetRef.name = "reward")), /HorizontalPodAutoscaler\/reward-model: scaleTargetRef Deployment\/reward names no workload/);
  has(broken("local", "Deployment", "policy", (o) => (o.spec.template.spec.volumes[0].persistentVolumeClaim.claimName = "runs")), /volume data: claim "runs" names no PersistentVolumeClaim of this profile/);
  has(
    broken("local", "Namespace", "rlhf", (_o, docs) => docs.splice(docs.findIndex((d) => d.obj.kind === "Namespace"), 1)),
    /^profile: no Namespace "rlhf" object/,
  );
});

test("docker-compose.yaml: broken addresses, images, users and build settings fail", () => {
  const text = readFileSync(join(DEPLOY_DIR, "docker-compose.yaml"), "utf8");
  const check = (edit: (c: ReturnType<typeof parse>) => void) => {
    const c = parse(text);
    edit(c);
    return checkCompose(stringify(c), DEPLOY_DIR, "docker-compose.yaml", ctx).map(fmt);
  };
  assert.deepEqual(check(() => undefined), []);
  has(check((c) => (c.services["ppo-coordinator"].environment.POLICY_ADDR = "policy:50059")), /services\.ppo-coordinator: POLICY_ADDR=policy:50059: policy does not listen on 50059 \(it listens on 50051\)$/);
  has(check((c) => (c.services.policy.environment.OTEL_EXPORTER_OTLP_ENDPOINT = "http://otel-collector:4319")), /otel-collector does not listen on 4319 \(it listens on 4317, 4318\)/);
  has(check((c) => (c.services["ppo-coordinator"].environment.REFERENCE_MODEL_ADDR = "reference-model:50053")), /reference-model runs 2 replicas: write dns:\/\/\/reference-model:50053/);
  has(check((c) => (c.services["ppo-coordinator"].environment.PRETRAIN_MIX_ADDR = "dns:///pretrain:50054")), /host "pretrain" is not a service of this file/);
  has(check((c) => delete c.services.jaeger.user), /services\.jaeger: set user: to a non-root uid/);
  has(check((c) => (c.services.nats.user = "0:0")), /services\.nats: user 0:0 is root/);
  has(check((c) => (c.services.policy.build.args.PORT = "50061")), /services\.policy: build\.args\.PORT 50061 differs from 50051/);
  has(check((c) => (c.services.grafana.volumes[2] = "./observability/grafana/missing.json:/etc/grafana/dashboards/x.json:ro")), /mounts \.\/observability\/grafana\/missing\.json, which does not exist/);
  has(check((c) => (c.services["reward-model"].image = "rlhf/reward-model:0.1.1")), /image rlhf\/reward-model:0\.1\.1 is not one deploy\/build-images\.sh builds/);
});

test("the Dockerfile and the build script: targets exist, run as non-root, set GRPC_PORT", () => {
  assert.deepEqual(checkImages(ctx).map(fmt), []);
  const stages = parseDockerfile(readFileSync(join(DEPLOY_DIR, "Dockerfile"), "utf8"));
  assert.deepEqual(
    stages.map((s) => [s.name, s.user ?? "-", s.healthcheck ?? "-"]),
    [
      ["build", "-", "-"],
      ["bundle", "-", "-"],
      ["bundle-gpu", "-", "-"],
      ["cpu", "1000:1000", "CMD"],
      ["gpu", "1000:1000", "CMD"],
      ["cli", "-", "NONE"],
    ],
  );
  const rootCpu = { ...ctx, stages: stages.map((s) => (s.name === "cpu" ? { ...s, user: "root" } : s)) };
  const { docs } = loadManifests(join(DEPLOY_DIR, "k8s", "local"), "k8s/local");
  has(checkWiring(docs, rootCpu).map(fmt), /container policy: Dockerfile target "cpu" of rlhf\/policy:0\.1\.0 runs as root \(root\)$/);
  const noGpu = { ...ctx, stages: stages.filter((s) => s.name !== "gpu") };
  has(checkImages(noGpu).map(fmt), /^build-images\.sh: rlhf\/policy:0\.1\.0-gpu: target "gpu" is not a stage of deploy\/Dockerfile$/);
  const wrongPort = { ...ctx, images: ctx.images.map((i) => (i.image === "rlhf/pretrain-mix:0.1.0" ? { ...i, port: 50055 } : i)) };
  has(checkImages(wrongPort).map(fmt), /rlhf\/pretrain-mix:0\.1\.0: PORT 50055 differs from pretrain-mix's own port 50054/);
});
