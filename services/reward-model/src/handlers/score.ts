import type { common, rewardModel } from "@rlhf/proto";
import type { CallContext, SerialQueue } from "@rlhf/grpc-kit";
import { annotateActiveSpan, countTokens } from "@rlhf/telemetry";
import { tokenBatchFromProto } from "@rlhf/tensor-transport";
import { InvalidArgumentError } from "@rlhf/errors";
import { splitRows } from "@rlhf/model";
import type { RewardModel } from "../reward";
import type { RewardModelConfig } from "../config";

/** Validates a TokenBatch of whole sequences against the model and the Score limits; unpacks it. */
export function sequencesFromProto(rm: RewardModel, batch: common.TokenBatch | undefined, field: string, cfg: RewardModelConfig): number[][] {
  const config = rm.require().config;
  const packed = tokenBatchFromProto(batch, { vocabSize: config.vocabSize, nPositions: config.nPositions, maxSequences: cfg.maxBatchSequences, maxTokens: cfg.maxBatchTokens }, field);
  packed.promptLengths?.forEach((p, i) => {
    if (p >= packed.lengths[i]) throw new InvalidArgumentError(`${field}.prompt_lengths[${i}]`, `${p} leaves no response token in a sequence of ${packed.lengths[i]}`);
  });
  return splitRows(packed.tokens, packed.lengths).map((row) => Array.from(row));
}

/** Score: validate, one forward on the compute queue, a reward per sequence at its last token. */
export function scoreHandler(rm: RewardModel, queue: SerialQueue, cfg: RewardModelConfig) {
  return async (req: rewardModel.ScoreRequest, ctx: CallContext): Promise<rewardModel.ScoreResponse> =>
    queue.run(() => {
      const seqs = sequencesFromProto(rm, req.sequences, "sequences", cfg);
      ctx.log.debug({ sequences: seqs.length }, "score");
      const scores = Array.from(rm.score(seqs));
      countTokens("score", seqs.reduce((a, q) => a + q.length, 0));
      annotateActiveSpan({ "rlhf.sequences": seqs.length, "rlhf.tokens": seqs.reduce((a, q) => a + q.length, 0) });
      return { scores, weights: rm.weights };
    }, ctx.signal);
}
