import type { Logger, SerialQueue } from "@rlhf/grpc-kit";
import { loadPretrainCorpus } from "@rlhf/data";
import { getTokenizer } from "@rlhf/model";
import { startModelService, type ModelServiceApp } from "@rlhf/model-service";
import { TokenizedCorpus } from "./corpus";
import { Corpora } from "./corpora";
import { createPolicyCache, type PolicyCache } from "./policy-cache";
import { pretrainMixService } from "./server";
import type { CallGate } from "./gate";
import type { PretrainMixConfig } from "./config";

/**
 * A running pretrain-mix service (used by main.ts and by the tests): `corpus` is the built-in
 * corpus, `corpora` it and the users' text corpora requests name.
 */
export type PretrainMixApp = ModelServiceApp<{ corpus: TokenizedCorpus; corpora: Corpora; cache: PolicyCache; queue: SerialQueue; gate: CallGate }>;

/** Tokenises the corpus with TOKENIZER (once: every batch is cut from these streams), serves and reports SERVING. */
export function startPretrainMix(cfg: PretrainMixConfig, log: Logger): Promise<PretrainMixApp> {
  return startModelService(cfg, log, async ({ backend, serving }) => {
    const started = Date.now();
    const corpus = new TokenizedCorpus(loadPretrainCorpus({ validFraction: cfg.validFraction }), getTokenizer(cfg.tokenizer), "brown");
    log.info(
      { corpus: corpus.name, tokenizer: corpus.tokenizer.name, trainTokens: corpus.train.tokens.length, validationTokens: corpus.validation.tokens.length, digest: corpus.digest, ms: Date.now() - started },
      "corpus tokenised",
    );
    const corpora = new Corpora(corpus, { maxCached: cfg.maxCachedCorpora, dataRoots: cfg.dataRoots, onLoad: (info) => log.info(info, "text corpus tokenised") });
    const cache = createPolicyCache(cfg, log);
    const service = pretrainMixService(corpora, cache, cfg, backend, log);
    serving.set(true);
    return { parts: { corpus, corpora, cache, queue: service.queue, gate: service.gate }, service, dispose: () => cache.dispose() };
  });
}
