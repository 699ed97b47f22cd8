import type { rewardModel } from "@rlhf/proto";
import type { SerialQueue } from "@rlhf/grpc-kit";
import { InvalidArgumentError } from "@rlhf/errors";
import type { RewardModel } from "../reward";
import type { RewardModelConfig } from "../config";
import { comparisonsFromProto } from "./comparisons";

/** Accuracy: held-out pairwise accuracy and loss, one forward, no weights change. */
export function accuracyHandler(rm: RewardModel, queue: SerialQueue, cfg: RewardModelConfig) {
  return async (req: rewardModel.AccuracyRequest): Promise<rewardModel.AccuracyResponse> =>
    queue.run(() => {
      const c = comparisonsFromProto(req.comparisons, "comparisons", rm.require().config);
      if (c.groups.length === 0) throw new InvalidArgumentError("comparisons", "must hold at least one group or pair");
      if (c.sequences > cfg.maxBatchSequences) throw new InvalidArgumentError("comparisons", `${c.sequences} responses exceed the limit of ${cfg.maxBatchSequences} per request`);
      if (c.tokens > cfg.maxBatchTokens) throw new InvalidArgumentError("comparisons", `${c.tokens} tokens exceed the limit of ${cfg.maxBatchTokens} per request`);
      const s = rm.evaluate(c.groups);
      return { pairs: s.pairs, correct: s.correct, scoreTies: s.scoreTies, accuracy: s.pairs > 0 ? s.correct / s.pairs : 0, loss: s.loss, groups: s.groups, weights: rm.weights };
    });
}
