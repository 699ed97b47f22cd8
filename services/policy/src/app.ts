import { policy as policyPb } from "@rlhf/proto";
import type { Logger } from "@rlhf/grpc-kit";
import { EventPublisher } from "@rlhf/events";
import { siblingModule, startWorkerModelService, type WorkerModelServiceApp } from "@rlhf/model-service";
import { publishWeights } from "./events";
import type { WeightsChange } from "./policy";
import type { PolicyConfig } from "./config";

/** A running policy service (used by main.ts and by the tests); `events` publishes weights events when NATS_URL is set. */
export type PolicyApp = WorkerModelServiceApp<{ events?: EventPublisher }>;

/** Serves the policy, whose models and handlers run in its compute worker (./worker.ts); SERVING once a policy is in place. */
export async function startPolicy(cfg: PolicyConfig, log: Logger): Promise<PolicyApp> {
  const events = cfg.natsServers ? new EventPublisher({ servers: cfg.natsServers, name: "policy", log }) : undefined;
  try {
    return await startWorkerModelService(cfg, log, {
      definition: policyPb.PolicyServiceService,
      module: siblingModule(__filename, "worker"),
      snapshots: ["getInfo"],
      lease: { service: "policy", mutating: ["Sft", "PpoUpdate", "InitCritic", "LoadCheckpoint"] },
      parts: { events },
      onNotice: events ? (c) => publishWeights(events, c as WeightsChange) : undefined,
      dispose: async () => {
        await events?.close();
      },
    });
  } catch (err) {
    await events?.close();
    throw err;
  }
}
