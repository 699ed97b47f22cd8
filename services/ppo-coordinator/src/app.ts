import { resolve } from "node:path";
import { descriptorSetPath, policy as policyPb, pretrainMix, referenceModel, rewardModel } from "@rlhf/proto";
import { createClient, startServer, type Logger, type RunningServer } from "@rlhf/grpc-kit";
import { RunStore } from "./runs";
import { coordinatorService } from "./server";
import type { CoordinatorConfig } from "./config";
import type { Clients } from "./recipe/context";

/** A running coordinator (used by main.ts and by the tests). */
export interface CoordinatorApp {
  server: RunningServer;
  store: RunStore;
  stop(graceMs?: number): Promise<void>;
}

/** Connects to the four model services, loads the runs of RUNS_DIR and starts the server. */
export async function startCoordinator(cfg: CoordinatorConfig, log: Logger): Promise<CoordinatorApp> {
  const opts = { deadlineMs: cfg.callDeadlineMs, maxReceiveMessageBytes: cfg.maxReceiveBytes };
  const clients: Clients = {
    // Named, so that a run's error message says which service call failed.
    policy: createClient(policyPb.PolicyServiceClient, cfg.policyAddr, { ...opts, name: "policy" }),
    rewardModel: createClient(rewardModel.RewardModelServiceClient, cfg.rewardModelAddr, { ...opts, name: "reward-model" }),
    reference: createClient(referenceModel.ReferenceModelServiceClient, cfg.referenceModelAddr, { ...opts, name: "reference-model" }),
    pretrainMix: createClient(pretrainMix.PretrainMixServiceClient, cfg.pretrainMixAddr, { ...opts, name: "pretrain-mix" }),
  };
  const store = new RunStore(resolve(cfg.runsDir), clients, log);
  await store.init();
  const server = await startServer({ services: [coordinatorService(store, log)], log, host: cfg.host, port: cfg.port, maxReceiveMessageBytes: cfg.maxReceiveBytes, descriptorSetPath });
  server.setServing(true);
  return {
    server,
    store,
    stop: async (graceMs) => {
      await store.stopAll();
      await server.shutdown(graceMs);
      for (const c of Object.values(clients)) c.close();
    },
  };
}
