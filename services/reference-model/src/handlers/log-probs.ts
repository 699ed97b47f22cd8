import type { referenceModel } from "@rlhf/proto";
import type { CallContext, SerialQueue } from "@rlhf/grpc-kit";
import { annotateActiveSpan, countTokens } from "@rlhf/telemetry";
import { tokenBatchFromProto, temperatureFromProto } from "@rlhf/tensor-transport";
import { FailedPreconditionError } from "@rlhf/errors";
import type { ReferenceModel } from "../reference";
import type { ReferenceModelConfig } from "../config";

/** LogProbs: validate, run on the compute queue, return flat per-token values. */
export function logProbsHandler(ref: ReferenceModel, queue: SerialQueue, cfg: ReferenceModelConfig) {
  return async (req: referenceModel.LogProbsRequest, ctx: CallContext): Promise<referenceModel.LogProbsResponse> => {
    const temperature = temperatureFromProto(req.temperature);
    return queue.run(() => {
      const config = ref.config;
      if (!config) throw new FailedPreconditionError("no model is loaded: call LoadWeights first");
      const batch = tokenBatchFromProto(req.batch, {
        vocabSize: config.vocabSize,
        nPositions: config.nPositions,
        maxSequences: cfg.maxBatchSequences,
        maxTokens: cfg.maxBatchTokens,
      });
      ctx.log.debug({ sequences: batch.lengths.length, tokens: batch.tokens.length, temperature }, "log-probs");
      const out = ref.logProbs(batch, temperature);
      countTokens("logprobs", batch.tokens.length);
      annotateActiveSpan({ "rlhf.sequences": batch.lengths.length, "rlhf.tokens": batch.tokens.length });
      return { logprobs: Array.from(out.values), lengths: out.lengths, weights: ref.weights };
    }, ctx.signal);
  };
}
