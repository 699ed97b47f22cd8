import type { pretrainMix } from "@rlhf/proto";
import type { CallContext } from "@rlhf/grpc-kit";
import type { Corpora } from "../corpora";
import type { PretrainMixConfig } from "../config";
import { splitFromProto, windowRequestFromProto } from "./requests";

/** SampleBatch: validate, cut the windows (host only: no model, no queue), return them. */
export function sampleBatchHandler(corpora: Corpora, cfg: PretrainMixConfig) {
  return async (req: pretrainMix.SampleBatchRequest, ctx: CallContext): Promise<pretrainMix.SampleBatchResponse> => {
    const split = splitFromProto(req.split);
    const w = windowRequestFromProto(req, cfg);
    const corpus = corpora.get(req.textCorpus);
    const b = corpus.batch(split, w);
    ctx.log.debug({ corpus: corpus.name, split, sequences: w.sequences, sequenceLength: w.sequenceLength, cursor: w.cursor, epoch: b.epoch }, "sample batch");
    return {
      batch: { tokens: Array.from(b.tokens), lengths: new Array<number>(w.sequences).fill(w.sequenceLength), promptLengths: [] },
      nextCursor: b.nextCursor,
      epoch: b.epoch,
      windowsPerEpoch: b.windowsPerEpoch,
    };
  };
}
