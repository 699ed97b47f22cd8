import { resolve } from "node:path";
import { descriptorSetPath, policy as policyPb, pretrainMix, referenceModel, rewardModel } from "@rlhf/proto";
import {
  clientTokenFromEnv,
  createClient,
  startServer,
  ReplicaSet,
  REWARD_MODEL_ROUTES,
  REWARD_MODEL_IDEMPOTENT,
  REFERENCE_MODEL_ROUTES,
  REFERENCE_MODEL_IDEMPOTENT,
  PRETRAIN_MIX_ROUTES,
  PRETRAIN_MIX_IDEMPOTENT,
  type Logger,
  type RunningServer,
} from "@rlhf/grpc-kit";
import { EventPublisher } from "@rlhf/events";
import { LabelingClient } from "@rlhf/labeling-client";
import { RunStore } from "./runs";
import { coordinatorService } from "./server";
import type { CoordinatorConfig } from "./config";
import type { Clients } from "./recipe/gateway";

/** A running coordinator (used by main.ts and by the tests). */
export interface CoordinatorApp {
  server: RunningServer;
  store: RunStore;
  /** The clients of the model services (ReplicaSets for the scaled-out ones: their `stats` count calls per replica). */
  clients: Clients;
  /** The NATS publisher of run events (NATS_URL set). */
  events?: EventPublisher;
  stop(graceMs?: number): Promise<void>;
}

/** Connects to the four model services, loads the runs of RUNS_DIR and starts the server. */
export async function startCoordinator(cfg: CoordinatorConfig, log: Logger): Promise<CoordinatorApp> {
  const opts = { deadlineMs: cfg.callDeadlineMs, maxReceiveMessageBytes: cfg.maxReceiveBytes };
  // The stateless model services may run as several replicas: each batch is spread across them.
  const replicas = { client: opts, resolveEveryMs: cfg.replicaResolveMs, waitForReplicasMs: cfg.replicaWaitMs, log };
  const clients: Clients = {
    // Named, so that a run's error message says which service call failed.
    policy: createClient(policyPb.PolicyServiceClient, cfg.policyAddr, { ...opts, name: "policy" }),
    rewardModel: new ReplicaSet(rewardModel.RewardModelServiceClient, cfg.rewardModelAddr, { ...replicas, name: "reward-model", routes: REWARD_MODEL_ROUTES, idempotent: REWARD_MODEL_IDEMPOTENT }),
    reference: new ReplicaSet(referenceModel.ReferenceModelServiceClient, cfg.referenceModelAddr, { ...replicas, name: "reference-model", routes: REFERENCE_MODEL_ROUTES, idempotent: REFERENCE_MODEL_IDEMPOTENT }),
    pretrainMix: new ReplicaSet(pretrainMix.PretrainMixServiceClient, cfg.pretrainMixAddr, { ...replicas, name: "pretrain-mix", routes: PRETRAIN_MIX_ROUTES, idempotent: PRETRAIN_MIX_IDEMPOTENT }),
    // Only runs with rankings.source "labeling" call it (they wait for people, so no overall limit).
    labeling: cfg.labelingAddr
      ? new LabelingClient(cfg.labelingAddr, { deadlineMs: cfg.callDeadlineMs, ...(cfg.labelingTokenFile ? { token: clientTokenFromEnv({ RLHF_CLIENT_TOKEN_FILE: cfg.labelingTokenFile }) } : {}) })
      : undefined,
  };
  const events = cfg.natsServers ? new EventPublisher({ servers: cfg.natsServers, name: "ppo-coordinator", log }) : undefined;
  const store = new RunStore(resolve(cfg.runsDir), clients, log, events, cfg.dataRoots);
  await store.init();
  const server = await startServer({ services: [coordinatorService(store, log)], log, host: cfg.host, port: cfg.port, maxReceiveMessageBytes: cfg.maxReceiveBytes, descriptorSetPath });
  server.setServing(true);
  return {
    server,
    store,
    clients,
    events,
    stop: async (graceMs) => {
      await store.stopAll();
      await server.shutdown(graceMs);
      for (const c of Object.values(clients)) c?.close();
      await events?.close();
    },
  };
}
