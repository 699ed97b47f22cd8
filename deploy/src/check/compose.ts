/**
 * The same wiring checks for deploy/docker-compose.yaml: every address names a Compose service and
 * a port it listens on (our services: their GRPC_PORT; the collector: its mounted configuration's
 * receivers; NATS: its --port), a service with several replicas is addressed as `dns:///`, our
 * images are the ones deploy/build-images.sh builds (and the `build:` section says the same target,
 * SERVICE and PORT), other images carry a fixed tag and a non-root `user`, files mounted from the
 * repository exist, named volumes and depends_on entries are declared.
 */
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { parse } from "yaml";
import { addressesOf, type WiringContext } from "./wiring";
import { type Problem, inherited } from "./load";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- free-form YAML
type Obj = any;

/** Ports a third-party service listens on, by image name (defaults of those images). */
const KNOWN_PORTS: Record<string, number[]> = {
  "jaegertracing/all-in-one": [4317, 4318, 16686, 14269],
  "prom/prometheus": [9090],
  "grafana/grafana": [3000],
};

/** Problems of a compose file (`text`), whose relative paths are relative to `dir`. */
export function checkCompose(text: string, dir: string, file: string, ctx: WiringContext): Problem[] {
  const problems: Problem[] = [];
  let doc: Obj;
  try {
    doc = parse(text);
  } catch (err) {
    return [{ where: file, message: `invalid YAML: ${(err as Error).message.split("\n")[0]}` }];
  }
  const services: Record<string, Obj> = doc?.services ?? {};
  const volumes = new Set(Object.keys(doc?.volumes ?? {}));
  const built = new Map(ctx.images.map((i) => [i.image, i]));
  const ourRegistries = new Set(ctx.images.map((i) => i.image.split("/")[0]));
  const bad = (name: string, message: string) => problems.push({ where: `${file}: services.${name}`, message });
  if (Object.keys(services).length === 0) problems.push({ where: file, message: "no services" });

  const envOf = (s: Obj): Record<string, string> => {
    const e = s.environment ?? {};
    if (Array.isArray(e)) return Object.fromEntries(e.map((kv: string) => [kv.split("=")[0], kv.slice(kv.indexOf("=") + 1)]));
    return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, String(v)]));
  };
  const flag = (s: Obj, name: string): string | undefined => {
    const cmd: string[] = Array.isArray(s.command) ? s.command : typeof s.command === "string" ? s.command.split(/\s+/) : [];
    return cmd.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
  };

  // What each service listens on.
  const listens = new Map<string, Set<number>>();
  for (const [name, s] of Object.entries(services)) {
    const image: string = s.image ?? "";
    const ours = built.get(image);
    const ports = new Set<number>();
    if (ours) ports.add(Number(envOf(s).GRPC_PORT ?? ctx.servicePorts.get(ours.service)));
    const repo = image.replace(/:[^/]+$/, "");
    for (const p of KNOWN_PORTS[repo] ?? []) ports.add(p);
    if (/^nats(:|$)/.test(image)) ports.add(Number(flag(s, "port") ?? 4222));
    if (/opentelemetry-collector/.test(image)) {
      // The receivers of the configuration it mounts.
      for (const v of s.volumes ?? []) {
        const [src, dst] = String(v).split(":");
        if (dst && flag(s, "config") === dst && existsSync(join(dir, src))) {
          const cfg = parse(readFileSync(join(dir, src), "utf8"));
          for (const proto of Object.values(cfg?.receivers?.otlp?.protocols ?? {}) as Obj[]) {
            const port = Number(String(proto?.endpoint ?? "").split(":").pop());
            if (Number.isFinite(port)) ports.add(port);
          }
        }
      }
    }
    listens.set(name, ports);
  }

  for (const [name, s] of Object.entries(services)) {
    const image: string = s.image ?? "";
    const ours = built.get(image);
    const env = envOf(s);
    if (!image) bad(name, "has no image");
    else if (ourRegistries.has(image.split("/")[0]) && !ours) bad(name, `image ${image} is not one deploy/build-images.sh builds (${ctx.images.map((i) => i.image).join(", ")})`);
    else if (!ours && (!/:[^/]+$/.test(image) || image.endsWith(":latest"))) bad(name, `image "${image}" needs a fixed tag (not latest)`);
    if (ours) {
      const b = s.build;
      if (b) {
        if (b.target !== ours.target) bad(name, `build.target "${b.target}" differs from deploy/build-images.sh's "${ours.target}" for ${image}`);
        if (b.args?.SERVICE !== ours.service) bad(name, `build.args.SERVICE "${b.args?.SERVICE}" differs from "${ours.service}" (deploy/build-images.sh)`);
        if (Number(b.args?.PORT) !== ours.port) bad(name, `build.args.PORT ${b.args?.PORT} differs from ${ours.port} (deploy/build-images.sh)`);
        if (b.dockerfile && !existsSync(join(dir, b.context ?? ".", b.dockerfile))) bad(name, `build.dockerfile ${b.dockerfile} does not exist (from context ${b.context ?? "."})`);
      }
      const user = inherited([...ctx.stages], ours.target, (st) => st.user);
      if (!user || /^(0|root)(:|$)/.test(user)) bad(name, `its Dockerfile target "${ours.target}" runs as root`);
      if (inherited([...ctx.stages], ours.target, (st) => st.healthcheck) !== "CMD" && ctx.servicePorts.has(ours.service)) bad(name, `its Dockerfile target "${ours.target}" has no HEALTHCHECK`);
      const def = ctx.servicePorts.get(ours.service);
      if (def !== undefined) {
        const port = Number(env.GRPC_PORT ?? def);
        if (port !== def) bad(name, `GRPC_PORT ${port} differs from ${ours.service}'s own port ${def} (services/${ours.service}/src/config.ts)`);
        if (port !== ours.port) bad(name, `image ${image} is built with PORT ${ours.port}, the service listens on ${port}`);
        if (env.GRPC_HOST !== "0.0.0.0") bad(name, `GRPC_HOST must be 0.0.0.0 in a container, got ${JSON.stringify(env.GRPC_HOST)}`);
        if (env.OTEL_SERVICE_NAME !== ours.service) bad(name, `OTEL_SERVICE_NAME must be "${ours.service}", got ${JSON.stringify(env.OTEL_SERVICE_NAME)}`);
      }
    }
    // Users: ours from their Dockerfile USER (unless overridden); others must say.
    const user = s.user === undefined ? undefined : String(s.user);
    if (user !== undefined && /^(0|root)(:|$)/.test(user)) bad(name, `user ${user} is root`);
    if (!ours && user === undefined) bad(name, `set user: to a non-root uid (the image ${image} may run as root)`);
    // Addresses.
    for (const [k, v] of Object.entries(env)) {
      for (const e of addressesOf(k, v) ?? []) {
        const at = `${k}=${v}`;
        if (!e.host || !Number.isFinite(e.port)) bad(name, `${at}: "${e.text}" is not host:port`);
        else if (!services[e.host]) bad(name, `${at}: host "${e.host}" is not a service of this file`);
        else if (!listens.get(e.host)?.has(e.port)) bad(name, `${at}: ${e.host} does not listen on ${e.port} (it listens on ${[...(listens.get(e.host) ?? [])].join(", ") || "nothing known"})`);
        else if ((services[e.host].deploy?.replicas ?? 1) > 1 && !e.dns && ours?.service === "ppo-coordinator") bad(name, `${at}: ${e.host} runs ${services[e.host].deploy.replicas} replicas: write dns:///${e.host}:${e.port} so the coordinator uses all of them`);
      }
    }
    for (const dep of Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {})) if (!services[dep]) bad(name, `depends_on "${dep}" is not a service of this file`);
    for (const v of s.volumes ?? []) {
      const src = String(typeof v === "string" ? v.split(":")[0] : v.source);
      if (src.startsWith(".") || isAbsolute(src)) {
        if (!existsSync(join(dir, src))) bad(name, `mounts ${src}, which does not exist (relative to ${file})`);
      } else if (!volumes.has(src)) bad(name, `volume "${src}" is not declared under volumes:`);
    }
  }
  return problems;
}
