import { envInt, envString, envPort, envAddress } from "@rlhf/grpc-kit";

/** Process configuration of the ppo-coordinator, from the environment. */
export interface CoordinatorConfig {
  /** GRPC_HOST: interface to listen on. Default 127.0.0.1 (loopback only). */
  host: string;
  /** GRPC_PORT: port; 0 picks a free one. Default 50050. */
  port: number;
  /** POLICY_ADDR: the policy service. Default 127.0.0.1:50051. */
  policyAddr: string;
  /** REWARD_MODEL_ADDR: the reward-model service. Default 127.0.0.1:50052. */
  rewardModelAddr: string;
  /** REFERENCE_MODEL_ADDR: the reference-model service. Default 127.0.0.1:50053. */
  referenceModelAddr: string;
  /** PRETRAIN_MIX_ADDR: the pretrain-mix service. Default 127.0.0.1:50054. */
  pretrainMixAddr: string;
  /** RUNS_DIR: folder of the run folders (created). Default ./runs. */
  runsDir: string;
  /** CALL_DEADLINE_MS: deadline of every unary call to a model service. Default 600,000. */
  callDeadlineMs: number;
  /** MAX_RECEIVE_BYTES: largest gRPC message accepted. Default 4 MiB. */
  maxReceiveBytes: number;
  /** SHUTDOWN_GRACE_MS: time in-flight calls get on SIGTERM. Default 10,000. */
  shutdownGraceMs: number;
}

/** Parses the environment once; throws ConfigError with one clear line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): CoordinatorConfig {
  return {
    host: envString(env, "GRPC_HOST", "127.0.0.1"),
    port: envPort(env, "GRPC_PORT", 50050),
    policyAddr: envAddress(env, "POLICY_ADDR", "127.0.0.1:50051"),
    rewardModelAddr: envAddress(env, "REWARD_MODEL_ADDR", "127.0.0.1:50052"),
    referenceModelAddr: envAddress(env, "REFERENCE_MODEL_ADDR", "127.0.0.1:50053"),
    pretrainMixAddr: envAddress(env, "PRETRAIN_MIX_ADDR", "127.0.0.1:50054"),
    runsDir: envString(env, "RUNS_DIR", "runs"),
    callDeadlineMs: envInt(env, "CALL_DEADLINE_MS", 600_000, 1000, 24 * 3600_000),
    maxReceiveBytes: envInt(env, "MAX_RECEIVE_BYTES", 4 * 1024 * 1024, 1024, 1024 ** 3),
    shutdownGraceMs: envInt(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
  };
}
