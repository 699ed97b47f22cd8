// The committed manifests are what the generator writes (like libs/run-config keeps CONFIG.md), the
// YAML reads back as exactly the generated objects, and users can write copies with their own image
// names.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { generateAll, staleFiles } from "./generate";
import { PROFILES, buildProfile } from "./k8s";
import { DEPLOY_DIR, readDashboard } from "./observability";
import { checkAll, fmt } from "./check";
import { SERVICES, serviceEnv } from "./topology";

test("deploy/k8s/<profile>/, docker-compose.yaml and deploy/compose/ are what the generator writes", () => {
  const stale = staleFiles(generateAll());
  assert.deepEqual(stale, [], `out of date: run \`pnpm --filter @rlhf/deploy manifests\` and commit the result:\n  ${stale.join("\n  ")}`);
});

test("the YAML reads back as the generated objects (no value changes type on the way)", () => {
  const dashboard = readDashboard() as string;
  for (const p of PROFILES) {
    for (const f of buildProfile(p, dashboard)) {
      const docs = parseAllDocuments(readFileSync(join(DEPLOY_DIR, "k8s", p.name, f.file), "utf8")).map((d) => d.toJS());
      assert.deepEqual(docs, f.objects.map((o) => JSON.parse(JSON.stringify(o))), `k8s/${p.name}/${f.file}`);
    }
  }
  // The Grafana ConfigMap carries the dashboard file byte for byte.
  const grafana = parseAllDocuments(readFileSync(join(DEPLOY_DIR, "k8s", "local", "34-grafana.yaml"), "utf8")).map((d) => d.toJS());
  assert.equal(grafana.find((o) => o.metadata.name === "grafana-dashboards").data["rlhf-dashboard.json"], dashboard);
});

test("--registry/--tag write a copy with your image names, which passes the same checks but the image list", () => {
  const out = mkdtempSync(join(tmpdir(), "manifests-"));
  const r = spawnSync(process.execPath, ["--import", "tsx", join(DEPLOY_DIR, "src", "generate.ts"), "--registry", "ghcr.io/acme", "--tag", "1.2.3", "--out", out], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const policy = readFileSync(join(out, "k8s", "gpu", "11-policy.yaml"), "utf8");
  assert.match(policy, /image: ghcr\.io\/acme\/policy:1\.2\.3-gpu$/m);
  assert.doesNotMatch(policy, /rlhf\/policy:0\.1\.0/);
  const refused = spawnSync(process.execPath, ["--import", "tsx", join(DEPLOY_DIR, "src", "generate.ts"), "--tag", "9"], { encoding: "utf8" });
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /--registry \/ --tag write your own copy: give --out DIR/);
  // The committed files still check out (the copy went elsewhere).
  assert.deepEqual(checkAll(DEPLOY_DIR).map(fmt), []);
});

test("every service a service calls is addressed in its environment (<NAME>_ADDR), in both profiles", () => {
  for (const s of SERVICES) {
    for (const gpu of [false, true]) {
      const env = serviceEnv(s, gpu);
      for (const callee of s.calls) {
        const name = `${callee.toUpperCase().replaceAll("-", "_")}_ADDR`;
        assert.ok(env[name], `${s.name} calls ${callee} but its environment has no ${name}`);
      }
    }
  }
});
