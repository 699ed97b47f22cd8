/**
 * A container health check without extra tools in the image:
 *
 *   node node_modules/@rlhf/grpc-kit/dist/health-probe.js [host:port] [service]
 *
 * exits 0 when the server answers grpc.health.v1 `Check(service)` with SERVING, else 1 with one
 * line on stderr. Defaults: `127.0.0.1:$GRPC_PORT` and the "liveness" name (SERVING while the
 * process runs, model loaded or not; see LIVENESS_HEALTH_SERVICE). The images' HEALTHCHECK runs it.
 */
import { checkHealth } from "./probe";

/** The address and health name to check, from the arguments and GRPC_PORT. */
export function probeTarget(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): { address: string; service: string } {
  const port = env.GRPC_PORT?.trim();
  const address = argv[0] ?? (port ? `127.0.0.1:${port}` : "");
  if (!address) throw new Error("health-probe: give host:port, or set GRPC_PORT");
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(address)) throw new Error(`health-probe: address must look like host:port, got "${address}"`);
  return { address, service: argv[1] ?? "liveness" };
}

/** Checks once; resolves with the exit status (0 SERVING, 1 anything else). */
export async function probe(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, deadlineMs = 3000): Promise<number> {
  let target: { address: string; service: string };
  try {
    target = probeTarget(argv, env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
  try {
    const status = await checkHealth(target.address, target.service, deadlineMs);
    if (status === "SERVING") return 0;
    process.stderr.write(`health-probe: ${target.address} "${target.service}" is ${status}\n`);
  } catch (err) {
    process.stderr.write(`health-probe: ${target.address} "${target.service}": ${(err as Error).message}\n`);
  }
  return 1;
}

if (require.main === module) {
  void probe(process.argv.slice(2), process.env).then((code) => process.exit(code));
}
