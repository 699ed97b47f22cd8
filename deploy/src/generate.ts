/**
 * Writes the plain manifests users apply: deploy/k8s/<profile>/*.yaml for every profile,
 * deploy/docker-compose.yaml and deploy/compose/*. `pnpm --filter @rlhf/deploy manifests` runs
 * it; manifests.test.ts keeps the committed files equal to what it writes.
 *
 *   node --import tsx src/generate.ts [--check] [--registry R --tag T --out DIR]
 *
 * --check: write nothing, exit 1 naming the files that differ. --registry / --tag: your image
 * names (`R/<service>:T`), written to DIR (default: deploy/ itself, only with the defaults).
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { PROFILES, buildProfile, renderFile } from "./k8s";
import { buildCompose } from "./compose";
import { DEPLOY_DIR, DASHBOARD_FILE, readDashboard } from "./observability";
import { IMAGE_REGISTRY, IMAGE_TAG } from "./topology";

/** Every generated file: path relative to deploy/ -> text. */
export function generateAll(deployDir = DEPLOY_DIR): Map<string, string> {
  const dashboard = readDashboard(deployDir);
  if (dashboard === undefined) throw new Error(`deploy/${DASHBOARD_FILE} is missing: the Grafana ConfigMap embeds it`);
  const out = new Map<string, string>();
  for (const p of PROFILES) for (const f of buildProfile(p, dashboard)) out.set(`k8s/${p.name}/${f.file}`, renderFile(p, f));
  for (const f of buildCompose()) out.set(f.path, f.text);
  return out;
}

/** Files of deploy/ that differ from `files` (missing, changed, or stale YAML in deploy/k8s/<profile>/). */
export function staleFiles(files: Map<string, string>, deployDir = DEPLOY_DIR): string[] {
  const stale: string[] = [];
  for (const [path, text] of files) {
    const p = join(deployDir, path);
    if (!existsSync(p) || readFileSync(p, "utf8") !== text) stale.push(path);
  }
  for (const prof of PROFILES) {
    const dir = join(deployDir, "k8s", prof.name);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) if (!files.has(`k8s/${prof.name}/${f}`)) stale.push(`k8s/${prof.name}/${f} (not generated any more)`);
  }
  return stale;
}

function main(argv: string[]): number {
  const flag = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  let files = generateAll();
  const registry = flag("registry");
  const tag = flag("tag");
  const outDir = flag("out") ?? DEPLOY_DIR;
  if (registry || tag) {
    if (outDir === DEPLOY_DIR) throw new Error("--registry / --tag write your own copy: give --out DIR (deploy/ keeps the default image names)");
    const from = new RegExp(`\\b${IMAGE_REGISTRY}/([a-z-]+):${IMAGE_TAG.replace(/\./g, "\\.")}`, "g");
    files = new Map([...files].map(([p, t]) => [p, t.replace(from, `${registry ?? IMAGE_REGISTRY}/$1:${tag ?? IMAGE_TAG}`)]));
  }
  if (argv.includes("--check")) {
    const stale = staleFiles(files, outDir);
    if (stale.length) {
      console.error(`out of date (run \`pnpm --filter @rlhf/deploy manifests\`):\n  ${stale.join("\n  ")}`);
      return 1;
    }
    console.log(`${files.size} files up to date`);
    return 0;
  }
  for (const prof of PROFILES) rmSync(join(outDir, "k8s", prof.name), { recursive: true, force: true });
  for (const [path, text] of files) {
    mkdirSync(dirname(join(outDir, path)), { recursive: true });
    writeFileSync(join(outDir, path), text);
  }
  console.log(`wrote ${files.size} files under ${outDir}`);
  return 0;
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    console.error(`generate: ${(err as Error).message}`);
    process.exitCode = 2;
  }
}
