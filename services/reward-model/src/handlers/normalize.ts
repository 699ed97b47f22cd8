import type { rewardModel } from "@rlhf/proto";
import type { CallContext, SerialQueue } from "@rlhf/grpc-kit";
import { InvalidArgumentError } from "@rlhf/errors";
import type { RewardModel } from "../reward";
import type { RewardModelConfig } from "../config";
import { sequencesFromProto } from "./score";

/**
 * Normalize: scores every streamed reference completion, then bias := bias - mean, so they
 * average 0. Each message is scored as it arrives (within the Score limits), so memory stays
 * bounded; the bias changes once, at the end, on the queue.
 */
export function normalizeHandler(rm: RewardModel, queue: SerialQueue, cfg: RewardModelConfig) {
  return async (reqs: AsyncIterable<rewardModel.NormalizeRequest>, ctx: CallContext): Promise<rewardModel.NormalizeResponse> => {
    const scores: number[] = [];
    let i = 0;
    for await (const req of reqs) {
      const field = `requests[${i++}].references`;
      const s = await queue.run(() => rm.score(sequencesFromProto(rm, req.references, field, cfg)), ctx.signal);
      for (const x of s) scores.push(x);
    }
    if (scores.length === 0) throw new InvalidArgumentError("references", "send at least one reference sequence");
    return queue.run(() => {
      // Float64 on the host: the mean of many float32 scores.
      const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
      const std = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / scores.length);
      const delta = -mean;
      const bias = rm.addToBias(delta);
      const meanAfter = scores.reduce((a, b) => a + Math.fround(b + delta), 0) / scores.length;
      ctx.log.info({ count: scores.length, meanBefore: mean, bias }, "normalized");
      return { bias, biasDelta: delta, meanBefore: mean, meanAfter, std, count: scores.length, weights: rm.weights };
    }, ctx.signal);
  };
}
