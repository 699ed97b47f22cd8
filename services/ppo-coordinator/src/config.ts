import { ConfigError, envString, envVar, listenEnv, maxReceiveBytesEnv, METRICS_ENV, parseAddressList, parseEnv, SHUTDOWN_GRACE_ENV, type EnvConfig } from "@rlhf/grpc-kit";
import { natsEnvVar } from "@rlhf/events";

/** A replica address list (see {@link parseAddressList}); a bad entry is one ConfigError line naming the variable. */
function addressListEnv(name: string, def: string, doc: string) {
  return envVar.custom(name, {
    doc,
    defaultText: def,
    limitsText: "`host:port` or `dns:///name:port`, comma-separated",
    parse: (env): string => {
      const v = envString(env, name, def);
      try {
        parseAddressList(v, name);
      } catch (err) {
        throw new ConfigError((err as Error).message);
      }
      return v;
    },
  });
}

/** The ppo-coordinator's environment variables: names, defaults, limits and meaning (docs/services.md is generated from it). */
export const COORDINATOR_ENV = {
  ...listenEnv(50050),
  policyAddr: envVar.address("POLICY_ADDR", "127.0.0.1:50051", "the policy service"),
  rewardModelAddr: addressListEnv(
    "REWARD_MODEL_ADDR",
    "127.0.0.1:50052",
    "the reward-model replicas: comma-separated `host:port` (one replica each) or `dns:///name:port` (every address the name resolves to, e.g. a headless Service); batches are spread across them (see Deployment)",
  ),
  referenceModelAddr: addressListEnv("REFERENCE_MODEL_ADDR", "127.0.0.1:50053", "the reference-model replicas, as REWARD_MODEL_ADDR"),
  pretrainMixAddr: addressListEnv("PRETRAIN_MIX_ADDR", "127.0.0.1:50054", "the pretrain-mix replicas, as REWARD_MODEL_ADDR"),
  labelingAddr: envVar.optionalAddress(
    "LABELING_ADDR",
    "the labeling service, for runs with `rankings.source: labeling` (see Labeling); unset: such a run fails at its rankings stage saying so",
  ),
  labelingTokenFile: envVar.optional("LABELING_TOKEN_FILE", {
    doc: "the token sent to the labeling service (its first line; the `service` role); unset: the token sent to every service (RLHF_TOKEN, RLHF_CLIENT_TOKEN_FILE, RLHF_AUTH_TOKEN_FILE)",
  }),
  replicaResolveMs: envVar.int("REPLICA_RESOLVE_MS", 5000, { min: 100, max: 3_600_000, doc: "how often `dns:///` names of the replicated services are resolved again (and after a replica answered UNAVAILABLE)" }),
  replicaWaitMs: envVar.int("REPLICA_WAIT_MS", 60_000, { min: 0, max: 3_600_000, doc: "how long a call waits for a first replica of a service to appear" }),
  runsDir: envVar.string("RUNS_DIR", "runs", { doc: "folder of the run folders (created); the model services must see the same paths (one machine, or a shared volume)" }),
  dataRoots: envVar.roots("DATA_ROOT", (env) => envString(env, "RUNS_DIR", "runs"), {
    defaultText: "RUNS_DIR",
    doc: "every file or folder a run config names (`data.files.*`, `model.base_checkpoint`) must resolve, symlinks included, inside one of these folders or files; others are PERMISSION_DENIED at StartRun / ResumeRun",
  }),
  callDeadlineMs: envVar.int("CALL_DEADLINE_MS", 600_000, { min: 1000, max: 24 * 3600_000, doc: "deadline of every unary call to a model service" }),
  maxReceiveBytes: maxReceiveBytesEnv(),
  shutdownGraceMs: SHUTDOWN_GRACE_ENV,
  natsServers: natsEnvVar("every run event"),
  ...METRICS_ENV,
};

/** Process configuration of the ppo-coordinator (see {@link COORDINATOR_ENV}). */
export type CoordinatorConfig = EnvConfig<typeof COORDINATOR_ENV>;

/** Parses the environment once; throws ConfigError with one clear line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): CoordinatorConfig {
  return parseEnv(COORDINATOR_ENV, env);
}
