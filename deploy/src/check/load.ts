/**
 * Reading what the checks check, from disk: the YAML documents of a profile folder, the compose
 * file, the Dockerfile's stages, the image build script, and each service's default GRPC_PORT from
 * its own config.ts. Nothing here comes from the generator: the checks see what users apply.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

/** One YAML document of a manifest folder. */
export interface Doc {
  /** File name relative to the checked folder's parent (`k8s/local/12-reward-model.yaml`). */
  file: string;
  /** Index of the document in its file, from 0. */
  index: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- free-form YAML, inspected field by field
  obj: any;
}

/** A problem found: where (file and object) and what, in one line. */
export interface Problem {
  where: string;
  message: string;
}

export const fmt = (p: Problem) => `${p.where}: ${p.message}`;

/** `<file>: <Kind>/<name>` of a document. */
export function whereOf(d: Doc): string {
  const kind = d.obj?.kind ?? "?";
  const name = d.obj?.metadata?.name ?? `#${d.index}`;
  return `${d.file}: ${kind}/${name}`;
}

/** Every document of every *.yaml / *.yml file of `dir` (sorted by name); YAML errors are problems. */
export function loadManifests(dir: string, label: string): { docs: Doc[]; problems: Problem[] } {
  const docs: Doc[] = [];
  const problems: Problem[] = [];
  if (!existsSync(dir)) return { docs, problems: [{ where: label, message: "folder does not exist" }] };
  for (const f of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort()) {
    const file = `${label}/${f}`;
    parseDocs(readFileSync(join(dir, f), "utf8"), file, docs, problems);
  }
  if (docs.length === 0 && problems.length === 0) problems.push({ where: label, message: "no YAML documents" });
  return { docs, problems };
}

/** Parses a multi-document YAML text into `docs`, skipping empty documents. */
export function parseDocs(text: string, file: string, docs: Doc[], problems: Problem[]): void {
  parseAllDocuments(text).forEach((d, index) => {
    if (d.errors.length) {
      problems.push({ where: `${file}#${index}`, message: `invalid YAML: ${d.errors[0].message.split("\n")[0]}` });
      return;
    }
    const obj = d.toJS();
    if (obj !== null && obj !== undefined) docs.push({ file, index, obj });
  });
}

/** A stage of the Dockerfile. */
export interface Stage {
  name: string;
  /** What it is built FROM (an image or an earlier stage). */
  from: string;
  /** Its last USER, if any. */
  user?: string;
  /** "CMD" (a health check), "NONE", or undefined when the stage sets none. */
  healthcheck?: "CMD" | "NONE";
  /** Its ENV assignments. */
  env: Record<string, string>;
}

/** The stages of a Dockerfile (line continuations joined; comments dropped). */
export function parseDockerfile(text: string): Stage[] {
  const lines = text
    .replace(/\\\r?\n/g, " ")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const stages: Stage[] = [];
  for (const line of lines) {
    const [instr, ...rest] = line.split(/\s+/);
    const args = rest.join(" ");
    const cur = stages[stages.length - 1];
    switch (instr.toUpperCase()) {
      case "FROM": {
        const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
        stages.push({ name: m?.[2] ?? String(stages.length), from: m?.[1] ?? "", env: {} });
        break;
      }
      case "USER":
        if (cur) cur.user = args.trim();
        break;
      case "HEALTHCHECK":
        if (cur) cur.healthcheck = /^NONE$/i.test(args.trim()) ? "NONE" : /\bCMD\b/.test(args) ? "CMD" : undefined;
        break;
      case "ENV":
        if (cur) for (const m of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) cur.env[m[1]] = m[2].replace(/^"|"$/g, "");
        break;
    }
  }
  return stages;
}

/** The effective value of a stage setting, following FROM to earlier stages. */
export function inherited<T>(stages: Stage[], name: string, pick: (s: Stage) => T | undefined): T | undefined {
  const seen = new Set<string>();
  for (let s = stages.find((x) => x.name === name); s && !seen.has(s.name); s = stages.find((x) => x.name === s!.from)) {
    seen.add(s.name);
    const v = pick(s);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** One image the build script builds. */
export interface BuiltImage {
  /** Dockerfile target. */
  target: string;
  /** SERVICE build argument. */
  service: string;
  /** PORT build argument. */
  port: number;
  /** Full name with the script's default registry and tag. */
  image: string;
}

/** The `build <target> <service> <port> <tag>` lines of deploy/build-images.sh, with its REGISTRY / TAG defaults. */
export function parseBuildScript(text: string): BuiltImage[] {
  const registry = /REGISTRY="\$\{REGISTRY:-([^}]+)\}"/.exec(text)?.[1] ?? "";
  const tag = /TAG="\$\{TAG:-([^}]+)\}"/.exec(text)?.[1] ?? "";
  const out: BuiltImage[] = [];
  for (const m of text.matchAll(/^\s*build (\S+) (\S+) (\d+) "\$TAG([^"]*)"\s*$/gm)) {
    out.push({ target: m[1], service: m[2], port: Number(m[3]), image: `${registry}/${m[2]}:${tag}${m[4]}` });
  }
  return out;
}

/** GRPC_PORT default of each service, from `listenEnv(N)` (its config table) in services/<name>/src/config.ts. */
export function serviceDefaultPorts(repoRoot: string): Map<string, number> {
  const out = new Map<string, number>();
  const dir = join(repoRoot, "services");
  for (const name of readdirSync(dir)) {
    const cfg = join(dir, name, "src", "config.ts");
    if (!existsSync(cfg)) continue;
    const m = /listenEnv\(\s*(\d+)\s*\)/.exec(readFileSync(cfg, "utf8"));
    if (m) out.set(name, Number(m[1]));
  }
  return out;
}
