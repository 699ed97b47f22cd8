import { existsSync } from "node:fs";
import { type ParsedArgs, UsageError, allowFlags, flagString } from "../args";
import { SERVICES, entryPointOf } from "../services";
import { EXIT_WITH_PARENT_ENV, exitWithParent } from "../run/parent-watch";

export const SERVE_USAGE = `rlhf serve <service> [--port N] [--host ADDR] [--checkpoint DIR] [--init PRESET] [--seed N] [--metrics-port N] [--insecure]
  <service>           one of: ${SERVICES.map((s) => s.name).join(", ")}
  --port N            GRPC_PORT (default: the service's own, 0 = any free port)
  --host ADDR         GRPC_HOST (default 127.0.0.1; 0.0.0.0 to accept remote calls: then
                      TLS is required, GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE)
  --insecure          RLHF_INSECURE=1: serve plaintext on an address other than loopback anyway
  --checkpoint DIR    CHECKPOINT_DIR: checkpoint folder to load at start
  --init PRESET       INIT_PRESET: start with a seeded random model (tiny, small, gpt2-124m)
  --seed N            INIT_SEED (default 0)
  --metrics-port N    METRICS_PORT: Prometheus endpoint http://METRICS_HOST:N/metrics
                      (default 9464, skipped with a warning when that port is busy; 0 = none)
Every option can be given as its environment variable instead; a flag wins. Tokens
(RLHF_AUTH_TOKEN_FILE, ...) and TLS (GRPC_TLS_*) come from the environment: docs/security.md.
${EXIT_WITH_PARENT_ENV}=1 stops the service (as SIGTERM does) when its standard input closes:
rlhf demo/run/resume set it on their children, so that they die with the CLI.`;

/**
 * Runs a service in this process: sets its environment from the flags, then loads its entry
 * point (which starts tracing before gRPC loads, and handles SIGTERM itself).
 */
export function serve(args: ParsedArgs): void {
  allowFlags(args, ["port", "host", "checkpoint", "init", "seed", "metrics-port", "insecure"], "rlhf serve");
  const name = args.positional[1];
  if (!name) throw new UsageError(`which service?\n${SERVE_USAGE}`);
  if (args.positional.length > 2) throw new UsageError(`rlhf serve takes one service, got: ${args.positional.slice(1).join(" ")}`);
  const svc = SERVICES.find((s) => s.name === name);
  if (!svc) throw new UsageError(`unknown service "${name}"; the services are: ${SERVICES.map((s) => s.name).join(", ")}`);
  if (!svc.pkg) {
    throw new UsageError(`the ${svc.name} service is not built yet (${svc.builtBy}); available now: ${SERVICES.filter((s) => s.pkg).map((s) => s.name).join(", ")}`);
  }
  const setEnv = (flag: string, env: string) => {
    const v = flagString(args, flag);
    if (v !== undefined) process.env[env] = v;
  };
  setEnv("port", "GRPC_PORT");
  setEnv("host", "GRPC_HOST");
  setEnv("checkpoint", "CHECKPOINT_DIR");
  setEnv("init", "INIT_PRESET");
  setEnv("seed", "INIT_SEED");
  setEnv("metrics-port", "METRICS_PORT");
  if (args.flags.get("insecure") === true) process.env.RLHF_INSECURE = "1";
  process.env.GRPC_PORT ??= String(svc.port);
  const entry = entryPointOf(svc);
  if (!existsSync(entry)) throw new UsageError(`${entry} is missing: run \`pnpm build\` first`);
  exitWithParent();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require(entry);
}
