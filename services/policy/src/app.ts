import type { Logger, SerialQueue } from "@rlhf/grpc-kit";
import { EventPublisher } from "@rlhf/events";
import { loadInitialWeights, startModelService, type ModelServiceApp } from "@rlhf/model-service";
import { PolicyState } from "./policy";
import { publishWeights } from "./events";
import { policyService } from "./server";
import type { PolicyConfig } from "./config";

/** A running policy service (used by main.ts and by the tests); `events` publishes weights events when NATS_URL is set. */
export type PolicyApp = ModelServiceApp<{ state: PolicyState; queue: SerialQueue; events?: EventPublisher }>;

/** Loads the initial policy (if configured) and serves; SERVING once a policy is in place. */
export function startPolicy(cfg: PolicyConfig, log: Logger): Promise<PolicyApp> {
  return startModelService(cfg, log, async ({ backend, backendDetail, serving }) => {
    const events = cfg.natsServers ? new EventPublisher({ servers: cfg.natsServers, name: "policy", log }) : undefined;
    const state = new PolicyState(log, {
      checkpointRoots: cfg.checkpointRoots,
      tokenizer: cfg.tokenizer,
      onLoaded: () => serving.set(true),
      onWeightsChanged: events ? (c) => publishWeights(events, c) : undefined,
    });
    await loadInitialWeights(cfg, state);
    const service = policyService(state, cfg, { name: backend, detail: backendDetail }, log);
    return {
      parts: { state, queue: service.queue, events },
      service,
      lease: { service: "policy", mutating: ["Sft", "PpoUpdate", "InitCritic", "LoadCheckpoint"] },
      dispose: async () => {
        state.dispose();
        await events?.close();
      },
    };
  });
}
