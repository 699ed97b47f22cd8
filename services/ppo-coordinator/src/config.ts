import type { PathRoots } from "@rlhf/errors";
import { envInt, envRoots, envString, envPort, envAddress, envMetrics, ConfigError } from "@rlhf/grpc-kit";
import { parseAddressList } from "./replicas";
import { natsServersFromEnv } from "@rlhf/events";

/** Process configuration of the ppo-coordinator, from the environment. */
export interface CoordinatorConfig {
  /** GRPC_HOST: interface to listen on. Default 127.0.0.1 (loopback only). */
  host: string;
  /** GRPC_PORT: port; 0 picks a free one. Default 50050. */
  port: number;
  /** POLICY_ADDR: the policy service. Default 127.0.0.1:50051. */
  policyAddr: string;
  /**
   * REWARD_MODEL_ADDR: the reward-model replicas: comma-separated `host:port` (one replica each)
   * or `dns:///name:port` (every address the name resolves to, e.g. a headless Service). Default
   * 127.0.0.1:50052. See replicas.ts for how calls are spread.
   */
  rewardModelAddr: string;
  /** REFERENCE_MODEL_ADDR: the reference-model replicas, as REWARD_MODEL_ADDR. Default 127.0.0.1:50053. */
  referenceModelAddr: string;
  /** PRETRAIN_MIX_ADDR: the pretrain-mix replicas, as REWARD_MODEL_ADDR. Default 127.0.0.1:50054. */
  pretrainMixAddr: string;
  /**
   * LABELING_ADDR: the labeling service (`host:port`), for runs with `rankings.source` "labeling".
   * Unset: such a run fails at its rankings stage with a line saying so.
   */
  labelingAddr?: string;
  /**
   * LABELING_TOKEN_FILE: the token the coordinator sends to the labeling service (first line; it
   * needs the `service` role). Unset: the token it sends every service (RLHF_TOKEN,
   * RLHF_CLIENT_TOKEN_FILE, RLHF_AUTH_TOKEN_FILE). For a labeling service outside the session.
   */
  labelingTokenFile?: string;
  /** REPLICA_RESOLVE_MS: how often `dns:///` names of the replicated services are resolved again. Default 5,000. */
  replicaResolveMs: number;
  /** REPLICA_WAIT_MS: how long a call waits for a first replica of a service to appear. Default 60,000. */
  replicaWaitMs: number;
  /** RUNS_DIR: folder of the run folders (created). Default ./runs. */
  runsDir: string;
  /**
   * DATA_ROOT: every file or folder a run config names (`data.files.*`, `model.base_checkpoint`)
   * must resolve, symlinks included, inside one of these (':'-separated folders or files); others
   * are PERMISSION_DENIED at StartRun / ResumeRun. Default: RUNS_DIR.
   */
  dataRoots: PathRoots;
  /** CALL_DEADLINE_MS: deadline of every unary call to a model service. Default 600,000. */
  callDeadlineMs: number;
  /** MAX_RECEIVE_BYTES: largest gRPC message accepted. Default 4 MiB. */
  maxReceiveBytes: number;
  /** SHUTDOWN_GRACE_MS: time in-flight calls get on SIGTERM. Default 10,000. */
  shutdownGraceMs: number;
  /**
   * NATS_URL: NATS server(s) with JetStream (`nats://host:port`, comma-separated for several)
   * that get run events (see @rlhf/events). Unset: no NATS.
   */
  natsServers?: string[];
  /** METRICS_HOST: interface of the Prometheus endpoint. Default 127.0.0.1 (0.0.0.0 in containers). */
  metricsHost: string;
  /** METRICS_PORT: port of the Prometheus endpoint http://METRICS_HOST:METRICS_PORT/metrics; 0 turns it off. Default 9464. */
  metricsPort: number;
  /** Derived: METRICS_PORT was set, so a busy port stops the start (a busy default port only logs a warning). */
  metricsPortRequired: boolean;
}

/** Parses the environment once; throws ConfigError with one clear line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): CoordinatorConfig {
  const runsDir = envString(env, "RUNS_DIR", "runs");
  return {
    host: envString(env, "GRPC_HOST", "127.0.0.1"),
    port: envPort(env, "GRPC_PORT", 50050),
    policyAddr: envAddress(env, "POLICY_ADDR", "127.0.0.1:50051"),
    rewardModelAddr: envAddressList(env, "REWARD_MODEL_ADDR", "127.0.0.1:50052"),
    referenceModelAddr: envAddressList(env, "REFERENCE_MODEL_ADDR", "127.0.0.1:50053"),
    pretrainMixAddr: envAddressList(env, "PRETRAIN_MIX_ADDR", "127.0.0.1:50054"),
    labelingAddr: env.LABELING_ADDR?.trim() ? envAddress(env, "LABELING_ADDR", "") : undefined,
    labelingTokenFile: env.LABELING_TOKEN_FILE?.trim() || undefined,
    replicaResolveMs: envInt(env, "REPLICA_RESOLVE_MS", 5000, 100, 3_600_000),
    replicaWaitMs: envInt(env, "REPLICA_WAIT_MS", 60_000, 0, 3_600_000),
    runsDir,
    dataRoots: envRoots(env, "DATA_ROOT", runsDir),
    callDeadlineMs: envInt(env, "CALL_DEADLINE_MS", 600_000, 1000, 24 * 3600_000),
    maxReceiveBytes: envInt(env, "MAX_RECEIVE_BYTES", 4 * 1024 * 1024, 1024, 1024 ** 3),
    shutdownGraceMs: envInt(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    natsServers: natsServersFromEnv(env),
    ...envMetrics(env),
  };
}

/** A replica address list (see {@link parseAddressList}); a bad entry is one ConfigError line naming the variable. */
function envAddressList(env: Record<string, string | undefined>, name: string, def: string): string {
  const v = envString(env, name, def);
  try {
    parseAddressList(v, name);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  return v;
}
