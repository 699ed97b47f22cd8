import { common, type pretrainMix } from "@rlhf/proto";
import type { CallContext, SerialQueue, Send } from "@rlhf/grpc-kit";
import { annotateActiveSpan, countTokens } from "@rlhf/telemetry";
import { sendTensorSet, temperatureFromProto } from "@rlhf/tensor-transport";
import { FailedPreconditionError, InvalidArgumentError } from "@rlhf/errors";
import type { Corpora } from "../corpora";
import type { PretrainMixConfig } from "../config";
import type { CallGate } from "../gate";
import { POLICY_MODEL_ID, type PolicyModels } from "@rlhf/model-service";
import { checkFitsFloat16, ptxGradients, type PtxResult } from "../ptx";
import { windowRequestFromProto, wireDtypeFromProto } from "./requests";

/** What PtxGradients works with. */
export interface PtxDeps {
  corpora: Corpora;
  cache: PolicyModels;
  gate: CallGate;
  queue: SerialQueue;
}

/**
 * PtxGradients: validate; admit (RESOURCE_EXHAUSTED when full); the policy's model at the
 * version from the cache or one shared pull; forward + backward on the compute queue; then one
 * PtxLoss and the gradients as a tensor-set stream, sent outside the queue.
 */
export function ptxGradientsHandler(deps: PtxDeps, cfg: PretrainMixConfig) {
  const { corpora, cache, gate, queue } = deps;
  return async (req: pretrainMix.PtxGradientsRequest, send: Send<pretrainMix.PtxGradientsResponse>, ctx: CallContext): Promise<void> => {
    const ref = req.policyWeights;
    if (!ref) throw new InvalidArgumentError("policy_weights", `is required: model_id "${POLICY_MODEL_ID}" and the version`);
    if (ref.modelId !== POLICY_MODEL_ID) throw new InvalidArgumentError("policy_weights.model_id", `must be "${POLICY_MODEL_ID}", got ${JSON.stringify(ref.modelId)}`);
    if (!Number.isSafeInteger(ref.version) || ref.version < 0) throw new InvalidArgumentError("policy_weights.version", `must be an integer in [0, 2^53 - 1], got ${ref.version}`);
    const gamma = req.gamma;
    if (!Number.isFinite(gamma) || gamma <= 0) throw new InvalidArgumentError("gamma", `must be a finite number > 0 (the paper: 27.8), got ${gamma}`);
    const w = windowRequestFromProto(req, cfg);
    const temperature = temperatureFromProto(req.temperature);
    const wire = wireDtypeFromProto(req.dtype);
    const corpus = corpora.get(req.textCorpus);
    const windows = corpus.batch("train", w); // host only; INVALID_ARGUMENT if no window fits
    const leave = gate.enter();
    try {
      const started = Date.now();
      const lease = await cache.acquire(ref.version, ctx.signal);
      let result: PtxResult;
      let computeMs = 0;
      try {
        const { vocabSize, nPositions } = lease.model.config;
        if (w.sequenceLength > nPositions) {
          throw new InvalidArgumentError("sequence_length", `${w.sequenceLength} exceeds the policy's n_positions ${nPositions} (weights version ${ref.version})`);
        }
        const tok = corpus.tokenizer.name;
        if (corpus.train.maxId >= vocabSize) {
          throw new FailedPreconditionError(`the ${tok} tokenizer (TOKENIZER=${tok}) does not fit the policy: the corpus holds ids up to ${corpus.train.maxId} but the policy's vocab_size is ${vocabSize}; run this service with the policy's tokenizer`);
        }
        // With the call's signal the queue skips this task if the caller has gone while it waited.
        result = await queue.run(() => {
          const t0 = Date.now();
          const r = ptxGradients(lease.model, windows.tokens, w.sequences, w.sequenceLength, gamma, temperature);
          computeMs = Date.now() - t0;
          countTokens("ptx", r.tokens);
          return r;
        }, ctx.signal);
      } finally {
        lease.release();
      }
      if (wire === "float16") checkFitsFloat16(result.gradients);
      const weights: common.WeightsRef = { modelId: POLICY_MODEL_ID, version: lease.version, source: lease.source };
      annotateActiveSpan({ "rlhf.weights_version": lease.version, "rlhf.sequences": w.sequences, "rlhf.sequence_length": w.sequenceLength, "rlhf.weights_cache_hit": lease.cacheHit, "rlhf.weights_pull_ms": lease.pullMs, "rlhf.compute_ms": computeMs });
      ctx.log.info({ corpus: corpus.name, weightsVersion: lease.version, cacheHit: lease.cacheHit, sequences: w.sequences, sequenceLength: w.sequenceLength, cursor: w.cursor, loss: result.loss, pullMs: lease.pullMs, computeMs, waitedMs: Date.now() - started - computeMs - lease.pullMs }, "ptx gradients");
      await send({
        part: {
          $case: "loss",
          loss: { loss: result.loss, tokens: result.tokens, nextCursor: windows.nextCursor, policyWeights: weights, cacheHit: lease.cacheHit, computeMs: lease.pullMs + computeMs },
        },
      });
      await sendTensorSet(send, (chunk): pretrainMix.PtxGradientsResponse => ({ part: { $case: "chunk", chunk } }), result.gradients, { kind: common.TensorSetKind.TENSOR_SET_KIND_GRADIENTS, weights }, { wireDtype: wire });
    } finally {
      leave();
    }
  };
}
