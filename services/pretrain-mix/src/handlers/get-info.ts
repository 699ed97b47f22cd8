import { pretrainMix } from "@rlhf/proto";
import type { TokenizedCorpus } from "../corpus";
import type { PretrainMixConfig } from "../config";
import type { CallGate } from "../gate";
import { POLICY_MODEL_ID, type PolicyModels } from "@rlhf/model-service";

/** GetInfo: the corpus, the cached weights versions, the backend, the limits and the queue depth. */
export function getInfoHandler(corpus: TokenizedCorpus, cache: PolicyModels, gate: CallGate, cfg: PretrainMixConfig, backend: string) {
  return async (): Promise<pretrainMix.GetInfoResponse> => ({
    corpus: corpus.name,
    corpusDigest: corpus.digest,
    tokenizer: corpus.tokenizer.name,
    vocabSize: corpus.tokenizer.vocabSize,
    eosTokenId: corpus.tokenizer.eosId,
    splits: [
      { split: pretrainMix.Split.SPLIT_TRAIN, documents: corpus.train.documents, tokens: corpus.train.tokens.length },
      { split: pretrainMix.Split.SPLIT_VALIDATION, documents: corpus.validation.documents, tokens: corpus.validation.tokens.length },
    ],
    cachedWeights: cache.cached().map((c) => ({ modelId: POLICY_MODEL_ID, version: c.version, source: c.source })),
    maxCachedVersions: cache.capacity,
    backend,
    maxSequences: cfg.maxSequences,
    maxSequenceLength: cfg.maxSequenceLength,
    queueDepth: gate.depth,
    maxQueueDepth: gate.capacity,
  });
}
