import { initBackend } from "@rlhf/compute";
import { descriptorSetPath } from "@rlhf/proto";
import { startServer, type Logger, type RunningServer, type SerialQueue } from "@rlhf/grpc-kit";
import { presetConfig } from "@rlhf/model";
import { EventPublisher } from "@rlhf/events";
import { PolicyState } from "./policy";
import { publishWeights } from "./events";
import { policyService } from "./server";
import type { PolicyConfig } from "./config";

/** A running policy service (used by main.ts and by the tests). */
export interface PolicyApp {
  server: RunningServer;
  state: PolicyState;
  queue: SerialQueue;
  backend: string;
  /** The NATS publisher of weights events (NATS_URL set). */
  events?: EventPublisher;
  stop(graceMs?: number): Promise<void>;
}

/**
 * Picks the compute backend (gradients registered before any training), loads the initial
 * policy (if configured), starts the server and reports SERVING once a policy is in place.
 */
export async function startPolicy(cfg: PolicyConfig, log: Logger): Promise<PolicyApp> {
  const backend = await initBackend({ log: (msg, fields) => log.info(fields ?? {}, msg) });
  const started: { server?: RunningServer } = {};
  const events = cfg.natsServers ? new EventPublisher({ servers: cfg.natsServers, name: "policy", log }) : undefined;
  const state = new PolicyState(log, {
    checkpointRoots: cfg.checkpointRoots,
    tokenizer: cfg.tokenizer,
    onLoaded: () => started.server?.setServing(true),
    onWeightsChanged: events ? (c) => publishWeights(events, c) : undefined,
  });
  if (cfg.checkpointDir) await state.loadCheckpoint(cfg.checkpointDir, "CHECKPOINT_DIR");
  else if (cfg.modelDir) await state.loadModelDir(cfg.modelDir, "MODEL_DIR");
  else if (cfg.initPreset) state.loadRandom(presetConfig(cfg.initPreset), cfg.initSeed, "INIT_PRESET");
  const service = policyService(state, cfg, backend.name, log);
  const server = await startServer({
    services: [service],
    log,
    host: cfg.host,
    port: cfg.port,
    maxReceiveMessageBytes: cfg.maxReceiveBytes,
    descriptorSetPath,
  });
  started.server = server;
  server.setServing(Boolean(state.policyConfig));
  return {
    server,
    state,
    queue: service.queue,
    backend: backend.name,
    events,
    stop: async (graceMs) => {
      await server.shutdown(graceMs);
      state.dispose();
      await events?.close();
    },
  };
}
