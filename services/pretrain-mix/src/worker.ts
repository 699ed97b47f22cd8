/**
 * The pretrain-mix compute worker (@rlhf/model-service startWorkerModelService): the tokenised
 * corpora, the cache of policy versions and the handlers that compute pretraining gradients.
 */
import { loadPretrainCorpus } from "@rlhf/data";
import { getTokenizer } from "@rlhf/model";
import { policyModelCache, type CreateCompute } from "@rlhf/model-service";
import { TokenizedCorpus } from "./corpus";
import { Corpora } from "./corpora";
import { pretrainMixService } from "./server";
import type { PretrainMixConfig } from "./config";

/** Tokenises the corpus with TOKENIZER (once: every batch is cut from these streams) and reports SERVING. */
export const createCompute: CreateCompute<PretrainMixConfig> = async ({ cfg, log, backend, serving }) => {
  const started = Date.now();
  const corpus = new TokenizedCorpus(loadPretrainCorpus({ validFraction: cfg.validFraction }), getTokenizer(cfg.tokenizer), "brown");
  log.info(
    { corpus: corpus.name, tokenizer: corpus.tokenizer.name, trainTokens: corpus.train.tokens.length, validationTokens: corpus.validation.tokens.length, digest: corpus.digest, ms: Date.now() - started },
    "corpus tokenised",
  );
  const corpora = new Corpora(corpus, { maxCached: cfg.maxCachedCorpora, dataRoots: cfg.dataRoots, onLoad: (info) => log.info(info, "text corpus tokenised") });
  const cache = policyModelCache(cfg, "pretrain-mix", cfg.maxCachedVersions, log);
  const service = pretrainMixService(corpora, cache, cfg, backend, log);
  serving.set(true);
  return { service, dispose: () => cache.dispose() };
};
