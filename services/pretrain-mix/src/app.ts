import { initBackend } from "@rlhf/compute";
import { descriptorSetPath } from "@rlhf/proto";
import { startServer, type Logger, type RunningServer, type SerialQueue } from "@rlhf/grpc-kit";
import { loadPretrainCorpus } from "@rlhf/data";
import { getTokenizer } from "@rlhf/model";
import { TokenizedCorpus } from "./corpus";
import { Corpora } from "./corpora";
import { createPolicyCache, type PolicyCache } from "./policy-cache";
import { pretrainMixService } from "./server";
import type { CallGate } from "./gate";
import type { PretrainMixConfig } from "./config";

/** A running pretrain-mix service (used by main.ts and by the tests). */
export interface PretrainMixApp {
  server: RunningServer;
  /** The built-in corpus. */
  corpus: TokenizedCorpus;
  /** The built-in corpus and the users' text corpora requests name. */
  corpora: Corpora;
  cache: PolicyCache;
  queue: SerialQueue;
  gate: CallGate;
  backend: string;
  stop(graceMs?: number): Promise<void>;
}

/**
 * Picks the compute backend (gradients registered), tokenises the corpus with TOKENIZER (once:
 * every batch is cut from these streams), starts the server and reports SERVING.
 */
export async function startPretrainMix(cfg: PretrainMixConfig, log: Logger): Promise<PretrainMixApp> {
  const backend = await initBackend({ log: (msg, fields) => log.info(fields ?? {}, msg) });
  const started = Date.now();
  const corpus = new TokenizedCorpus(loadPretrainCorpus({ validFraction: cfg.validFraction }), getTokenizer(cfg.tokenizer), "brown");
  log.info(
    { corpus: corpus.name, tokenizer: corpus.tokenizer.name, trainTokens: corpus.train.tokens.length, validationTokens: corpus.validation.tokens.length, digest: corpus.digest, ms: Date.now() - started },
    "corpus tokenised",
  );
  const corpora = new Corpora(corpus, { maxCached: cfg.maxCachedCorpora, dataRoots: cfg.dataRoots, onLoad: (info) => log.info(info, "text corpus tokenised") });
  const cache = createPolicyCache(cfg, log);
  const service = pretrainMixService(corpora, cache, cfg, backend.name, log);
  const server = await startServer({
    services: [service],
    log,
    host: cfg.host,
    port: cfg.port,
    maxReceiveMessageBytes: cfg.maxReceiveBytes,
    descriptorSetPath,
  });
  server.setServing(true);
  return {
    server,
    corpus,
    corpora,
    cache,
    queue: service.queue,
    gate: service.gate,
    backend: backend.name,
    stop: async (graceMs) => {
      await server.shutdown(graceMs);
      cache.dispose();
    },
  };
}
