/** The five services, named as in ARCHITECTURE.md, with what `rlhf serve` needs to start each. */
export interface ServiceEntry {
  name: string;
  /** Package whose dist/main.js is the process entry point; undefined until the service exists. */
  pkg?: string;
  /** Default port (GRPC_PORT). */
  port: number;
  /** Issue that builds it, for a clear message while it does not exist yet. */
  builtBy?: string;
}

export const SERVICES: readonly ServiceEntry[] = [
  { name: "ppo-coordinator", pkg: "@rlhf/ppo-coordinator", port: 50050 },
  { name: "policy", pkg: "@rlhf/policy", port: 50051 },
  { name: "reward-model", pkg: "@rlhf/reward-model", port: 50052 },
  { name: "reference-model", pkg: "@rlhf/reference-model", port: 50053 },
  { name: "pretrain-mix", pkg: "@rlhf/pretrain-mix", port: 50054 },
];

/** Absolute path of a service's built entry point. */
export function entryPointOf(s: ServiceEntry): string {
  if (!s.pkg) throw new Error(`${s.name} has no entry point yet`);
  return require.resolve(`${s.pkg}/dist/main.js`);
}
