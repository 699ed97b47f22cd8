// deploy/make-secrets.sh makes every Secret the Kubernetes profiles mount: one TLS Secret per
// service (a certificate for its Service name, signed by the CA every service trusts) and the token
// Secret with one token per role; every service's Deployment mounts its own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { PROFILES, buildProfile } from "./k8s";
import { DEPLOY_DIR, readDashboard } from "./observability";
import { SERVICES, TOKENS_SECRET, tlsSecretOf } from "./topology";

const out = join(mkdtempSync(join(tmpdir(), "make-secrets-")), "out");
const run = spawnSync("bash", [join(DEPLOY_DIR, "make-secrets.sh"), "--namespace", "rlhf", "--out", out, "--days", "2"], { encoding: "utf8" });

test("make-secrets.sh writes a TLS Secret per service and the token Secret, with certificates the CA signed", () => {
  assert.equal(run.status, 0, run.stderr);
  const secrets = parseAllDocuments(readFileSync(join(out, "secrets.yaml"), "utf8")).map((d) => d.toJS() as { kind: string; type: string; metadata: { name: string; namespace: string }; data: Record<string, string> });
  assert.deepEqual(secrets.map((s) => s.metadata.name).sort(), [...SERVICES.map((s) => tlsSecretOf(s.name)), TOKENS_SECRET].sort());
  for (const s of SERVICES) {
    const secret = secrets.find((x) => x.metadata.name === tlsSecretOf(s.name));
    assert.equal(secret?.type, "kubernetes.io/tls");
    assert.deepEqual(Object.keys(secret?.data ?? {}).sort(), ["ca.crt", "tls.crt", "tls.key"]);
    const cert = Buffer.from(secret!.data["tls.crt"], "base64").toString();
    assert.match(cert, /^-----BEGIN CERTIFICATE-----/);
    assert.match(Buffer.from(secret!.data["tls.key"], "base64").toString(), /^-----BEGIN PRIVATE KEY-----/);
    assert.match(execFileSync("openssl", ["verify", "-CAfile", join(out, "ca.crt"), join(out, `${s.name}.crt`)], { encoding: "utf8" }), /: OK/);
    const san = execFileSync("openssl", ["x509", "-in", join(out, `${s.name}.crt`), "-noout", "-ext", "subjectAltName"], { encoding: "utf8" });
    for (const name of [`DNS:${s.name}`, `DNS:${s.name}.rlhf.svc`, "IP Address:127.0.0.1"]) assert.ok(san.includes(name), `${s.name}: ${name} in ${san}`);
  }
  const tokens = secrets.find((x) => x.metadata.name === TOKENS_SECRET)!.data;
  const values = ["service", "operator", "viewer"].map((r) => Buffer.from(tokens[r], "base64").toString());
  for (const v of values) assert.match(v, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(new Set(values).size, 3, "one token per role");
  assert.equal(statSync(join(out, "ca.key")).mode & 0o077, 0, "the CA key is readable by its owner only");
  // A second run refuses to overwrite the folder (its CA key signs what the cluster trusts).
  const again = spawnSync("bash", [join(DEPLOY_DIR, "make-secrets.sh"), "--out", out], { encoding: "utf8" });
  assert.equal(again.status, 2);
  assert.match(again.stderr, /exists and is not empty/);
});

test("every service's Deployment in every profile mounts its own TLS Secret and the token Secret", () => {
  const dashboard = readDashboard() as string;
  for (const p of PROFILES) {
    const objects = buildProfile(p, dashboard).flatMap((f) => f.objects.map((o) => JSON.parse(JSON.stringify(o)) as { kind: string; metadata: { name: string }; spec: { template: { spec: { volumes: { secret?: { secretName: string } }[] } } } }));
    for (const s of SERVICES) {
      const d = objects.find((o) => o.kind === "Deployment" && o.metadata.name === s.name);
      const secrets = (d?.spec.template.spec.volumes ?? []).map((v) => v.secret?.secretName).filter(Boolean);
      assert.deepEqual(secrets, [tlsSecretOf(s.name), TOKENS_SECRET], `${p.name}/${s.name}`);
    }
  }
});

test("Prometheus scrapes with the viewer token only: the rlhf-tokens Secret's viewer key, named in its scrape config", () => {
  const dashboard = readDashboard() as string;
  for (const p of PROFILES) {
    type Obj = { kind: string; metadata: { name: string }; data?: Record<string, string>; spec?: { template: { spec: { volumes: { name: string; secret?: { secretName: string; items?: { key: string }[] } }[] } } } };
    const objects = buildProfile(p, dashboard).flatMap((f) => f.objects.map((o) => JSON.parse(JSON.stringify(o)) as Obj));
    const prom = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "prometheus");
    const tokenVolumes = prom?.spec?.template.spec.volumes.filter((v) => v.secret?.secretName === TOKENS_SECRET) ?? [];
    assert.equal(tokenVolumes.length, 1, `${p}: one token volume`);
    assert.deepEqual(tokenVolumes[0].secret?.items?.map((i) => i.key), ["viewer"], `${p}: the viewer key only`);
    const config = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "prometheus-config")?.data?.["prometheus.yml"] ?? "";
    assert.match(config, /authorization:\n\s+type: Bearer\n\s+credentials_file: \/etc\/rlhf\/tokens\/viewer/, `${p}: the scrape sends it`);
  }
});
