import { initBackend } from "@rlhf/compute";
import { descriptorSetPath } from "@rlhf/proto";
import { startServer, type Logger, type RunningServer } from "@rlhf/grpc-kit";
import { presetConfig } from "@rlhf/model";
import { ReferenceModel } from "./reference";
import { referenceModelService } from "./server";
import type { ReferenceModelConfig } from "./config";

/** A running reference-model service (used by main.ts and by the tests). */
export interface ReferenceModelApp {
  server: RunningServer;
  model: ReferenceModel;
  backend: string;
  stop(graceMs?: number): Promise<void>;
}

/**
 * Picks the compute backend, loads the initial weights (if configured), starts the server and
 * reports SERVING once a model is in place (NOT_SERVING while none is).
 */
export async function startReferenceModel(cfg: ReferenceModelConfig, log: Logger): Promise<ReferenceModelApp> {
  const backend = await initBackend({ log: (msg, fields) => log.info(fields ?? {}, msg) });
  // Filled once the server is up; a load before that (at start) needs no health change.
  const started: { server?: RunningServer } = {};
  const model = new ReferenceModel(log, {
    maxLogitsElements: cfg.maxLogitsElements,
    checkpointRoots: cfg.checkpointRoots,
    onLoaded: () => started.server?.setServing(true),
  });
  if (cfg.checkpointDir) await model.loadCheckpoint(cfg.checkpointDir, "CHECKPOINT_DIR");
  else if (cfg.initPreset) model.loadRandom(presetConfig(cfg.initPreset), cfg.initSeed);
  const server = await startServer({
    services: [referenceModelService(model, cfg, backend.name, log)],
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
    backend: backend.name,
    stop: async (graceMs) => {
      await server.shutdown(graceMs);
      model.dispose();
    },
  };
}
