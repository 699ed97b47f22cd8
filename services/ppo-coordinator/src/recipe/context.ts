/** What every stage of the recipe gets: the config, the service clients, the run folder, events. */
import type { policy as policyPb, rewardModel, referenceModel, pretrainMix, ppoCoordinator } from "@rlhf/proto";
import type { KitClient, Logger } from "@rlhf/grpc-kit";
import type { RunConfig } from "@rlhf/run-config";
import type { ServiceClient } from "@rlhf/grpc-kit";

/** The clients of the four model services (a ServiceClient is a KitClient or a ReplicaSet: ../replicas.ts). */
export interface Clients {
  policy: KitClient<policyPb.PolicyServiceClient>;
  rewardModel: ServiceClient<rewardModel.RewardModelServiceClient>;
  reference: ServiceClient<referenceModel.ReferenceModelServiceClient>;
  pretrainMix: ServiceClient<pretrainMix.PretrainMixServiceClient>;
}

/** Sinks of a run's events (the run store numbers them, writes events.jsonl and notifies watchers). */
export interface EventSink {
  progress(p: ppoCoordinator.StageProgress): void;
  metrics(m: ppoCoordinator.RunMetrics): void;
  checkpoint(c: ppoCoordinator.CheckpointWritten): void;
}

export interface RecipeContext {
  cfg: RunConfig;
  clients: Clients;
  /** Absolute path of the run folder. */
  runDir: string;
  /** The run's id (policy calls carry it, so that the policy's weights events name the run). */
  runId?: string;
  events: EventSink;
  log: Logger;
  /** Aborted by CancelRun (or shutdown): stages stop at the next call boundary. */
  signal: AbortSignal;
}
