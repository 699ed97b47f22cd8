import { initBackend } from "@rlhf/compute";
import { descriptorSetPath } from "@rlhf/proto";
import { startServer, type Logger, type RunningServer, type SerialQueue } from "@rlhf/grpc-kit";
import { presetConfig } from "@rlhf/model";
import { RewardModel } from "./reward";
import { rewardModelService } from "./server";
import type { RewardModelConfig } from "./config";

/** A running reward-model service (used by main.ts and by the tests). */
export interface RewardModelApp {
  server: RunningServer;
  model: RewardModel;
  queue: SerialQueue;
  backend: string;
  stop(graceMs?: number): Promise<void>;
}

/**
 * Picks the compute backend (gradients registered before any training), loads the initial
 * weights (if configured), starts the server and reports SERVING once a model is in place.
 */
export async function startRewardModel(cfg: RewardModelConfig, log: Logger): Promise<RewardModelApp> {
  const backend = await initBackend({ log: (msg, fields) => log.info(fields ?? {}, msg) });
  const started: { server?: RunningServer } = {};
  const model = new RewardModel(log, { checkpointRoots: cfg.checkpointRoots, microBatchTokens: cfg.microBatchTokens, onLoaded: () => started.server?.setServing(true) });
  if (cfg.checkpointDir) await model.loadCheckpoint(cfg.checkpointDir, "CHECKPOINT_DIR");
  else if (cfg.modelDir) await model.loadModelDir(cfg.modelDir, "MODEL_DIR");
  else if (cfg.initPreset) model.loadRandom(presetConfig(cfg.initPreset), cfg.initSeed);
  const service = rewardModelService(model, cfg, backend.name, log);
  const server = await startServer({
    services: [service],
    log,
    host: cfg.host,
    port: cfg.port,
    maxReceiveMessageBytes: cfg.maxReceiveBytes,
    descriptorSetPath,
  });
  started.server = server;
  server.setServing(Boolean(model.config));
  return {
    server,
    model,
    queue: service.queue,
    backend: backend.name,
    stop: async (graceMs) => {
      await server.shutdown(graceMs);
      model.dispose();
    },
  };
}
