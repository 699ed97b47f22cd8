/**
 * Every CI check of deploy/, from the files on disk: each profile's manifests against the
 * Kubernetes schemas and for their wiring, docker-compose.yaml for its wiring, and the Dockerfile
 * and build script behind the images they name. `pnpm --filter @rlhf/deploy check` prints the
 * problems (exit 1 when there are any).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadManifests, parseBuildScript, parseDockerfile, serviceDefaultPorts, fmt, type Problem, type Doc } from "./load";
import { checkSchemas } from "./schema";
import { checkWiring, type WiringContext } from "./wiring";
import { checkCompose } from "./compose";

export { checkSchemas, checkWiring, checkCompose, loadManifests, parseBuildScript, parseDockerfile, serviceDefaultPorts, fmt };
export type { Problem, Doc, WiringContext };

/** The context of the checks: deploy/Dockerfile, deploy/build-images.sh, the services' ports. */
export function wiringContext(deployDir: string, namespace = "rlhf"): WiringContext {
  return {
    namespace,
    images: parseBuildScript(readFileSync(join(deployDir, "build-images.sh"), "utf8")),
    stages: parseDockerfile(readFileSync(join(deployDir, "Dockerfile"), "utf8")),
    servicePorts: serviceDefaultPorts(join(deployDir, "..")),
  };
}

/** Schema and wiring problems of one manifest folder. */
export function checkProfileDir(dir: string, label: string, ctx: WiringContext): { docs: Doc[]; problems: Problem[] } {
  const { docs, problems } = loadManifests(dir, label);
  return { docs, problems: [...problems, ...checkSchemas(docs), ...checkWiring(docs, ctx)] };
}

/** The Dockerfile and build script by themselves: every target they use exists and runs as non-root. */
export function checkImages(ctx: WiringContext): Problem[] {
  const problems: Problem[] = [];
  if (ctx.images.length === 0) problems.push({ where: "build-images.sh", message: "no `build <target> <service> <port> \"$TAG...\"` lines" });
  for (const i of ctx.images) {
    if (!ctx.stages.some((s) => s.name === i.target)) problems.push({ where: "build-images.sh", message: `${i.image}: target "${i.target}" is not a stage of deploy/Dockerfile` });
    const def = ctx.servicePorts.get(i.service);
    if (def !== undefined && def !== i.port) problems.push({ where: "build-images.sh", message: `${i.image}: PORT ${i.port} differs from ${i.service}'s own port ${def}` });
  }
  for (const target of new Set(ctx.images.map((i) => i.target))) {
    const stage = ctx.stages.find((s) => s.name === target);
    if (stage && stage.env.GRPC_PORT === undefined && !ctx.stages.some((s) => s.name === stage.from && s.env.GRPC_PORT !== undefined)) {
      problems.push({ where: "Dockerfile", message: `target ${target} sets no GRPC_PORT (ENV GRPC_PORT=\${PORT})` });
    }
  }
  return problems;
}

/** Every problem of deploy/ (profiles under k8s/, docker-compose.yaml, images). */
export function checkAll(deployDir: string, profiles: readonly string[] = ["local", "gpu"]): Problem[] {
  const ctx = wiringContext(deployDir);
  const problems = [...checkImages(ctx)];
  for (const p of profiles) problems.push(...checkProfileDir(join(deployDir, "k8s", p), `k8s/${p}`, ctx).problems);
  problems.push(...checkCompose(readFileSync(join(deployDir, "docker-compose.yaml"), "utf8"), deployDir, "docker-compose.yaml", ctx));
  return problems;
}
