/**
 * How a ReplicaSet routes each method of the scaled-out model services (see replicas.ts): loads
 * broadcast, training on the primary, batch reads sharded, the rest spread.
 */
import * as grpc from "@grpc/grpc-js";
import type { common, referenceModel, rewardModel } from "@rlhf/proto";
import { replicaError, splitTokenBatch, type Route, type Sharder } from "./replicas";

/** Throws unless every part was computed with the same weights; returns them. */
function sameWeights(service: string, refs: (common.WeightsRef | undefined)[]): common.WeightsRef | undefined {
  const key = (w?: common.WeightsRef) => (w ? `${w.modelId} v${w.version} ${w.source}` : "none");
  if (refs.some((w) => key(w) !== key(refs[0]))) {
    throw replicaError(grpc.status.FAILED_PRECONDITION, `${service} replicas answered with different weights (${[...new Set(refs.map(key))].sort().join(" / ")}): load the weights again`);
  }
  return refs[0];
}

/** RewardModelService.Score: sequences split across replicas, scores concatenated. */
export const scoreSharder: Sharder<rewardModel.ScoreRequest, rewardModel.ScoreResponse> = {
  split: (req, parts) => (req.sequences ? splitTokenBatch(req.sequences, parts).map((sequences) => ({ ...req, sequences })) : [req]),
  merge: (parts) => ({ scores: parts.flatMap((p) => p.scores), weights: sameWeights("reward-model", parts.map((p) => p.weights)) }),
};

/** ReferenceModelService.LogProbs: sequences split across replicas, log-probs and lengths concatenated. */
export const logProbsSharder: Sharder<referenceModel.LogProbsRequest, referenceModel.LogProbsResponse> = {
  split: (req, parts) => (req.batch ? splitTokenBatch(req.batch, parts).map((batch) => ({ ...req, batch })) : [req]),
  merge: (parts) => ({
    logprobs: parts.flatMap((p) => p.logprobs),
    lengths: parts.flatMap((p) => p.lengths),
    weights: sameWeights("reference-model", parts.map((p) => p.weights)),
  }),
};

const shard = <Q, R>(s: Sharder<Q, R>): Route => ({ shard: s as unknown as Sharder<never, never> });

/** Routes of the reward model: loads everywhere, training on the primary, Score sharded. */
export const REWARD_MODEL_ROUTES: Readonly<Record<string, Route>> = {
  loadCheckpoint: "broadcast",
  train: "mutate",
  normalize: "mutate",
  score: shard(scoreSharder),
  runLease: "every",
};
/** Reads the reward model may retry on another replica. */
export const REWARD_MODEL_IDEMPOTENT = ["score", "accuracy", "getInfo", "saveCheckpoint"] as const;

/** Routes of the reference model: loads everywhere (uploads reach one replica), LogProbs sharded. */
export const REFERENCE_MODEL_ROUTES: Readonly<Record<string, Route>> = {
  loadWeights: "broadcast",
  uploadWeights: "broadcast",
  logProbs: shard(logProbsSharder),
  runLease: "every",
};
/** Reads the reference model may retry on another replica. */
export const REFERENCE_MODEL_IDEMPOTENT = ["logProbs", "getInfo"] as const;

/** pretrain-mix holds no weights of its own (it pulls the policy's): every call is spread. */
export const PRETRAIN_MIX_ROUTES: Readonly<Record<string, Route>> = {};
/** pretrain-mix calls that may be retried on another replica. */
export const PRETRAIN_MIX_IDEMPOTENT = ["sampleBatch", "getInfo"] as const;
